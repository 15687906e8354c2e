"""CIFAR-style ResNet-18/34/50/101: torchvision's ResNet with a 3x3 stride-1 stem, no max-pool.

The stem follows docs/method.md ("Training": CIFAR-style ResNets have a 3x3
stride-1 stem and no max-pool). Blocks, stages and initialization are torchvision's
(``torchvision.models.resnet``); only the stem, the widths and the classifier are adapted.
"""

from __future__ import annotations

from typing import Union

from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from trendcli.architectures.arguments import check_arguments, scale_channels

Block = type[Union[BasicBlock, Bottleneck]]

#: name -> (block, blocks per stage), as in He et al. 2016, table 1.
CONFIGS: dict[str, tuple[Block, list[int]]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
    "resnet101": (Bottleneck, [3, 4, 23, 3]),
}

#: The stem's and the four stages' base widths (before the block expansion).
BASE_WIDTHS = (64, 64, 128, 256, 512)


class CifarResNet(ResNet):
    """torchvision ResNet with a 3x3 stride-1 stem, no max-pool and widths scaled by ``width``.

    Stage widths are ``round(w * width)`` for w in 64, 128, 256, 512 (the stem is 64 x width);
    a 28x28 input leaves the last stage at 4x4, a 32x32 one at 4x4, before global pooling.
    """

    def __init__(self, block: Block, layers: list[int], in_channels: int, num_classes: int, width: float = 1.0):
        # ResNet.__init__ calls self._make_layer with the unscaled widths; the override below
        # reads this mapping, so it must exist before the parent constructor runs.
        self._scaled = {w: scale_channels(w, width) for w in BASE_WIDTHS}
        super().__init__(block, layers, num_classes=num_classes)
        stem = self._scaled[64]
        # Assigning to existing attributes keeps their registration order: conv1 stays the
        # first conv, fc the last linear layer.
        self.conv1 = nn.Conv2d(in_channels, stem, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.bn1 = self._norm_layer(stem)
        self.maxpool = nn.Identity()
        self.fc = nn.Linear(self._scaled[512] * block.expansion, num_classes)

    def _make_layer(
        self, block: Block, planes: int, blocks: int, stride: int = 1, dilate: bool = False
    ) -> nn.Sequential:
        """torchvision's stage builder, with ``planes`` scaled by the width multiplier."""
        if planes == 64:  # the first stage: its input is the (scaled) stem's output
            self.inplanes = self._scaled[64]
        return super()._make_layer(block, self._scaled[planes], blocks, stride, dilate)


def cifar_resnet(
    arch: str, in_channels: int, num_classes: int, image_size: int, width: float = 1.0, pretrained: bool = False
) -> CifarResNet:
    """Build the CIFAR-style ResNet ``arch`` (one of :data:`CONFIGS`)."""
    check_arguments(arch, in_channels, num_classes, image_size, width, pretrained)
    block, layers = CONFIGS[arch]
    return CifarResNet(block, layers, in_channels, num_classes, width)
