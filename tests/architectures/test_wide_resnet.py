"""Wide ResNets (Zagoruyko & Komodakis 2016): depth rule, widths, parameter counts."""

from __future__ import annotations

import pytest
from torch import nn

from trendcli.architectures.wide_resnet import WideResNet, wrn16_4, wrn28_10
from trendcli.errors import UsageError


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_match_the_paper():
    # The paper's table 4 / 5: WRN-16-4 has 2.7M parameters, WRN-28-10 36.5M (CIFAR-10).
    assert round(_count(wrn16_4(3, 10, 32)) / 1e6, 1) == 2.7
    assert round(_count(wrn28_10(3, 10, 32)) / 1e6, 1) == 36.5


def test_blocks_and_shortcuts():
    # WRN-16-4: n = (16 - 4) / 6 = 2 blocks per group; 1x1 shortcuts where the shape changes
    # (16 -> 64 in group 1, then the two stride-2 groups): 3 of them.
    net = wrn16_4(3, 10, 32)
    assert [len(g) for g in (net.layer1, net.layer2, net.layer3)] == [2, 2, 2]
    assert sum(b.shortcut is not None for g in (net.layer1, net.layer2, net.layer3) for b in g) == 3
    assert net.layer3[-1].conv2.out_channels == 64 * 4


def test_width_multiplies_the_widen_factor():
    # wrn28_10 at width 0.25: k = 2.5, groups 40, 80, 160; the 16-channel stem stays.
    net = wrn28_10(1, 10, 28, width=0.25)
    assert net.conv1.out_channels == 16
    assert [net.layer1[0].conv1.out_channels, net.layer2[0].conv1.out_channels, net.fc.in_features] == [40, 80, 160]


def test_depth_must_be_6n_plus_4():
    with pytest.raises(UsageError, match="6n \\+ 4"):
        WideResNet(depth=20, widen_factor=1, in_channels=3, num_classes=10)
