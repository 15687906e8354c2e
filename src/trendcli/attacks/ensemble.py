"""PGD on an ensemble: each step combines the members' gradients with a direction rule."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, ClassVar, Sequence

import torch
from torch import nn

from trendcli.errors import UsageError
from trendcli.registry import canonical, get_registry
from trendcli.ensemble.vote import TIE_BREAKS, predict
from trendcli.attacks.base import (
    input_memory_format,
    attack_mode,
    ce_sum,
    check_batch,
    check_count,
    check_nonnegative,
    check_positive,
    common_memory_format,
    gradients_on,
    make_generator,
    random_start,
)


def lookup_rule(name: str) -> Callable[..., torch.Tensor]:
    """The direction rule registered as ``name`` (built-in or plugin)."""
    return get_registry().factory("direction rule", name)


@dataclass(frozen=True)
class EnsemblePGD:
    """L-inf PGD on an ensemble with a direction rule (docs/method.md "Attacks on an ensemble").

    x_0 = clip_[0,1](x + U(-eps, eps)^d) (or x); each step computes every member's
    G_k = grad_x L(f_k(x_n), y) (L = cross-entropy summed over the batch, each member
    through its own quantizers' BPDA), stacks them [K, N, C, H, W], takes g = rule(G, m) and
    steps x_{n+1} = clip_[0,1]( Proj_{||.-x||_inf <= eps}( x_n + alpha * g ) ).
    Rules (registry kind "direction rule"): dag (D-AG, eq. 5), agd (A-GD, eq. 7), ugd (U-GD,
    eq. 6), empir, eadg, or a plugin's. For rules with ``needs_mask``: y_hat = the ensemble's
    vote at x_0 (tie-break ``tie_break``, seeded by ``seed``), fixed for all steps, and
    m_k = 1[argmax f_k(x_n) = y_hat].

    Parameters (pixel units on the [0, 1] scale): rule; eps, default 0.01 and alpha, default
    0.01, steps, default 40, random_start, default True (the authors' ensemble settings);
    seed, default 0, for the random start and the vote's tie-break; tie_break, default
    "paper" (the authors' vote).

    Call ``attack(models, x, y)``: models a non-empty list of classifiers on [0, 1] images,
    x float [N, C, H, W] in [0, 1], y int64 [N]; returns float32 [N, C, H, W] in [0, 1]
    with ||x_adv - x||_inf <= eps. Cost per step: K forwards and K input backwards.
    """

    rule: str = "agd"
    eps: float = 0.01
    alpha: float = 0.01
    steps: int = 40
    random_start: bool = True
    seed: int = 0
    tie_break: str = "paper"

    name: ClassVar[str] = "ensemble_pgd"
    norm: ClassVar[str] = "linf"

    def __post_init__(self) -> None:
        object.__setattr__(self, "rule", canonical(self.rule))
        lookup_rule(self.rule)  # an unknown rule fails here, listing the known ones
        check_positive(alpha=self.alpha)
        check_nonnegative(eps=self.eps)
        check_count(steps=self.steps)
        if self.tie_break not in TIE_BREAKS:
            raise UsageError(f"unknown tie-break {self.tie_break!r}; known: {', '.join(TIE_BREAKS)}")

    @property
    def params(self) -> dict[str, Any]:
        """Everything that determines the output, the rule's name included (JSON-serialisable)."""
        return asdict(self)

    def __call__(self, models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Adversarial images for ``x`` (labels ``y``) against every member of ``models``."""
        single = isinstance(models, nn.Module) and not isinstance(models, nn.ModuleList)
        members = [models] if single else list(models)
        if not members:
            raise UsageError("an ensemble attack needs at least one model")
        check_batch(x, y)
        rule = lookup_rule(self.rule)
        needs_mask = bool(getattr(rule, "needs_mask", False))
        out_format = input_memory_format(x)
        with gradients_on(), attack_mode(members):
            xc = x.detach().to(torch.float32).clone(memory_format=common_memory_format(members))
            adv = self._run(members, rule, needs_mask, xc, y.clone())
        return adv.contiguous(memory_format=out_format)

    def _run(
        self,
        members: list[nn.Module],
        rule: Callable[..., torch.Tensor],
        needs_mask: bool,
        x: torch.Tensor,
        y: torch.Tensor,
    ) -> torch.Tensor:
        k, n = len(members), len(x)
        start = random_start(x, self.eps, make_generator(x.device, self.seed)) if self.random_start else x
        xa = start.detach().clone().requires_grad_(True)
        grads = torch.empty((k, *x.shape), dtype=x.dtype, device=x.device)  # hoisted
        preds = torch.empty((k, n), dtype=torch.int64, device=x.device) if needs_mask else None
        y_hat = None
        for step in range(self.steps):
            first_logits = []
            for i, model in enumerate(members):
                logits = model(xa)
                (grads[i],) = torch.autograd.grad(ce_sum(logits, y), xa)
                if needs_mask:
                    preds[i] = logits.detach().argmax(1)
                    if step == 0:
                        first_logits.append(logits.detach())
            mask = None
            if needs_mask:
                if y_hat is None:  # the vote at x_0 (step 0 evaluates the members there)
                    y_hat = predict(first_logits, self.tie_break, self.seed)
                mask = (preds == y_hat).to(x.dtype)
            direction = rule(grads, mask)
            with torch.no_grad():
                xa.add_(direction, alpha=self.alpha).sub_(x).clamp_(-self.eps, self.eps).add_(x).clamp_(0.0, 1.0)
        return xa.detach()
