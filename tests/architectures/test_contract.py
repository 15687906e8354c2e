"""Architecture-specific argument rules over every built-in architecture.

The generic contract (forward/backward, nn.ReLU modules, classifier last, UsageError for
impossible arguments) is trendcli.testing.check_architecture, run over every registered
architecture in tests/test_testing.py.
"""

from __future__ import annotations

import pytest

from trendcli.builtins.architectures import architectures
from trendcli.errors import UsageError
from trendcli.registry import get_registry

NAMES = sorted(architectures())
WIDTH_NAMES = [n for n in NAMES if not n.startswith("tv_")]

#: tv_ models whose torchvision definition cannot take 28x28 (torchvision's meta min_size).
TOO_SMALL_AT_28 = {"tv_vgg11", "tv_vgg19", "tv_densenet121"}


def factory(name: str):
    return get_registry().factory("architecture", name)


@pytest.mark.parametrize("name", sorted(TOO_SMALL_AT_28))
def test_tv_models_that_cannot_take_28x28_say_so(name):
    with pytest.raises(UsageError, match=r"at least (32x32|29x29)"):
        factory(name)(in_channels=1, num_classes=10, image_size=28)


@pytest.mark.parametrize("name", WIDTH_NAMES)
def test_width_scales_the_parameter_count(name):
    def count(width: float) -> int:
        model = factory(name)(in_channels=3, num_classes=10, image_size=32, width=width)
        return sum(p.numel() for p in model.parameters())

    assert count(0.125) < count(0.25) < count(0.5)


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith("tv_")])
def test_tv_models_have_fixed_width(name):
    with pytest.raises(UsageError, match="width=1"):
        factory(name)(in_channels=3, num_classes=10, image_size=32, width=0.5)


@pytest.mark.parametrize("name", WIDTH_NAMES)
def test_pretrained_is_refused_outside_tv(name):
    with pytest.raises(UsageError, match="only the tv_"):
        factory(name)(in_channels=3, num_classes=10, image_size=32, pretrained=True)


@pytest.mark.parametrize("bad", [dict(in_channels=0), dict(num_classes=0), dict(width=0.0)])
def test_invalid_arguments_are_usage_errors(bad):
    args = dict(in_channels=3, num_classes=10, image_size=32, width=1.0) | bad
    with pytest.raises(UsageError):
        factory("smallcnn")(**args)
