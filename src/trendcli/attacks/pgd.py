"""Projected gradient descent under an L-inf bound, and the sign-step loop FGSM and BIM share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from trendcli.errors import UsageError
from trendcli.attacks.base import Attack, ce_sum, check_count, check_nonnegative, check_positive, make_generator, random_start, success_mask


def linf_sign_steps(
    model: nn.Module,
    x: torch.Tensor,
    start: torch.Tensor,
    labels: torch.Tensor,
    step: float,
    eps: float,
    steps: int,
) -> torch.Tensor:
    """x_{n+1} = clip_[0,1]( x + clip_[-eps,eps]( x_n + step * sign(grad_x CE(f(x_n), labels)) - x ) ).

    docs/method.md "Attacks on one model", eq. 4. ``step`` = +alpha ascends the loss of the
    true labels (untargeted); -alpha descends toward target labels. CE is summed over the
    batch, so each image's step does not depend on its batch-mates. The iterate is updated
    in place: one forward and one input-gradient backward per step, no host sync.
    """
    xa = start.detach().clone().requires_grad_(True)
    for _ in range(steps):
        (grad,) = torch.autograd.grad(ce_sum(model(xa), labels), xa)
        with torch.no_grad():
            # The projection's arithmetic, x + clip(x_n - x), keeps results bit-comparable
            # with the usual reference implementations.
            xa.add_(grad.sign_(), alpha=step).sub_(x).clamp_(-eps, eps).add_(x).clamp_(0.0, 1.0)
    return xa.detach()


@dataclass(frozen=True)
class PGD(Attack):
    """Projected gradient descent, L-inf (Madry et al. 2018, arXiv:1706.06083).

    x_0 = clip_[0,1](x + U(-eps, eps)^d) (or x without random start);
    x_{n+1} = clip_[0,1]( Proj_{||.-x||_inf <= eps}( x_n + alpha * sign(grad_x L(f(x_n), y)) ) )
    with L the cross-entropy summed over the batch (docs/method.md eq. 4). Targeted: the step
    descends L(f(x_n), target) instead.

    Parameters (pixel units on the [0, 1] scale):
        eps: L-inf bound, default 8/255 (the authors' transfer setting).
        alpha: step size, default 0.01.
        steps: iterations, default 40.
        random_start: start at a uniform point of the eps-ball, default True.
        restarts: independent random starts, default 1; per image the first restart that
            succeeds is kept, else the one with the highest final loss.
        seed: seed of the random starts (a ``torch.Generator`` on the input's device).

    Call ``attack(model, x, y, target=None)``: x float [N, C, H, W] in [0, 1], y int64 [N];
    returns float32 [N, C, H, W] in [0, 1] with ||x_adv - x||_inf <= eps.
    """

    eps: float = 8 / 255
    alpha: float = 0.01
    steps: int = 40
    random_start: bool = True
    restarts: int = 1
    seed: int = 0

    name: ClassVar[str] = "pgd"
    norm: ClassVar[str] = "linf"

    def __post_init__(self) -> None:
        check_positive(alpha=self.alpha)
        check_nonnegative(eps=self.eps)
        check_count(steps=self.steps, restarts=self.restarts)
        if self.restarts > 1 and not self.random_start:
            raise UsageError("restarts > 1 repeats the same attack without random_start; set random_start=True")

    def _run(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None
    ) -> torch.Tensor:
        labels, step = (y, self.alpha) if target is None else (target, -self.alpha)
        gen = make_generator(x.device, self.seed)
        best = None
        for _ in range(self.restarts):
            start = random_start(x, self.eps, gen) if self.random_start else x
            adv = linf_sign_steps(model, x, start, labels, step, self.eps, self.steps)
            if self.restarts == 1:
                return adv
            with torch.no_grad():
                logits = model(adv)
                done = success_mask(logits, y, target)
                loss = F.cross_entropy(logits, labels, reduction="none") * (1.0 if step > 0 else -1.0)
            if best is None:
                best, best_done, best_loss = adv, done, loss
                continue
            take = ~best_done & (done | (loss > best_loss))
            best = torch.where(take[:, None, None, None], adv, best)
            best_loss = torch.where(take, loss, best_loss)
            best_done = best_done | done
        return best

