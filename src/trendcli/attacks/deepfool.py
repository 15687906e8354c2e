"""DeepFool, batched: L2 (the original) and L-inf variants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from trendcli.errors import UsageError
from trendcli.attacks.base import Attack, check_count, check_nonnegative

_NORMS = ("l2", "linf")
_TINY = 1e-12  # floor for gradient norms, so a zero gradient gives a zero step, not NaN


@dataclass(frozen=True)
class DeepFool(Attack):
    """DeepFool (Moosavi-Dezfooli et al. 2016, arXiv:1511.04599), L2 or L-inf, batched.

    Candidates: the ``nb_candidates - 1`` classes k != y with the largest clean logits. Per
    iteration, for every image still classified as y, with f'_k = Z_k - Z_y and
    w'_k = grad_x f'_k at the current point:
        L2:    l = argmin_k |f'_k| / ||w'_k||_2,  r = (|f'_l| / ||w'_l||_2 + 1e-4) * w'_l / ||w'_l||_2
        L-inf: l = argmin_k |f'_k| / ||w'_k||_1,  r = (|f'_l| / ||w'_l||_1 + 1e-4) * sign(w'_l)
    r_tot += r; x_adv = clip_[0,1](x + (1 + overshoot) * r_tot). Images whose label has
    switched (or was wrong to begin with) stop changing. With ``eps`` set, the final
    perturbation is projected onto the eps-ball of the norm (as the authors' foolbox call
    with ``epsilons`` did). docs/method.md "Attacks on one model".

    Cost per iteration: one forward and nb_candidates - 1 input-gradient backward passes
    (the Jacobian rows DeepFool needs), plus one host sync to stop once every image has
    switched — DeepFool usually needs 2–5 of its ``max_iter`` iterations.

    Parameters:
        norm: "l2" (default, the original) or "linf" (the authors' choice).
        overshoot: default 0.02.  max_iter: default 50.
        nb_candidates: classes considered, the true one included, default 10.
        eps: optional bound on the final perturbation in the chosen norm ([0, 1] pixel
            units); default None (unbounded).

    Call ``attack(model, x, y)`` (untargeted only): x float [N, C, H, W] in [0, 1], y int64
    [N]; returns float32 [N, C, H, W] in [0, 1].
    """

    norm: str = "l2"
    overshoot: float = 0.02
    max_iter: int = 50
    nb_candidates: int = 10
    eps: float | None = None

    name: ClassVar[str] = "deepfool"
    supports_target: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.norm not in _NORMS:
            raise UsageError(f"deepfool norm must be one of {', '.join(_NORMS)}, got {self.norm!r}")
        check_nonnegative(overshoot=self.overshoot)
        check_count(max_iter=self.max_iter)
        if isinstance(self.nb_candidates, bool) or not isinstance(self.nb_candidates, int) or self.nb_candidates < 2:
            raise UsageError(f"nb_candidates must be an integer >= 2, got {self.nb_candidates!r}")
        if self.eps is not None:
            check_nonnegative(eps=self.eps)

    def _run(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None
    ) -> torch.Tensor:
        n = len(x)
        with torch.no_grad():
            clean = model(x)
        k = min(self.nb_candidates, clean.shape[1]) - 1
        if n == 0 or k < 1:
            return x.clone()
        others = clean.scatter(1, y[:, None], float("-inf")).topk(k, dim=1).indices  # [N, k]
        rows = torch.arange(n, device=x.device)
        jac = torch.empty((k, *x.shape), dtype=x.dtype, device=x.device)  # w'_k, hoisted
        r_tot = torch.zeros_like(x)
        active = torch.ones(n, dtype=torch.bool, device=x.device)
        adv = x.clone()
        for _ in range(self.max_iter):
            xa = adv.requires_grad_(True)
            logits = model(xa)
            active &= logits.detach().argmax(1) == y
            if not bool(active.any()):
                break
            f_diff = logits.gather(1, others) - logits.gather(1, y[:, None])  # [N, k]
            for j in range(k):
                (jac[j],) = torch.autograd.grad(f_diff[:, j].sum(), xa, retain_graph=j < k - 1)
            with torch.no_grad():
                flat = jac.flatten(2)  # [k, N, D]
                w_norm = (flat.norm(dim=2) if self.norm == "l2" else flat.abs().sum(2)).clamp_(min=_TINY)
                dist = f_diff.detach().abs().T / w_norm  # [k, N]
                best = dist.argmin(0)
                w_best = jac[best, rows]
                scale = (dist[best, rows] + 1e-4) * active
                if self.norm == "l2":
                    step = w_best * (scale / w_norm[best, rows]).view(n, 1, 1, 1)
                else:
                    step = w_best.sign_() * scale.view(n, 1, 1, 1)
                r_tot.add_(step)
                adv = (x + (1 + self.overshoot) * r_tot).clamp_(0.0, 1.0)
        adv = adv.detach()
        if self.eps is not None:
            adv = _project(adv, x, self.eps, self.norm)
        return adv


def _project(adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Clip the perturbation adv - x onto the eps-ball of ``norm``; the result stays in [0, 1]."""
    delta = adv - x
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        length = delta.flatten(1).norm(dim=1).clamp(min=_TINY)
        delta = delta * (eps / length).clamp(max=1.0).view(-1, 1, 1, 1)
    return (x + delta).clamp(0.0, 1.0)
