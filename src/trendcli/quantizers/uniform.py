"""Uniform input quantization "Qb" on the normalized image (docs/method.md, "Input quantization")."""

from __future__ import annotations

import torch
from torch import nn

from trendcli.errors import UsageError
from trendcli.quantizers.straight_through import straight_through

MAX_INPUT_BITS = 8


class UniformQuantizer(nn.Module):
    """Qb: 2^b bins between the minimum and the maximum, each value sent to its bin centre.

    With lo = min(X), hi = max(X) over the whole minibatch tensor (``per_image=True``: over
    C, H, W of each image), paper eqs. 2-3 and the authors' utils/quantise.py:

        Delta = (hi - lo) / 2^b
        j     = min(floor((X - lo) / Delta), 2^b - 1)
        X_q   = lo + (j + 1/2) * Delta

    A value exactly on a threshold lo + k*Delta goes to the upper bin k (up to the rounding of
    the division); the maximum goes to the top bin. A constant tensor (hi == lo) has Delta = 0
    and comes back unchanged (X_q = lo), without NaN. Backward: identity (BPDA).
    """

    role = "input"
    domain = "normalized"

    def __init__(self, bits: int, per_image: bool = False):
        super().__init__()
        if not 1 <= int(bits) <= MAX_INPUT_BITS:
            raise UsageError(f"input quantization bits must be 1..{MAX_INPUT_BITS}, got {bits}")
        self.bits = int(bits)
        self.per_image = bool(per_image)
        self.name = f"q{self.bits}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels = 2**self.bits
        v = x.detach()
        if self.per_image:
            shape = (-1,) + (1,) * (v.dim() - 1)
            flat = v.flatten(1)
            lo, hi = flat.amin(dim=1).view(shape), flat.amax(dim=1).view(shape)
        else:
            lo, hi = v.amin(), v.amax()
        delta = (hi - lo) / levels
        # hi == lo: any finite divisor gives j = 0 and X_q = lo + 0 = lo, the input itself.
        safe = torch.where(delta > 0, delta, torch.ones_like(delta))
        j = torch.floor((v - lo) / safe).clamp(max=levels - 1)
        return straight_through(lo + (j + 0.5) * delta, x)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, per_image={self.per_image}"
