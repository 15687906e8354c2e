"""ResNet-20 (He et al. 2016, option A): shortcut, layer count and parameter count."""

from __future__ import annotations

import torch
from torch import nn

from trendcli.architectures.resnet20 import ZeroPadShortcut, resnet20


def test_option_a_shortcut_subsamples_and_zero_pads_channels():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])  # [1, 1, 2, 2]
    out = ZeroPadShortcut(in_channels=1, out_channels=3, stride=2)(x)
    # stride 2 keeps x[0, 0, 0, 0] = 1; channels 1 and 2 are zeros.
    assert torch.equal(out, torch.tensor([[[[1.0]], [[0.0]], [[0.0]]]]))


def test_twenty_weighted_layers():
    # 6n + 2 with n = 3: stem conv, 3 stages x 3 blocks x 2 convs, the classifier.
    net = resnet20(3, 10, 32)
    assert sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in net.modules()) == 20


def test_parameter_count_matches_the_paper():
    # convs: 3*16*9 = 432; stage 1: 6 * 16*16*9 = 13824; stage 2: 16*32*9 + 5 * 32*32*9 = 50688;
    # stage 3: 32*64*9 + 5 * 64*64*9 = 202752; BN (2 per channel): 2*16 + 6*32 + 6*64 + 6*128
    # = 1376; fc 64*10 + 10 = 650. Total 269,722 (the paper's "0.27M").
    expected = 432 + 13824 + 50688 + 202752 + 1376 + 650
    assert sum(p.numel() for p in resnet20(3, 10, 32).parameters()) == expected


def test_width_scales_stage_widths():
    net = resnet20(1, 10, 28, width=0.5)
    assert [net.layer1[0].conv1.out_channels, net.layer2[0].conv1.out_channels, net.fc.in_features] == [8, 16, 32]
