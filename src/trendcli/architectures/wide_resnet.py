"""Wide ResNets for CIFAR (Zagoruyko & Komodakis 2016, "Wide Residual Networks", arXiv:1605.07146).

WRN-d-k: 3x3 conv (16) -> 3 groups of n = (d - 4) / 6 pre-activation blocks of widths
16k, 32k, 64k (stride 2 at the start of groups 2 and 3) -> BN -> ReLU -> global average
pooling -> linear. A block is BN-ReLU-conv3x3-BN-ReLU-[dropout]-conv3x3 plus a shortcut:
the identity, or where the shape changes a 1x1 conv applied to the block's pre-activated input
(as in the authors' code). torchvision has only the ImageNet ``wide_resnet50_2``.
``width`` multiplies the widen factor k (the 16-channel stem stays).
"""

from __future__ import annotations

import torch
from torch import nn

from trendcli.errors import UsageError
from trendcli.architectures.arguments import check_arguments, scale_channels

#: Widths of the three groups for k = 1.
GROUP_WIDTHS = (16, 32, 64)
STEM_WIDTH = 16


class WideBasicBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv3x3(stride)-BN-ReLU-dropout-conv3x3, plus the shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int, dropout: float = 0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.relu1(self.bn1(x))
        out = self.conv2(self.dropout(self.relu2(self.bn2(self.conv1(a)))))
        return out + (x if self.shortcut is None else self.shortcut(a))


class WideResNet(nn.Module):
    """WRN-depth-widen_factor for CIFAR-sized images."""

    def __init__(self, depth: int, widen_factor: float, in_channels: int, num_classes: int, dropout: float = 0.0):
        super().__init__()
        if (depth - 4) % 6 != 0 or depth < 10:
            raise UsageError(f"WideResNet depth must be 6n + 4 with n >= 1, got {depth}")
        n = (depth - 4) // 6
        self.conv1 = nn.Conv2d(in_channels, STEM_WIDTH, 3, padding=1, bias=False)
        groups, in_planes = [], STEM_WIDTH
        for i, base in enumerate(GROUP_WIDTHS):
            planes = scale_channels(base, widen_factor)
            blocks = []
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(WideBasicBlock(in_planes, planes, stride, dropout))
                in_planes = planes
            groups.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = groups
        self.bn = nn.BatchNorm2d(in_planes)
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        return self.fc(torch.flatten(self.avgpool(self.relu(self.bn(x))), 1))


def wide_resnet(
    arch: str,
    depth: int,
    widen_factor: int,
    in_channels: int,
    num_classes: int,
    image_size: int,
    width: float = 1.0,
    pretrained: bool = False,
) -> WideResNet:
    """Build WRN-``depth``-``widen_factor`` with the widen factor multiplied by ``width``."""
    check_arguments(arch, in_channels, num_classes, image_size, width, pretrained)
    return WideResNet(depth, widen_factor * width, in_channels, num_classes)


def wrn28_10(
    in_channels: int, num_classes: int, image_size: int, width: float = 1.0, pretrained: bool = False
) -> WideResNet:
    """Build WRN-28-10 (36.5M parameters for 10 classes)."""
    return wide_resnet("wrn28_10", 28, 10, in_channels, num_classes, image_size, width, pretrained)


def wrn16_4(
    in_channels: int, num_classes: int, image_size: int, width: float = 1.0, pretrained: bool = False
) -> WideResNet:
    """Build WRN-16-4 (2.7M parameters for 10 classes)."""
    return wide_resnet("wrn16_4", 16, 4, in_channels, num_classes, image_size, width, pretrained)
