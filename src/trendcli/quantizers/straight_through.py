"""The straight-through / BPDA composition shared by every quantizer."""

from __future__ import annotations

import torch


def straight_through(hard: torch.Tensor, surrogate: torch.Tensor) -> torch.Tensor:
    """Forward value ``hard`` exactly, backward the gradient of ``surrogate`` (BPDA).

    out = hard.detach() + (surrogate - surrogate.detach())

    ``surrogate - surrogate.detach()`` is exactly zero for finite values, so the forward value
    is ``hard`` bit for bit (the common ``s + (hard - s).detach()`` form is off by rounding,
    which would blur a quantizer's levels). The graph is plain tensor ops, so it traces and
    exports to ONNX as they are.
    """
    return hard.detach() + (surrogate - surrogate.detach())
