"""ResNet-20 for CIFAR (He et al. 2016, "Deep Residual Learning", section 4.2), option A shortcuts.

3x3 conv (16) -> 3 stages of 3 BasicBlocks (16, 32, 64 channels; stride 2 at the start of
stages 2 and 3) -> global average pooling -> linear: 6n + 2 = 20 weighted layers with n = 3.
Where a block changes shape, the shortcut is the paper's option A for CIFAR: the identity
subsampled by the stride and zero-padded to the new channel count (no parameters), which
gives the paper's 0.27M parameters. Blocks are torchvision's ``BasicBlock``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock

from trendcli.architectures.arguments import check_arguments, scale_channels

#: Stage widths and blocks per stage of ResNet-20.
STAGE_WIDTHS = (16, 32, 64)
BLOCKS_PER_STAGE = 3


class ZeroPadShortcut(nn.Module):
    """Option A shortcut: x[:, :, ::stride, ::stride], zero channels appended up to ``out_channels``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.extra, self.stride = out_channels - in_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        # F.pad's last pair pads dim 1 (channels) when given (W, W, H, H, C, C).
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))


class ResNet20(nn.Module):
    """The CIFAR ResNet-20 with stage widths 16, 32, 64 scaled by ``width``."""

    def __init__(self, in_channels: int, num_classes: int, width: float = 1.0):
        super().__init__()
        widths = [scale_channels(w, width) for w in STAGE_WIDTHS]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        stages, inplanes = [], widths[0]
        for i, planes in enumerate(widths):
            blocks = []
            for j in range(BLOCKS_PER_STAGE):
                stride = 2 if i > 0 and j == 0 else 1
                shortcut = None
                if stride != 1 or inplanes != planes:
                    shortcut = ZeroPadShortcut(inplanes, planes, stride)
                blocks.append(BasicBlock(inplanes, planes, stride, downsample=shortcut))
                inplanes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet20(
    in_channels: int, num_classes: int, image_size: int, width: float = 1.0, pretrained: bool = False
) -> ResNet20:
    """Build a CIFAR ResNet-20 (option A shortcuts)."""
    check_arguments("resnet20", in_channels, num_classes, image_size, width, pretrained)
    return ResNet20(in_channels, num_classes, width)
