"""Input checks, attack mode, margins, random starts and the layout rule (attacks/base.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trendcli.attacks.base import (
    LAYOUTS,
    attack_mode,
    auto_layout,
    check_batch,
    make_generator,
    margin,
    model_memory_format,
    random_start,
    resolve_layout,
)
from trendcli.errors import UsageError


def _conv_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))


def test_check_batch_rejects_bad_inputs():
    x, y = torch.rand(2, 1, 4, 4), torch.tensor([0, 1])
    check_batch(x, y)
    with pytest.raises(UsageError, match=r"\[N, C, H, W\]"):
        check_batch(torch.rand(2, 16), y)
    with pytest.raises(UsageError, match="int64"):
        check_batch(x, y.int())
    with pytest.raises(UsageError, match="2 images but 3 labels"):
        check_batch(x, torch.tensor([0, 1, 2]))
    with pytest.raises(UsageError, match=r"\[0, 1\]"):
        check_batch(x * 2 + 1, y)
    with pytest.raises(UsageError, match="target labels"):
        check_batch(x, y, target=torch.tensor([1]))


def test_attack_mode_freezes_and_restores():
    model = _conv_model().train()
    model[3].weight.requires_grad_(False)  # a mixed state must come back as it was
    model[1].eval()
    with attack_mode(model):
        assert not any(m.training for m in model.modules())
        assert not any(p.requires_grad for p in model.parameters())
    assert model.training and model[0].training and not model[1].training
    assert model[0].weight.requires_grad and not model[3].weight.requires_grad


def test_margin_by_hand():
    # logits [1, 3, 2]: label 1 -> 3 - max(1, 2) = 1; label 0 -> 1 - 3 = -2
    logits = torch.tensor([[1.0, 3.0, 2.0], [1.0, 3.0, 2.0]])
    assert margin(logits, torch.tensor([1, 0])).tolist() == [1.0, -2.0]


def test_random_start_bounds_seed_and_layout():
    x = torch.rand(4, 3, 5, 5)
    a = random_start(x, 0.1, make_generator(x.device, 3))
    b = random_start(x.contiguous(memory_format=torch.channels_last), 0.1, make_generator(x.device, 3))
    c = random_start(x, 0.1, make_generator(x.device, 4))
    assert (a - x).abs().max() <= 0.1 + 1e-6 and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b)  # same seed, same start in either layout
    assert not torch.equal(a, c)


def test_model_memory_format():
    model = _conv_model()
    assert model_memory_format(model) == torch.contiguous_format
    model.to(memory_format=torch.channels_last)
    assert model_memory_format(model) == torch.channels_last


def test_auto_layout_is_a_rule_on_the_models_not_a_timing():
    conv, mlp = _conv_model(), nn.Sequential(nn.Flatten(), nn.Linear(48, 3))
    assert auto_layout(conv) == "channels_last"
    assert auto_layout([conv, _conv_model()]) == "channels_last"
    assert auto_layout(mlp) == "contiguous"  # no convolution: nothing to gain
    assert auto_layout([conv, mlp]) == "contiguous"  # one layout for every member
    assert auto_layout(conv.to(memory_format=torch.channels_last)) == "channels_last"  # not the current layout
    before = model_memory_format(conv)
    assert [auto_layout(conv) for _ in range(3)] == ["channels_last"] * 3
    assert model_memory_format(conv) == before  # nothing measured, nothing moved


def test_resolve_layout():
    conv = _conv_model()
    assert LAYOUTS == ("auto", "contiguous", "channels_last")
    assert resolve_layout("auto", conv) == "channels_last"
    assert resolve_layout("contiguous", conv) == "contiguous"
    assert resolve_layout("channels_last", [conv]) == "channels_last"
    with pytest.raises(UsageError, match="unknown layout 'nhwc'; use one of auto, contiguous, channels_last"):
        resolve_layout("nhwc", conv)
