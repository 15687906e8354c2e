"""The example plugin keeps trendcli's contracts (checked with trendcli's contract kit)."""

from __future__ import annotations

import pytest
import torch

import trend_example
from trend_example.models import example_mlp
from trend_example.quantizers import Binarize
from trendcli import get_registry
from trendcli.errors import UsageError
from trendcli.testing import check_architecture, check_input_quantizer


@pytest.mark.parametrize("in_channels,image_size,num_classes", [(1, 28, 10), (3, 32, 100)])
def test_example_mlp_keeps_the_architecture_contract(in_channels, image_size, num_classes):
    check_architecture(
        example_mlp, in_channels=in_channels, num_classes=num_classes, image_size=image_size
    )


def test_example_mlp_refuses_pretrained_with_a_usage_error():
    with pytest.raises(UsageError, match="no pretrained weights"):
        example_mlp(in_channels=1, num_classes=10, image_size=28, pretrained=True)


def test_example_mlp_width_sets_the_hidden_units():
    # 256 * 0.5 = 128 hidden units
    model = example_mlp(in_channels=1, num_classes=10, image_size=28, width=0.5)
    assert model[1].out_features == 128


def test_binarize_keeps_the_input_quantizer_contract():
    check_input_quantizer(Binarize, shape=(4, 1, 6, 6))


def test_binarize_thresholds_at_zero_with_an_identity_backward():
    x = torch.tensor([-1.0, 0.0, 0.5], requires_grad=True)
    out = Binarize()(x)
    assert out.tolist() == [0.0, 0.0, 1.0]  # 1[x > 0]
    out.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]


def test_the_registry_resolves_the_lazy_references():
    registry = get_registry()
    assert set(trend_example.trend_architectures()) == {"example_mlp"}
    assert set(trend_example.trend_input_quantizers()) == {"binarize"}
    assert registry.factory("architecture", "example_mlp") is example_mlp
    assert registry.factory("input quantizer", "binarize") is Binarize
    assert registry.get("input quantizer", "binarize").plugin == "trend-example"
