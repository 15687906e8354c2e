"""DenseNet-121 on torchvision's ``DenseNet``: a CIFAR form (3x3 stem, no initial pool) and a
subclass whose final ReLU is a module.

torchvision's ``DenseNet.forward`` applies its last ReLU functionally (``F.relu`` after
``features``), where activation quantization could not replace it. :class:`ModuleReluDenseNet`
appends that ReLU to ``features`` as the module ``relu5`` and overrides ``forward``; the
function and the state-dict keys are unchanged (a ReLU has no parameters), so torchvision's
pretrained weights still load.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchvision.models.densenet import DenseNet

from trendcli.architectures.arguments import check_arguments, scale_channels

#: DenseNet-121 (Huang et al. 2017, table 1): growth rate, layers per block, initial features.
GROWTH_RATE = 32
BLOCK_CONFIG = (6, 12, 24, 16)
INIT_FEATURES = 64


class ModuleReluDenseNet(DenseNet):
    """torchvision DenseNet with every ReLU an ``nn.Module`` (the last one is ``features.relu5``)."""

    def __init__(self, *args: Any, **kwargs: Any):
        """Take torchvision ``DenseNet``'s arguments."""
        super().__init__(*args, **kwargs)
        self.features.add_module("relu5", nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(out, 1))


class CifarDenseNet(ModuleReluDenseNet):
    """DenseNet-BC with a 3x3 stride-1 stem conv and no initial max-pool (for 32x32 images).

    ``width`` scales the growth rate (32) and the initial features (64); three 2x2 average
    pools in the transitions take 32x32 to 4x4 and 28x28 to 3x3 before global pooling.
    """

    def __init__(self, in_channels: int, num_classes: int, width: float = 1.0):
        init_features = scale_channels(INIT_FEATURES, width)
        super().__init__(
            growth_rate=scale_channels(GROWTH_RATE, width),
            block_config=BLOCK_CONFIG,
            num_init_features=init_features,
            num_classes=num_classes,
        )
        self.features.conv0 = nn.Conv2d(in_channels, init_features, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(self.features.conv0.weight)  # torchvision's DenseNet init
        del self.features.pool0


def densenet121(
    in_channels: int, num_classes: int, image_size: int, width: float = 1.0, pretrained: bool = False
) -> CifarDenseNet:
    """Build a CIFAR-form DenseNet-121 (images of at least 8x8: three 2x2 pools)."""
    check_arguments("densenet121", in_channels, num_classes, image_size, width, pretrained, min_image_size=8)
    return CifarDenseNet(in_channels, num_classes, width)
