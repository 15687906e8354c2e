"""The timm factory behind every ``timm_*`` name: trendcli's shape arguments -> ``timm.create_model``.

- ``in_channels`` -> timm's ``in_chans`` (with pretrained weights timm adapts the RGB stem:
  summed for one channel), ``num_classes`` -> ``num_classes`` (a new classifier when it
  differs from the published 1000), ``image_size`` -> ``img_size`` for vision transformers
  (their position embedding is built, or resampled from the pretrained one, for that size;
  a size that is not a multiple of the patch is padded up). CNNs take any size from their
  ``min_size`` up.
- ``width``: timm's models have no channel multiplier, so only 1.0.
- ``pretrained``: the published weights from the local Hugging Face / torch hub cache
  (:mod:`trend_timm.weights`), never a download.
- ``activation`` (an ``arch_args`` entry): ``"native"`` keeps the published activations,
  ``"relu"`` builds the network with ``nn.ReLU`` everywhere timm's ``act_layer`` reaches.
  trendcli's activation quantization replaces ``nn.ReLU`` modules only: SiLU, GELU and
  Hardswish stay full precision (so ``act_bits`` on a GELU ViT would change nothing, and
  trendcli refuses it); train with ``activation="relu"`` for quantized activations.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from trendcli.errors import UsageError
from trend_timm.catalog import MODELS

ACTIVATIONS = ("native", "relu")


def _check(arch: str, in_channels: int, num_classes: int, image_size: int, width: float, activation: str) -> None:
    for name, value in (("in_channels", in_channels), ("num_classes", num_classes), ("image_size", image_size)):
        if not isinstance(value, int) or value < 1:
            raise UsageError(f"{arch}: {name} must be a positive integer, got {value!r}")
    if width != 1.0:
        raise UsageError(f"{arch}: timm models have no width multiplier; use width=1.0, got {width}")
    if activation not in ACTIVATIONS:
        raise UsageError(f"{arch}: activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    spec = MODELS[arch]
    if image_size < spec.min_size:
        raise UsageError(f"{arch} needs images of at least {spec.min_size} px, got image_size={image_size}")


def timm_model(
    arch: str,
    in_channels: int,
    num_classes: int,
    image_size: int,
    width: float = 1.0,
    pretrained: bool = False,
    activation: str = "native",
) -> nn.Module:
    """timm's ``MODELS[arch].timm_name`` for trendcli's input shape and classes (see the module docstring)."""
    if arch not in MODELS:
        raise UsageError(f"unknown timm architecture {arch!r}; known: {', '.join(sorted(MODELS))}")
    _check(arch, in_channels, num_classes, image_size, width, activation)
    spec = MODELS[arch]
    try:
        import timm
    except ImportError:
        raise UsageError(f"{arch} needs timm: pip install 'trendcli[timm]'") from None
    kwargs: dict[str, Any] = {"num_classes": num_classes, "in_chans": in_channels}
    if spec.patch_size is not None:
        kwargs["img_size"] = image_size
        if image_size % spec.patch_size:
            kwargs.update(dynamic_img_pad=True, dynamic_img_size=True)
    if activation == "relu" and spec.activation != "relu":
        if pretrained:
            raise UsageError(
                f"{arch}'s published weights were trained with {spec.activation} activations; "
                "use activation='native' with pretrained=True, or train from scratch"
            )
        kwargs["act_layer"] = "relu"
    if pretrained:
        from trend_timm.weights import cached_state_dict

        kwargs.update(pretrained=True, pretrained_cfg_overlay={"state_dict": cached_state_dict(arch, spec.timm_name)})
    return timm.create_model(spec.timm_name, **kwargs)
