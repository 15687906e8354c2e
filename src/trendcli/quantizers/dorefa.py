"""DoReFa weight and activation quantization "Wb" / "Ab" (docs/method.md, "Weight and activation
quantization"; the authors' utils/quant_dorefa.py)."""

from __future__ import annotations

import torch
from torch import nn

from trendcli.errors import UsageError
from trendcli.quantizers.straight_through import straight_through

FULL_PRECISION_BITS = 32
MAX_BITS = 16


def check_bits(bits: int | None) -> int | None:
    """``bits`` as an int in 1..16, or None for full precision (None or >= 32)."""
    if bits is None or int(bits) >= FULL_PRECISION_BITS:
        return None
    if not 1 <= int(bits) <= MAX_BITS:
        raise UsageError(f"DoReFa bits must be 1..{MAX_BITS} or 32 (full precision), got {bits}")
    return int(bits)


def quantize_unit(u: torch.Tensor, bits: int) -> torch.Tensor:
    """q_k(u) = round(u * (2^k - 1)) / (2^k - 1) for u in [0, 1]; straight-through on round.

    torch.round sends halves to even (as ONNX Round does), e.g. q_1(1/2) = 0.
    """
    n = float(2**bits - 1)
    return straight_through(torch.round(u.detach() * n) / n, u)


class DoReFaWeight(nn.Module):
    """W -> W_q, per layer (a parametrization of a conv/linear weight).

    m = max|tanh(W)| (no gradient through m);
    W_q = m * (2 * q_k(tanh(W) / (2m) + 1/2) - 1): 2^k levels m * (2l / (2^k - 1) - 1),
    l = 0..2^k-1, symmetric, including +-m, never 0.
    k = 1: W_q = m * sign(W) with sign(0) := +1, two levels. (The formula would give -m at
    W = 0, since torch.round(1/2) = 0, while for k >= 2 it sends W = 0 to the smallest
    positive level; +1 keeps k = 1 in line. The sign is read from W itself, so tiny weights
    keep it where tanh(W)/(2m) + 1/2 rounds to 1/2 in float32.)
    Backward, every k: the gradient of tanh(W), i.e. the formula with round replaced by the
    identity and m held fixed.
    All-zero weights (m = 0) stay zero.
    """

    role = "weight"

    def __init__(self, bits: int):
        super().__init__()
        checked = check_bits(bits)
        if checked is None:
            raise UsageError(
                "DoReFaWeight needs 1..16 bits; use dorefa_weight(32) for full precision"
            )
        self.bits = checked
        self.name = "dorefa"

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        t = torch.tanh(w)
        m = t.detach().abs().amax()
        if self.bits == 1:
            hard = m * torch.where(w.detach() >= 0, 1.0, -1.0).to(w.dtype)
            return straight_through(hard, t)
        safe = torch.where(m > 0, m, torch.ones_like(m))
        return m * (2 * quantize_unit(t / (2 * safe) + 0.5, self.bits) - 1)

    def extra_repr(self) -> str:
        return f"bits={self.bits}"


class DoReFaActivation(nn.Module):
    """A_q = q_k(clip(x, 0, 1)), put where the network has a ReLU.

    Backward: one inside [0, 1], zero outside (the clip's gradient; straight-through on
    round). A1 = 1[x > 1/2] (round(1/2) = 0); A16 still clips at 1.
    """

    role = "activation"

    def __init__(self, bits: int):
        super().__init__()
        checked = check_bits(bits)
        if checked is None:
            raise UsageError(
                "DoReFaActivation needs 1..16 bits; use dorefa_activation(32) for a ReLU"
            )
        self.bits = checked
        self.name = "dorefa"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return quantize_unit(torch.clamp(x, 0.0, 1.0), self.bits)

    def extra_repr(self) -> str:
        return f"bits={self.bits}"


def dorefa_weight(bits: int | None = FULL_PRECISION_BITS) -> nn.Module:
    """The weight quantizer for ``bits`` (1..16); ``nn.Identity()`` for 32 or None."""
    checked = check_bits(bits)
    return nn.Identity() if checked is None else DoReFaWeight(checked)


def dorefa_activation(bits: int | None = FULL_PRECISION_BITS) -> nn.Module:
    """The activation quantizer for ``bits`` (1..16); a plain ``nn.ReLU()`` for 32 or None."""
    checked = check_bits(bits)
    return nn.ReLU() if checked is None else DoReFaActivation(checked)
