"""Example trendcli plugin: the `example_mlp` architecture and the `binarize` input quantizer."""

from __future__ import annotations

import torch
from torch import nn

from trendcli import hookimpl


class ExampleMLP(nn.Sequential):
    """Flatten -> Linear -> ReLU -> Linear: works for any input shape."""

    def __init__(self, in_features: int, num_classes: int, hidden: int):
        super().__init__(nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


def example_mlp(in_channels: int, num_classes: int, image_size: int, width: float = 1.0, pretrained: bool = False) -> nn.Module:
    """An MLP with ``256 * width`` hidden units."""
    if pretrained:
        raise ValueError("example_mlp has no pretrained weights")
    return ExampleMLP(in_channels * image_size * image_size, num_classes, max(1, int(256 * width)))


class Binarize(nn.Module):
    """x -> 1[x > 0] on the z-scored image; backward is the identity (BPDA)."""

    domain = "normalized"
    name = "binarize"
    bits = 1

    def __init__(self, per_image: bool = False):
        super().__init__()
        self.per_image = per_image  # the threshold does not depend on batch statistics

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hard = (x > 0).to(x.dtype)
        return x + (hard - x).detach()


@hookimpl
def trend_architectures() -> dict:
    return {"example_mlp": example_mlp}


@hookimpl
def trend_input_quantizers() -> dict:
    return {"binarize": Binarize}
