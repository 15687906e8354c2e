"""The momentum iterative FGSM family: MI-FGSM, with input diversity (DI) and translation invariance (TI)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from trendcli.attacks.base import Attack, check_count, check_nonnegative, check_positive
from trendcli.attacks.objectives import forward_all, gradient_loss, strict_params
from trendcli.errors import UsageError

__all__ = ["MIFGSM", "diverse_input", "gaussian_kernel"]

TI_NSIG = 3.0  # the kernel spans +-3 standard deviations (the TI authors' code)


def gaussian_kernel(size: int, nsig: float = TI_NSIG) -> torch.Tensor:
    """W [size, size]: W_ij = g(u_i) g(u_j) / sum, g the standard normal density, u = linspace(-nsig, nsig, size)."""
    u = torch.linspace(-nsig, nsig, size, dtype=torch.float64)
    g = torch.exp(-0.5 * u * u)
    kernel = torch.outer(g, g)
    return (kernel / kernel.sum()).to(torch.float32)


def diverse_input(x: torch.Tensor, resize_rate: float, gen: torch.Generator) -> torch.Tensor:
    """T(x): resize to r x r, r uniform in [floor(resize_rate * H), H), then zero-pad back to H x W at a random offset.

    The shrink-and-pad form keeps the input size (torchattacks' DIFGSM with resize_rate < 1),
    so it fits models with a fixed input size. One draw per batch, from a CPU generator (the
    sizes are host integers; no device sync).
    """
    h, w = x.shape[-2:]
    low = int(h * resize_rate)
    if low >= h:
        return x
    r = int(torch.randint(low, h, (1,), generator=gen))
    rescaled = F.interpolate(x, size=(r, r * w // h), mode="bilinear", align_corners=False)
    pad_h, pad_w = h - rescaled.shape[-2], w - rescaled.shape[-1]
    top = int(torch.randint(0, pad_h + 1, (1,), generator=gen))
    left = int(torch.randint(0, pad_w + 1, (1,), generator=gen))
    return F.pad(rescaled, (left, pad_w - left, top, pad_h - top), value=0.0)


@strict_params
@dataclass(frozen=True)
class MIFGSM(Attack):
    """MI-FGSM, L-inf (Dong et al. 2018, arXiv:1710.06081), optionally DI (Xie et al. 2019,
    arXiv:1803.06978) and TI (Dong et al. 2019, arXiv:1904.02884): DI-TI-MI-FGSM when all on.

        G = grad_x L(f(T(x_n)), y)                     T = diverse_input with prob diversity_prob, else identity
        G = W * G                                      TI only: depthwise convolution with the Gaussian kernel W
        g_{n+1} = decay * g_n + G / mean(|G|)          per image (mean over C, H, W)
        x_{n+1} = clip_[0,1]( Proj_{||.-x||_inf <= eps}( x_n + alpha * sign(g_{n+1}) ) )
    from x_0 = x, g_0 = 0; L the cross-entropy summed over the batch (targeted: L =
    -CE(f(T(x_n)), target)). On an ensemble L is the mean of the members' losses (Dong et al. fuse logits
    instead). mean(|G|) is ||G||_1 / d, a constant rescaling of the paper's L1 normalisation
    (same signs; the torchattacks form). The DI draws (apply?, size, offset) are one per step
    for the whole batch from a CPU generator seeded with ``seed``, so an image's result does
    not depend on its batch-mates.

    Parameters (pixel units on the [0, 1] scale):
        eps: L-inf bound, default 8/255.
        steps: iterations, default 10.
        alpha: step size, default None = eps / steps.
        decay: momentum mu, default 1.0 (0 gives I-FGSM with L1-normalised gradients).
        diversity_prob: probability of the DI transform per step, default 0 (off; DI uses 0.5).
        resize_rate: DI's smallest size as a fraction of the side, default 0.9.
        ti_kernel: side of TI's Gaussian kernel (odd), default 0 (off; e.g. 7 or 15).
        seed: seed of the DI draws, default 0.

    Call ``attack(model, x, y, target=None)``: x float [N, C, H, W] in [0, 1], y int64 [N];
    returns float32 [N, C, H, W] in [0, 1] with ||x_adv - x||_inf <= eps.
    """

    eps: float = 8 / 255
    steps: int = 10
    alpha: float | None = None
    decay: float = 1.0
    diversity_prob: float = 0.0
    resize_rate: float = 0.9
    ti_kernel: int = 0
    seed: int = 0

    name: ClassVar[str] = "mifgsm"
    norm: ClassVar[str] = "linf"

    def __post_init__(self) -> None:
        check_nonnegative(eps=self.eps, decay=self.decay)
        check_count(steps=self.steps)
        if self.alpha is not None:
            check_positive(alpha=self.alpha)
        if not 0 <= self.diversity_prob <= 1:
            raise UsageError(f"diversity_prob must lie in [0, 1], got {self.diversity_prob}")
        if not 0 < self.resize_rate <= 1:
            raise UsageError(f"resize_rate must lie in (0, 1], got {self.resize_rate}")
        k = self.ti_kernel
        if isinstance(k, bool) or not isinstance(k, int) or (k != 0 and (k < 3 or k % 2 == 0)):
            raise UsageError(f"ti_kernel must be 0 (off) or an odd integer >= 3, got {k!r}")

    @property
    def step_size(self) -> float:
        """alpha, or eps / steps when alpha is None."""
        return self.eps / self.steps if self.alpha is None else self.alpha

    def _run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        return self._attack([model], x, y, target, "first")

    def _attack(self, members: Sequence[nn.Module], x, y, target, tie_break: str) -> torch.Tensor:
        if self.eps == 0:
            return x.clone()
        gen = torch.Generator().manual_seed(int(self.seed))
        kernel = None
        if self.ti_kernel:
            c = x.shape[1]
            kernel = gaussian_kernel(self.ti_kernel).to(x.device).expand(c, 1, -1, -1).contiguous()
        xa = x.clone()
        momentum = torch.zeros_like(x)
        for _ in range(self.steps):
            xa.requires_grad_(True)
            inp = xa
            if self.diversity_prob and float(torch.rand((1,), generator=gen)) < self.diversity_prob:
                inp = diverse_input(xa, self.resize_rate, gen)
            logits = forward_all(members, inp, self.name, need_grad=True)
            # CE(f(x), y), or -CE(f(x), target): ascending it descends the target's CE
            loss = torch.stack([gradient_loss(z, "ce", y, target) for z in logits]).mean(0).sum()
            (grad,) = torch.autograd.grad(loss, xa)
            xa.requires_grad_(False)
            with torch.no_grad():
                if kernel is not None:
                    grad = F.conv2d(grad, kernel, padding=self.ti_kernel // 2, groups=x.shape[1])
                grad = grad / grad.abs().mean((1, 2, 3), keepdim=True).clamp_min(1e-12)
                momentum.mul_(self.decay).add_(grad)
                xa.add_(momentum.sign(), alpha=self.step_size).sub_(x).clamp_(-self.eps, self.eps).add_(x).clamp_(0.0, 1.0)
        return xa.detach()
