"""The curated timm models: trendcli name -> timm name and what trendcli needs to know.

No torch or timm here: ``trend plugins`` reads this table through the hook in
:mod:`trend_timm` without importing either.
"""

from __future__ import annotations

from dataclasses import dataclass

#: trendcli registers each model under this prefix plus timm's name (``timm_resnet18``); the
#: prefix keeps timm's ``resnet18`` apart from trendcli's built-in CIFAR ``resnet18``.
PREFIX = "timm_"


@dataclass(frozen=True)
class TimmModel:
    """One curated timm model."""

    timm_name: str
    activation: str  # the published network's activations ("relu" when every one is an nn.ReLU)
    min_size: int  # the smallest square image the network accepts
    patch_size: int | None = None  # vision transformers: the patch embedding's stride
    summary: str = ""


MODELS: dict[str, TimmModel] = {
    PREFIX + m.timm_name: m
    for m in (
        TimmModel("resnet18", "relu", 1, summary="ResNet-18 (He et al. 2016), 11.2M parameters"),
        TimmModel(
            "mobilenetv3_small_050", "relu+hardswish", 1,
            summary="MobileNetV3-Small 0.5x (Howard et al. 2019), 0.6M parameters",
        ),
        TimmModel("efficientnet_b0", "silu", 1, summary="EfficientNet-B0 (Tan and Le 2019), 4.0M parameters"),
        TimmModel(
            "vit_tiny_patch16_224", "gelu", 16, patch_size=16,
            summary="ViT-Tiny/16 (Dosovitskiy et al. 2021), 5.4M parameters",
        ),
        TimmModel("convnext_atto", "gelu", 32, summary="ConvNeXt-Atto (Liu et al. 2022), 3.4M parameters"),
    )
}


def description(name: str) -> str:
    """The one line ``trend plugins`` shows for ``name``."""
    m = MODELS[name]
    return f"timm {m.timm_name}: {m.summary}; {m.activation} activations"
