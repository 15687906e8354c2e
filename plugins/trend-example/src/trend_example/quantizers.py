"""The ``binarize`` input quantizer."""

from __future__ import annotations

import torch
from torch import nn


class Binarize(nn.Module):
    """x -> 1[x > 0] on the z-scored image; backward is the identity (BPDA)."""

    domain = "normalized"
    name = "binarize"
    bits = 1

    def __init__(self, per_image: bool = False):
        super().__init__()
        self.per_image = bool(per_image)  # the threshold does not depend on batch statistics

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hard = (x > 0).to(x.dtype)
        # Forward: exactly `hard`; backward: the identity (x - x.detach() is 0 in value).
        return hard.detach() + (x - x.detach())
