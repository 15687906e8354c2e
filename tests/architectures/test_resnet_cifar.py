"""CIFAR-style ResNets on torchvision's ResNet: stem, widths, parameter count."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet18 as tv_resnet18

from trendcli.architectures.resnet_cifar import cifar_resnet


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_stem_is_3x3_stride_1_without_max_pool():
    net = cifar_resnet("resnet18", in_channels=1, num_classes=10, image_size=28)
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1) and net.conv1.in_channels == 1
    assert isinstance(net.maxpool, nn.Identity)


def test_resnet18_differs_from_torchvision_only_in_stem_and_classifier():
    # torchvision ResNet-18 (1000 classes) minus its 7x7 stem conv (64*3*49 = 9408) and fc
    # (512*1000 + 1000 = 513000), plus a 3x3 stem conv (64*3*9 = 1728) and fc (512*10 + 10 = 5130).
    expected = _count(tv_resnet18()) - 9408 - 513000 + 1728 + 5130
    assert _count(cifar_resnet("resnet18", 3, 10, 32)) == expected  # 11,173,962


def test_last_stage_is_4x4_for_32_and_28():
    # No stem stride: 32 -> 32, 16, 8, 4 and 28 -> 28, 14, 7, 4 over the four stages.
    net = cifar_resnet("resnet34", 3, 10, 32, width=0.125)
    for size in (32, 28):
        x = net.relu(net.bn1(net.conv1(torch.zeros(1, 3, size, size))))
        x = net.layer4(net.layer3(net.layer2(net.layer1(x))))
        assert x.shape[-2:] == (4, 4)


def test_width_scales_stem_and_stage_widths():
    # width 0.25: 64, 128, 256, 512 -> 16, 32, 64, 128; Bottleneck outputs 4x that.
    basic = cifar_resnet("resnet18", 3, 10, 32, width=0.25)
    assert basic.conv1.out_channels == 16
    assert [basic.layer1[0].conv1.out_channels, basic.layer2[0].conv1.out_channels] == [16, 32]
    assert [basic.layer3[0].conv1.out_channels, basic.layer4[0].conv1.out_channels] == [64, 128]
    assert basic.fc.in_features == 128
    bottleneck = cifar_resnet("resnet50", 3, 10, 32, width=0.25)
    assert bottleneck.layer1[0].conv1.in_channels == 16
    assert bottleneck.fc.in_features == 128 * 4
