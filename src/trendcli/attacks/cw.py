"""Carlini–Wagner attacks: the L2 attack with a binary search over c, and an L-inf variant."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from trendcli.attacks.base import Attack, check_count, check_nonnegative, check_positive, make_generator, margin, random_start

# tanh-space change of variables: x = (tanh(w) + 1) / 2. Scaling by 1 - 1e-6 keeps
# atanh finite at pixels exactly 0 or 1 (Carlini & Wagner's reference code does the same).
_TANH_SCALE = 1.0 - 1e-6
_ADAM_BETAS = (0.9, 0.999)
_ADAM_EPS = 1e-8
_NO_BOUND = 1e10  # the binary search's "no upper bound on c yet"


def cw_objective(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None, kappa: float) -> torch.Tensor:
    """f(x') per image, shape [N] (Carlini & Wagner's f6; docs/method.md "Attacks on one model").

    Untargeted: max( Z_y - max_{i != y} Z_i, -kappa ).
    Targeted:   max( max_{i != t} Z_i - Z_t, -kappa ).
    It reaches its floor -kappa once the wrong class leads by kappa; its gradient is then 0.
    """
    m = margin(logits, y) if target is None else -margin(logits, target)
    return m.clamp(min=-kappa)


def kappa_success(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None, kappa: float) -> torch.Tensor:
    """Bool [N]: the wrong class leads by at least kappa (the attack's own success test)."""
    m = margin(logits, y) if target is None else -margin(logits, target)
    return m < -kappa


@dataclass(frozen=True)
class CWL2(Attack):
    """Carlini–Wagner L2 attack (Carlini & Wagner 2017, arXiv:1608.04644).

    Per image minimize ||x' - x||_2^2 + c * f(x') over x' = (tanh(w) + 1) / 2 with Adam on w,
    f = max(Z_y - max_{i != y} Z_i, -kappa) (targeted: max(max_{i != t} Z_i - Z_t, -kappa)).
    A binary search over c per image: after each of ``binary_steps`` runs of ``steps`` Adam
    iterations (Adam restarted, w restarted at x), c halves toward the smallest c that
    succeeded, or grows x10 while none has. Success = the wrong class leads by kappa. Returns
    per image the smallest-L2 success found in any run; images never successful are
    returned unchanged (x itself). docs/method.md "Attacks on one model".

    Departure from the reference code: no early abort when the loss stalls (that needs a
    host sync per check); every run does its ``steps`` iterations.

    Parameters:
        kappa: confidence margin in logit units, default 30 (the authors' transfer setting).
        steps: Adam iterations per binary-search run, default 100 (the authors').
        binary_steps: runs of the binary search over c, default 9.
        c: initial c (the weight of f), default 1e-3.
        lr: Adam learning rate in tanh space, default 0.01.

    Call ``attack(model, x, y, target=None)``: x float [N, C, H, W] in [0, 1], y int64 [N];
    returns float32 [N, C, H, W] in [0, 1]. Norm: L2, unbounded (minimal perturbation).
    """

    kappa: float = 30.0
    steps: int = 100
    binary_steps: int = 9
    c: float = 1e-3
    lr: float = 0.01

    name: ClassVar[str] = "cw_l2"
    norm: ClassVar[str] = "l2"

    def __post_init__(self) -> None:
        check_positive(c=self.c, lr=self.lr)
        check_nonnegative(kappa=self.kappa)
        check_count(steps=self.steps, binary_steps=self.binary_steps)

    def _run(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None
    ) -> torch.Tensor:
        n = len(x)
        per_image = (n, 1, 1, 1)
        w0 = torch.atanh((x * 2 - 1) * _TANH_SCALE)
        delta = torch.zeros_like(w0)  # w = w0 + delta is what Adam optimizes
        exp_avg, exp_avg_sq = torch.zeros_like(w0), torch.zeros_like(w0)
        c = torch.full((n,), float(self.c), device=x.device)
        lower = torch.zeros(n, device=x.device)
        upper = torch.full((n,), _NO_BOUND, device=x.device)
        best_l2 = torch.full((n,), float("inf"), device=x.device)
        best = x.clone()
        b1, b2 = _ADAM_BETAS
        for _ in range(self.binary_steps):
            delta.zero_()
            exp_avg.zero_()
            exp_avg_sq.zero_()
            won = torch.zeros(n, dtype=torch.bool, device=x.device)
            delta.requires_grad_(True)
            for t in range(1, self.steps + 1):
                adv = (torch.tanh(w0 + delta) + 1) / 2
                l2 = (adv - x).flatten(1).square().sum(1)
                logits = model(adv)
                loss = (l2 + c * cw_objective(logits, y, target, self.kappa)).sum()
                (grad,) = torch.autograd.grad(loss, delta)
                with torch.no_grad():
                    ok = kappa_success(logits, y, target, self.kappa)
                    won |= ok
                    better = ok & (l2 < best_l2)
                    best_l2 = torch.where(better, l2, best_l2)
                    best = torch.where(better.view(per_image), adv, best)
                    # Adam (Kingma & Ba 2015), bias-corrected, updating delta in place.
                    exp_avg.mul_(b1).add_(grad, alpha=1 - b1)
                    exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1 - b2)
                    denom = exp_avg_sq.sqrt().div_(math.sqrt(1 - b2**t)).add_(_ADAM_EPS)
                    delta.addcdiv_(exp_avg, denom, value=-self.lr / (1 - b1**t))
            delta.requires_grad_(False)
            # Binary search on c (Carlini & Wagner's schedule), per image, on device.
            upper = torch.where(won, torch.minimum(upper, c), upper)
            lower = torch.where(won, lower, torch.maximum(lower, c))
            bounded = upper < _NO_BOUND
            c = torch.where(bounded, (lower + upper) / 2, c * 10)
        return best


@dataclass(frozen=True)
class CWLinf(Attack):
    """Carlini–Wagner loss under an L-inf bound (trendcli's CW-Linf; after arXiv:1608.04644).

    Formulation: PGD-style sign steps that descend the CW objective f inside the eps-ball,
        x_{n+1} = clip_[0,1]( Proj_{||.-x||_inf <= eps}( x_n - alpha * sign(grad_x f(x_n)) ) ),
    f = max(Z_y - max_{i != y} Z_i, -kappa) (targeted: max(max_{i != t} Z_i - Z_t, -kappa)),
    summed over the batch. Once an image's wrong class leads by kappa, f sits at its floor,
    its gradient is 0 and the image stops moving; a larger kappa pushes further within eps.
    This is the margin-loss L-inf attack of Carlini & Wagner's section on L-inf, in the
    projected form (Madry et al. arXiv:1706.06083) rather than their iterative tau search.

    Parameters (pixel units on the [0, 1] scale; kappa in logit units):
        eps: L-inf bound, default 8/255.  alpha: step size, default 0.01.
        steps: default 100 (the authors' CW iteration count).  kappa: default 30.
        random_start: uniform start in the eps-ball, default False.  seed: for it, default 0.

    Call ``attack(model, x, y, target=None)``: x float [N, C, H, W] in [0, 1], y int64 [N];
    returns float32 [N, C, H, W] in [0, 1] with ||x_adv - x||_inf <= eps.
    """

    eps: float = 8 / 255
    alpha: float = 0.01
    steps: int = 100
    kappa: float = 30.0
    random_start: bool = False
    seed: int = 0

    name: ClassVar[str] = "cw_linf"
    norm: ClassVar[str] = "linf"

    def __post_init__(self) -> None:
        check_positive(alpha=self.alpha)
        check_nonnegative(eps=self.eps, kappa=self.kappa)
        check_count(steps=self.steps)

    def _run(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None
    ) -> torch.Tensor:
        start = random_start(x, self.eps, make_generator(x.device, self.seed)) if self.random_start else x
        xa = start.detach().clone().requires_grad_(True)
        for _ in range(self.steps):
            loss = cw_objective(model(xa), y, target, self.kappa).sum()
            (grad,) = torch.autograd.grad(loss, xa)
            with torch.no_grad():
                xa.sub_(grad.sign_(), alpha=self.alpha).sub_(x).clamp_(-self.eps, self.eps).add_(x).clamp_(0.0, 1.0)
        return xa.detach()
