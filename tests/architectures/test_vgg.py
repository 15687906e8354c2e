"""CIFAR-form VGG on torchvision's cfgs: pools kept for small images, widths, head."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

from trendcli.architectures.vgg import cifar_vgg, small_image_cfg


def test_28x28_drops_the_fifth_pool_and_32x32_keeps_all():
    # 28 -> 14 -> 7 -> 3 -> 1: a fifth pool would enter 1x1. 32 -> 16 -> 8 -> 4 -> 2 -> 1.
    assert small_image_cfg(cfgs["A"], 28, 1.0).count("M") == 4
    assert small_image_cfg(cfgs["A"], 32, 1.0).count("M") == 5
    assert small_image_cfg(cfgs["A"], 28, 0.5) == [32, "M", 64, "M", 128, 128, "M", 256, 256, "M", 256, 256]


def test_features_end_at_1x1_for_28_and_32():
    for size in (28, 32):
        net = cifar_vgg("vgg11_bn", 1, 10, size, width=0.125)
        assert net.features(torch.zeros(2, 1, size, size)).shape == (2, 64, 1, 1)


def test_vgg16_is_torchvisions_features_plus_one_linear():
    # The CIFAR head: Linear(512, 10) = 512*10 + 10 = 5130 parameters after the conv stack.
    tv_features = sum(p.numel() for p in make_layers(cfgs["D"]).parameters())
    assert sum(p.numel() for p in cifar_vgg("vgg16", 3, 10, 32).parameters()) == tv_features + 5130


def test_batch_norm_variants_have_batch_norm():
    assert any(isinstance(m, nn.BatchNorm2d) for m in cifar_vgg("vgg13_bn", 3, 10, 32, 0.125).modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in cifar_vgg("vgg13", 3, 10, 32, 0.125).modules())


def test_large_images_are_pooled_globally():
    # 64 -> 2x2 after five pools; global average pooling feeds the 512*width classifier.
    net = cifar_vgg("vgg11", 3, 7, 64, width=0.125)
    assert net(torch.zeros(2, 3, 64, 64)).shape == (2, 7)
