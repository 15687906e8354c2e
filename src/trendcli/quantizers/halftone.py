"""Halftoning "HT": a sharpening filter and a threshold (docs/method.md, "Halftoning")."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trendcli.errors import UsageError
from trendcli.quantizers.straight_through import straight_through

#: Kf, applied depthwise (the same kernel for every channel), zero padding 1.
HALFTONE_KERNEL = ((-1.0, -2.0, -1.0), (-2.0, 16.0, -2.0), (-1.0, -2.0, -1.0))
HALFTONE_BIAS = 1e-3
#: Where the gradient of a tied per-image max / min goes (see Halftone).
TIE_RULES = ("first", "split")


class Halftone(nn.Module):
    """HT(x) = 1/2 * sign(Kf * x_hat + 1e-3) + 1/2, values in {0, 1}.

    x_hat = (x - mean(x)) / (max(x) - min(x)), statistics per image over C, H, W
    (docs/method.md "Halftoning"; the authors' utils/halftone.py). Kf * x_hat + 1e-3 is exactly
    0 only by accident; there torch.sign gives 0 and HT gives 1/2 (the formula taken as it
    stands). A constant image (max == min) has x_hat = 0, so HT = 1 everywhere.

    Backward (BPDA): the gradient of the surrogate 1/2 * sigmoid(Kf * x_hat + 1e-3) + 1/2,
    through x_hat (mean, max and min included), not the identity.

    ``ties`` is where the gradient of max(x) and min(x) goes when several pixels share the
    extreme value (about half the pixels of a Fashion-MNIST image are tied at its minimum):
    ``"first"`` (default, the authors' code: ``torch.max(dim)`` sends it to the first such
    pixel in C, H, W order) or ``"split"`` (``amax``/``amin``: shared evenly among them). The
    forward pass is the same for both (docs/method.md, "Differences from the paper and the
    authors' code").
    Input [N, C, H, W]; ``per_image`` is accepted for a uniform interface (HT is always per
    image).
    """

    role = "input"
    domain = "normalized"

    def __init__(self, per_image: bool = False, ties: str = "first"):
        super().__init__()
        if ties not in TIE_RULES:
            raise UsageError(f"ties must be one of {', '.join(TIE_RULES)}, got {ties!r}")
        self.ties = ties
        self.name = "ht"
        self.bits = 1
        self.per_image = bool(per_image)
        kernel = torch.tensor(HALFTONE_KERNEL).view(1, 1, 3, 3)
        # Not persistent: a fixed constant, kept out of the model's state_dict.
        self.register_buffer("kernel", kernel, persistent=False)

    def pre_threshold(self, x: torch.Tensor) -> torch.Tensor:
        """Kf * x_hat + 1e-3, the value HT thresholds at 0 (differentiable)."""
        dims = (1, 2, 3)
        mean = x.mean(dim=dims, keepdim=True)
        if self.ties == "first":  # max(dim) / min(dim) back-propagate to the one index they return
            flat = x.flatten(1)
            high = flat.max(dim=1).values.view(-1, 1, 1, 1)
            low = flat.min(dim=1).values.view(-1, 1, 1, 1)
        else:
            high, low = x.amax(dim=dims, keepdim=True), x.amin(dim=dims, keepdim=True)
        spread = high - low
        spread = torch.where(spread > 0, spread, torch.ones_like(spread))
        x_hat = (x - mean) / spread
        # Depthwise with one shared kernel = every channel as its own 1-channel image; a
        # fixed [1, 1, 3, 3] weight keeps the ONNX graph free of shape-dependent kernels.
        height, width = x.shape[-2:]
        planes = x_hat.reshape(-1, 1, height, width)
        z = F.conv2d(planes, self.kernel.to(dtype=x.dtype), padding=1)
        return z.reshape(x.shape) + HALFTONE_BIAS

    def decision_value(self, x: torch.Tensor) -> torch.Tensor:
        """Kf * x_hat + 1e-3 in float64, the filter as nine shifted sums in a fixed order: the
        value whose sign HT takes (no gradient).

        In float32 the mean and the filter round differently in torch and in onnxruntime, and a
        pixel with |Kf * x_hat + 1e-3| < ~1e-7 can flip (seen on 1 of 10,000 Fashion-MNIST test
        images); in float64 with one summation order the exported graph decides as torch does.
        """
        v = x.detach().double()
        dims = (1, 2, 3)
        mean = v.mean(dim=dims, keepdim=True)
        spread = v.amax(dim=dims, keepdim=True) - v.amin(dim=dims, keepdim=True)
        spread = torch.where(spread > 0, spread, torch.ones_like(spread))
        padded = F.pad((v - mean) / spread, (1, 1, 1, 1))
        z = None
        for i, row in enumerate(HALFTONE_KERNEL):
            for j, weight in enumerate(row):
                term = weight * padded[..., i : (i - 2) or None, j : (j - 2) or None]
                z = term if z is None else z + term
        return z + HALFTONE_BIAS

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hard = (0.5 * torch.sign(self.decision_value(x)) + 0.5).to(x.dtype)
        return straight_through(hard, 0.5 * torch.sigmoid(self.pre_threshold(x)) + 0.5)

    def extra_repr(self) -> str:
        return "name=ht"
