"""The full-precision input "quantizer" ``fp``: the identity."""

from __future__ import annotations

import torch
from torch import nn


class FullPrecision(nn.Module):
    """Identity on the z-score-normalized image (the paper's "FP" models)."""

    role = "input"
    domain = "normalized"

    def __init__(self, per_image: bool = False):
        super().__init__()
        self.name = "fp"
        self.bits: int | None = None
        self.per_image = bool(per_image)  # no statistics involved; kept for a uniform interface

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def extra_repr(self) -> str:
        return "name=fp"
