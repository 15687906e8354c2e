"""Contract tests over every built-in architecture: shapes, gradients, ReLU modules, classifier last."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trendcli.builtins.architectures import architectures
from trendcli.errors import UsageError

FACTORIES = architectures()
NAMES = sorted(FACTORIES)
WIDTH_NAMES = [n for n in NAMES if not n.startswith("tv_")]

#: (in_channels, image_size, num_classes): Fashion-MNIST, CIFAR-10, CIFAR-100 shapes.
CONFIGS = [(1, 28, 10), (3, 32, 10), (3, 32, 100)]

#: tv_ models whose torchvision definition cannot take 28x28 (torchvision's meta min_size).
TOO_SMALL_AT_28 = {"tv_vgg11", "tv_vgg19", "tv_densenet121"}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Batches of two gain nothing from a second thread, and on a shared machine the threads'
    # spin-waiting made this module several times slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def build(name: str, in_channels: int, image_size: int, num_classes: int) -> nn.Module:
    """The contract tests' model: width 0.25 where the family has a width multiplier."""
    torch.manual_seed(0)
    width = 1.0 if name.startswith("tv_") else 0.25
    return FACTORIES[name](
        in_channels=in_channels, num_classes=num_classes, image_size=image_size, width=width, pretrained=False
    )


CASES = [
    (name, cfg) for name in NAMES for cfg in CONFIGS if not (cfg[1] == 28 and name in TOO_SMALL_AT_28)
]


@pytest.fixture(scope="module", params=CASES, ids=[f"{n}-{c}x{s}-{k}" for n, (c, s, k) in CASES])
def case(request):
    """One model per (name, config), built once and shared by the tests below (pytest groups them)."""
    name, (in_channels, image_size, num_classes) = request.param
    return name, request.param[1], build(name, in_channels, image_size, num_classes)


def test_forward_backward_gives_finite_logits_and_input_gradient(case):
    name, (in_channels, image_size, num_classes), model = case
    model.train()
    x = torch.randn(2, in_channels, image_size, image_size, requires_grad=True)
    logits = model(x)
    assert logits.shape == (2, num_classes)
    assert torch.isfinite(logits).all()
    nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0


def test_every_relu_is_an_nn_relu_module(case, monkeypatch):
    # Activation quantization replaces nn.ReLU modules; a functional relu would escape it.
    # nn.ReLU.forward calls F.relu too, so a call counts as functional only outside a ReLU module.
    name, (in_channels, image_size, _), model = case
    inside = [0]
    functional_calls = []
    real_relu = nn.functional.relu

    def relu(x, inplace=False):
        if not inside[0]:
            functional_calls.append(x.shape)
        return real_relu(x, inplace=inplace)

    monkeypatch.setattr(nn.functional, "relu", relu)
    handles = []
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            handles.append(m.register_forward_pre_hook(lambda *_: inside.__setitem__(0, inside[0] + 1)))
            handles.append(m.register_forward_hook(lambda *_: inside.__setitem__(0, inside[0] - 1)))
    model.eval()
    with torch.no_grad():
        model(torch.randn(2, in_channels, image_size, image_size))
    for h in handles:
        h.remove()
    assert len(handles) > 0
    assert functional_calls == []


def test_classifier_is_the_last_conv_or_linear_and_gives_the_logits(case):
    # Weight quantization keeps the last nn.Linear/nn.Conv2d (registration order) full precision.
    name, (in_channels, image_size, num_classes), model = case
    last = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))][-1]
    seen = {}
    handle = last.register_forward_hook(lambda m, i, out: seen.setdefault("out", out))
    model.eval()
    with torch.no_grad():
        logits = model(torch.randn(2, in_channels, image_size, image_size))
    handle.remove()
    assert isinstance(last, nn.Linear) and last.out_features == num_classes
    assert torch.equal(seen["out"], logits)


@pytest.mark.parametrize("name", sorted(TOO_SMALL_AT_28))
def test_tv_models_that_cannot_take_28x28_say_so(name):
    with pytest.raises(UsageError, match=r"at least (32x32|29x29)"):
        FACTORIES[name](in_channels=1, num_classes=10, image_size=28)


@pytest.mark.parametrize("name", WIDTH_NAMES)
def test_width_scales_the_parameter_count(name):
    def count(width: float) -> int:
        model = FACTORIES[name](in_channels=3, num_classes=10, image_size=32, width=width)
        return sum(p.numel() for p in model.parameters())

    assert count(0.125) < count(0.25) < count(0.5)


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith("tv_")])
def test_tv_models_have_fixed_width(name):
    with pytest.raises(UsageError, match="--width 1"):
        FACTORIES[name](in_channels=3, num_classes=10, image_size=32, width=0.5)


@pytest.mark.parametrize("name", WIDTH_NAMES)
def test_pretrained_is_refused_outside_tv(name):
    with pytest.raises(UsageError, match="only the tv_"):
        FACTORIES[name](in_channels=3, num_classes=10, image_size=32, pretrained=True)


@pytest.mark.parametrize("bad", [dict(in_channels=0), dict(num_classes=0), dict(width=0.0)])
def test_invalid_arguments_are_usage_errors(bad):
    args = dict(in_channels=3, num_classes=10, image_size=32, width=1.0) | bad
    with pytest.raises(UsageError):
        FACTORIES["smallcnn"](**args)
