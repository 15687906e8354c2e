"""Fast gradient sign method: one L-inf step of size eps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from trendcli.attacks.base import Attack, check_nonnegative
from trendcli.attacks.pgd import linf_sign_steps


@dataclass(frozen=True)
class FGSM(Attack):
    """Fast gradient sign method, L-inf (Goodfellow et al. 2015, arXiv:1412.6572).

    x_adv = clip_[0,1]( x + eps * sign(grad_x L(f(x), y)) ), L the cross-entropy summed over
    the batch; targeted: x - eps * sign(grad_x L(f(x), target)). No random start
    (docs/method.md "Attacks on one model").

    Parameters: eps, the L-inf bound and step size in [0, 1] pixel units, default 8/255.

    Call ``attack(model, x, y, target=None)``: x float [N, C, H, W] in [0, 1], y int64 [N];
    returns float32 [N, C, H, W] in [0, 1] with ||x_adv - x||_inf <= eps.
    """

    eps: float = 8 / 255

    name: ClassVar[str] = "fgsm"
    norm: ClassVar[str] = "linf"

    def __post_init__(self) -> None:
        check_nonnegative(eps=self.eps)

    def _run(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None
    ) -> torch.Tensor:
        if self.eps == 0:
            return x.clone()
        labels, step = (y, self.eps) if target is None else (target, -self.eps)
        return linf_sign_steps(model, x, x, labels, step, self.eps, 1)
