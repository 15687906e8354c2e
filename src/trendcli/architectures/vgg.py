"""VGG-11/13/16/19 (with and without BN) in the CIFAR form: conv features, then one linear layer.

The conv stacks are torchvision's (``torchvision.models.vgg.cfgs`` and ``make_layers``); the
ImageNet head (7x7 pooling and three linear layers) is replaced by the CIFAR convention of a
single ``Linear(512 * width, num_classes)``. Adaptations for small images:

- A 2x2 max-pool is dropped when the feature map entering it is smaller than 2x2 (it would
  leave 0x0). 32x32 keeps all five pools and ends at 1x1; 28x28 goes 28 -> 14 -> 7 -> 3 -> 1
  and drops the fifth.
- Global average pooling precedes the classifier, so images larger than 32 (e.g. 224, which
  ends at 7x7) still feed 512 x width features to it; at 1x1 it is the identity.
"""

from __future__ import annotations

from typing import Union

import torch
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

from trendcli.architectures.arguments import check_arguments, scale_channels

#: name -> (torchvision cfg key, batch norm)
CONFIGS: dict[str, tuple[str, bool]] = {
    "vgg11": ("A", False),
    "vgg13": ("B", False),
    "vgg16": ("D", False),
    "vgg19": ("E", False),
    "vgg11_bn": ("A", True),
    "vgg13_bn": ("B", True),
    "vgg16_bn": ("D", True),
    "vgg19_bn": ("E", True),
}


def small_image_cfg(cfg: list[Union[str, int]], image_size: int, width: float) -> list[Union[str, int]]:
    """A torchvision VGG cfg with channels scaled by ``width`` and the pools a map < 2x2 would enter dropped."""
    out: list[Union[str, int]] = []
    size = image_size
    for v in cfg:
        if v == "M":
            if size >= 2:
                out.append("M")
                size //= 2
        else:
            out.append(scale_channels(int(v), width))
    return out


class CifarVGG(nn.Module):
    """VGG conv features -> global average pooling -> one linear classifier."""

    def __init__(self, features: nn.Sequential, feature_channels: int, num_classes: int):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(feature_channels, num_classes)
        # torchvision's VGG initialization.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def cifar_vgg(
    arch: str, in_channels: int, num_classes: int, image_size: int, width: float = 1.0, pretrained: bool = False
) -> CifarVGG:
    """Build the CIFAR-form VGG ``arch`` (one of :data:`CONFIGS`) for ``image_size`` images."""
    check_arguments(arch, in_channels, num_classes, image_size, width, pretrained)
    key, batch_norm = CONFIGS[arch]
    cfg = small_image_cfg(cfgs[key], image_size, width)
    features = make_layers(cfg, batch_norm=batch_norm)
    # make_layers always starts from 3 channels; swap in a first conv for in_channels.
    first = features[0]
    features[0] = nn.Conv2d(in_channels, first.out_channels, kernel_size=3, padding=1)
    channels = [v for v in cfg if v != "M"]
    return CifarVGG(features, int(channels[-1]), num_classes)
