"""Basic iterative method: PGD without the random start."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from trendcli.attacks.base import Attack, check_count, check_nonnegative, check_positive
from trendcli.attacks.pgd import linf_sign_steps


@dataclass(frozen=True)
class BIM(Attack):
    """Basic iterative method, L-inf (Kurakin et al. 2017, arXiv:1607.02533).

    PGD started at x itself (docs/method.md "Attacks on one model": BIM = PGD without random
    start): x_0 = x; x_{n+1} = clip_[0,1]( Proj_{||.-x||_inf <= eps}( x_n + alpha * sign(g_n) ) ),
    g_n = grad_x L(f(x_n), y), L the cross-entropy summed over the batch; targeted: the
    step descends L(f(x_n), target).

    Parameters (pixel units on the [0, 1] scale): eps, the L-inf bound, default 8/255;
    alpha, the step size, default 0.01; steps, default 40. The defaults are the authors' PGD
    settings with the random start removed, not Kurakin et al.'s alpha = 1/255 and
    min(eps*255 + 4, 1.25*eps*255) steps, so that BIM and PGD differ only in the start.

    Call ``attack(model, x, y, target=None)``: x float [N, C, H, W] in [0, 1], y int64 [N];
    returns float32 [N, C, H, W] in [0, 1] with ||x_adv - x||_inf <= eps.
    """

    eps: float = 8 / 255
    alpha: float = 0.01
    steps: int = 40

    name: ClassVar[str] = "bim"
    norm: ClassVar[str] = "linf"

    def __post_init__(self) -> None:
        check_positive(alpha=self.alpha)
        check_nonnegative(eps=self.eps)
        check_count(steps=self.steps)

    def _run(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None
    ) -> torch.Tensor:
        labels, step = (y, self.alpha) if target is None else (target, -self.alpha)
        return linf_sign_steps(model, x, x, labels, step, self.eps, self.steps)
