"""Argument checks and channel scaling shared by every architecture factory."""

from __future__ import annotations

from trendcli.errors import UsageError


def check_arguments(
    arch: str,
    in_channels: int,
    num_classes: int,
    image_size: int,
    width: float,
    pretrained: bool,
    *,
    min_image_size: int = 1,
    has_width: bool = True,
    has_pretrained: bool = False,
) -> None:
    """Raise ``UsageError`` (one line) for an argument the factory of ``arch`` cannot honour."""
    if in_channels < 1:
        raise UsageError(f"{arch}: in_channels must be >= 1, got {in_channels}")
    if num_classes < 1:
        raise UsageError(f"{arch}: num_classes must be >= 1, got {num_classes}")
    if image_size < min_image_size:
        raise UsageError(
            f"{arch} needs images of at least {min_image_size}x{min_image_size}, got {image_size}x{image_size}; "
            f"choose another architecture or resize the images"
        )
    if width <= 0:
        raise UsageError(f"{arch}: width must be positive, got {width}")
    if not has_width and width != 1.0:
        raise UsageError(f"{arch} has fixed channel widths; use width=1 (got {width})")
    if pretrained and not has_pretrained:
        raise UsageError(
            f"{arch} has no pretrained weights; only the tv_* architectures load pretrained ImageNet weights"
        )


def scale_channels(channels: int, width: float) -> int:
    """Channels of a layer under a width multiplier: max(1, round(channels * width))."""
    return max(1, int(round(channels * width)))
