"""Composition of a zoo member: normalization -> input quantizer -> quantized network."""

from __future__ import annotations

import torch
from torch import nn

from trendcli.zoo.spec import ModelSpec


class Normalize(nn.Module):
    """z-score per channel: (x - mean_c) / std_c."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class TrendModel(nn.Module):
    """A classifier on images in [0, 1]: what attacks differentiate through (with BPDA).

    ``input_quant.domain == "normalized"``: normalize, then quantize (the paper's Qb and HT).
    ``"pixel"``: quantize the [0, 1] image, then normalize (error diffusion, ht-fs).
    """

    def __init__(self, spec: ModelSpec, network: nn.Module, input_quant: nn.Module):
        super().__init__()
        self.spec = spec
        self.normalize = Normalize(spec.mean, spec.std)
        self.input_quant = input_quant
        self.network = network
        self.meta: dict = {}

    @property
    def name(self) -> str:
        return self.meta.get("id") or self.spec.arch

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        if getattr(self.input_quant, "domain", "normalized") == "pixel":
            return self.normalize(self.input_quant(x))
        return self.input_quant(self.normalize(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(self.preprocess(x))
