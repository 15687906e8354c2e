"""Attacks through quantized inputs (Q1, HT) use their BPDA backward (attacks + quantizers)."""

from __future__ import annotations

import pytest
import torch

from trendcli.attacks.base import ce_sum
from trendcli.attacks.pgd import PGD


@pytest.mark.parametrize("quantizer", ["q1", "ht"])
def test_input_gradient_is_nonzero(quantizer, quantized_model):
    model, x, y = quantized_model(quantizer)
    xa = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(ce_sum(model(xa), y), xa)
    # the quantizers' forward is piecewise constant: without BPDA this would be all zeros
    assert (grad.flatten(1).abs().sum(1) > 0).all()


@pytest.mark.parametrize("quantizer", ["q1", "ht"])
def test_pgd_beats_random_noise(quantizer, quantized_model, success_rate):
    model, x, y = quantized_model(quantizer)
    assert len(x) >= 32  # the quantized model is trained: enough correct images to compare
    eps = 0.2  # Q1 flips a pixel only within eps of its mid-range threshold: eps 0.1 is too small
    noise = torch.empty_like(x).uniform_(-eps, eps, generator=torch.Generator().manual_seed(0))
    noisy = (x + noise).clamp(0, 1)
    adv = PGD(eps=eps, alpha=0.01, steps=20)(model, x, y)
    assert success_rate(model, adv, y) > success_rate(model, noisy, y) + 0.15
