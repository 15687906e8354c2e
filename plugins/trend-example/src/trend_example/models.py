"""The ``example_mlp`` architecture."""

from __future__ import annotations

from torch import nn

from trendcli.errors import UsageError


class ExampleMLP(nn.Sequential):
    """Flatten -> Linear -> ReLU -> Linear: works for any input shape."""

    def __init__(self, in_features: int, num_classes: int, hidden: int):
        super().__init__(nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


def example_mlp(
    in_channels: int, num_classes: int, image_size: int, width: float = 1.0, pretrained: bool = False
) -> ExampleMLP:
    """An MLP with ``max(1, round(256 * width))`` hidden units; no pretrained weights."""
    for name, value in (("in_channels", in_channels), ("num_classes", num_classes), ("image_size", image_size)):
        if value < 1:
            raise UsageError(f"example_mlp: {name} must be >= 1, got {value}")
    if not width > 0:
        raise UsageError(f"example_mlp: width must be positive, got {width}")
    if pretrained:
        raise UsageError("example_mlp has no pretrained weights; train it with pretrained=False")
    hidden = max(1, int(round(256 * width)))
    return ExampleMLP(in_channels * image_size * image_size, num_classes, hidden)
