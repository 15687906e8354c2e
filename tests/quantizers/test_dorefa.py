"""DoReFa Wb / Ab (docs/method.md, "Weight and activation quantization"): quantizers/dorefa.py."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trendcli.errors import UsageError
from trendcli.quantizers.dorefa import (
    DoReFaActivation,
    DoReFaWeight,
    dorefa_activation,
    dorefa_weight,
    quantize_unit,
)


def test_quantize_unit_rounds_to_k_bit_levels():
    # k = 2: n = 3; u*3 = 0.3, 0.6, 1.5, 1.8, 2.7 -> round 0, 1, 2 (half to even), 2, 3
    u = torch.tensor([0.1, 0.2, 0.5, 0.6, 0.9], dtype=torch.float64)
    assert torch.allclose(quantize_unit(u, 2), torch.tensor([0, 1, 2, 2, 3], dtype=torch.float64) / 3)


def test_weight_2_bits_by_hand():
    # tanh(W) = t = [-0.8, -0.5, -0.1, 0.1, 0.3, 0.8], m = 0.8, u = t/1.6 + 1/2
    #   = [0, 0.1875, 0.4375, 0.5625, 0.6875, 1]; 3u = [0, 0.5625, 1.3125, 1.6875, 2.0625, 3]
    #   -> round [0, 1, 1, 2, 2, 3] -> W_q = 0.8 * (2l/3 - 1) = 0.8 * [-1, -1/3, -1/3, 1/3, 1/3, 1]
    t = torch.tensor([-0.8, -0.5, -0.1, 0.1, 0.3, 0.8], dtype=torch.float64)
    out = DoReFaWeight(2)(torch.atanh(t))
    expected = 0.8 * torch.tensor([-1, -1 / 3, -1 / 3, 1 / 3, 1 / 3, 1], dtype=torch.float64)
    assert torch.allclose(out, expected)


@pytest.mark.parametrize("bits", [1, 2, 3])
def test_weight_levels_are_2_to_the_k_symmetric_with_plus_minus_m_and_no_zero(bits):
    w = torch.linspace(-2.0, 2.0, 401, dtype=torch.float64).view(1, 401)
    m = torch.tanh(torch.tensor(2.0, dtype=torch.float64))
    levels = DoReFaWeight(bits)(w).unique()
    n = 2**bits - 1
    assert levels.numel() == 2**bits
    assert torch.allclose(levels, m * (2 * torch.arange(n + 1, dtype=torch.float64) / n - 1))
    assert torch.allclose(levels, -levels.flip(0))  # symmetric
    assert levels[0] == -m and levels[-1] == m  # +-m exactly
    assert levels.abs().min() > 0  # no zero


def test_weight_1_bit_is_m_sign_w_with_sign_0_positive():
    # m = tanh(1) (the largest |W| is 1); W = 0 is taken as positive (documented choice)
    w = torch.tensor([-1.0, -1e-3, 0.0, 2e-3, 0.5])
    m = torch.tanh(torch.tensor(1.0))
    assert torch.equal(DoReFaWeight(1)(w), m * torch.tensor([-1.0, -1.0, 1.0, 1.0, 1.0]))


def test_weight_1_bit_keeps_the_sign_of_tiny_weights():
    # m = tanh(0.7); tanh(+-1e-9)/(2m) + 1/2 rounds to 1/2 in float32, yet sign(W) decides
    w = torch.tensor([1e-9, -1e-9, 0.7])
    m = torch.tanh(torch.tensor(0.7))
    assert torch.equal(DoReFaWeight(1)(w), m * torch.tensor([1.0, -1.0, 1.0]))


@pytest.mark.parametrize("bits", [1, 2, 3])
def test_zero_weight_goes_to_the_smallest_positive_level_for_every_k(bits):
    # W = 0: u = 1/2, u*(2^k-1) = 2^(k-1) - 1/2 rounds (half to even) up for k >= 2, giving
    # m/(2^k-1) (k=2: m/3, k=3: m/7); for k = 1 sign(0) := +1 gives m = m/(2^1-1) as well
    m = torch.tanh(torch.tensor(1.0, dtype=torch.float64))
    out = DoReFaWeight(bits)(torch.tensor([0.0, 1.0, -1.0], dtype=torch.float64))
    assert out[0].item() == pytest.approx(m.item() / (2**bits - 1))


@pytest.mark.parametrize("bits", [1, 2, 3, 8])
def test_weight_ste_gradient_is_that_of_tanh_with_m_fixed(bits):
    # round -> identity, m a constant: d/dW m*(2*(tanh(W)/(2m) + 1/2) - 1) = 1 - tanh(W)^2
    g = torch.Generator().manual_seed(bits)
    w = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(4, 3, generator=g, dtype=torch.float64)
    (upstream * DoReFaWeight(bits)(w)).sum().backward()
    expected = upstream * (1 - torch.tanh(w.detach()) ** 2)
    assert torch.allclose(w.grad, expected)
    assert w.grad.abs().min() > 0


def test_all_zero_weights_stay_zero():
    # m = 0: no NaN; W_q = 0 * (...) = 0
    for bits in (1, 2, 4):
        assert torch.equal(DoReFaWeight(bits)(torch.zeros(3, 2)).abs(), torch.zeros(3, 2))


def test_full_precision_and_invalid_bits():
    assert isinstance(dorefa_weight(32), nn.Identity)
    assert isinstance(dorefa_weight(None), nn.Identity)
    assert type(dorefa_activation(32)) is nn.ReLU
    assert isinstance(dorefa_weight(4), DoReFaWeight) and dorefa_weight(4).bits == 4
    assert isinstance(dorefa_activation(2), DoReFaActivation)
    for bad in (0, 17, 31):
        with pytest.raises(UsageError, match="1..16 or 32"):
            dorefa_weight(bad)
        with pytest.raises(UsageError, match="1..16 or 32"):
            dorefa_activation(bad)


def test_a16_still_clips_at_1():
    # q_16(0.25) = round(0.25 * 65535) / 65535 = 16384/65535, within 1/65535 of 0.25
    x = torch.tensor([-1.0, 0.25, 1.5, 3.0], dtype=torch.float64)
    out = DoReFaActivation(16)(x)
    assert out[0] == 0 and out[2] == 1 and out[3] == 1
    assert out[1] == 16384 / 65535


def test_a1_is_the_indicator_of_x_above_one_half():
    # round(clip(x)) with round(1/2) = 0: exactly 1[x > 1/2]
    x = torch.tensor([-0.5, 0.2, 0.5, 0.51, 0.9, 2.0])
    assert DoReFaActivation(1)(x).tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]


def test_a2_levels():
    x = torch.linspace(-0.5, 1.5, 201, dtype=torch.float64)
    levels = DoReFaActivation(2)(x).unique()
    assert torch.allclose(levels, torch.tensor([0, 1 / 3, 2 / 3, 1], dtype=torch.float64))


@pytest.mark.parametrize("bits", [1, 2, 16])
def test_activation_gradient_one_inside_zero_outside(bits):
    x = torch.tensor([-0.5, -1e-3, 0.2, 0.7, 1.001, 1.5], requires_grad=True)
    DoReFaActivation(bits)(x).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 1.0, 1.0, 0.0, 0.0]
