"""DenseNet-121 on torchvision's DenseNet: CIFAR stem, module ReLU, unchanged function."""

from __future__ import annotations

import torch
from torchvision.models.densenet import DenseNet

from trendcli.architectures.densenet import ModuleReluDenseNet, densenet121


def test_cifar_stem_is_3x3_stride_1_without_pool():
    net = densenet121(1, 10, 28)
    assert net.features.conv0.kernel_size == (3, 3) and net.features.conv0.stride == (1, 1)
    assert net.features.conv0.in_channels == 1
    assert "pool0" not in dict(net.features.named_children())


def test_width_scales_growth_rate_and_initial_features():
    # width 0.5: growth 32 -> 16, initial features 64 -> 32.
    net = densenet121(3, 10, 32, width=0.5)
    assert net.features.conv0.out_channels == 32
    assert net.features.denseblock1.denselayer1.conv2.out_channels == 16


def test_module_relu_densenet_computes_what_torchvision_does():
    # Same state dict (a ReLU has no parameters), same logits as torchvision's F.relu forward.
    torch.manual_seed(0)
    config = dict(growth_rate=4, block_config=(1, 1, 1, 1), num_init_features=8, num_classes=5)
    reference = DenseNet(**config).eval()
    ours = ModuleReluDenseNet(**config).eval()
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours(x), reference(x))
    assert list(ours.features.named_children())[-1][0] == "relu5"
