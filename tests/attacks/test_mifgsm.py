"""MI-FGSM with DI and TI (attacks/mifgsm.py): kernel and transform by hand, parity with torchattacks."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from trendcli.attacks.mifgsm import MIFGSM, diverse_input, gaussian_kernel
from trendcli.attacks.pgd import PGD
from trendcli.errors import UsageError


class NoGrad(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        with torch.no_grad():
            return self.model(x)


def test_gaussian_kernel_by_hand():
    # size 3 over [-3, 3]: g = (e^-4.5, 1, e^-4.5); centre = 1 / (1 + 2 e^-4.5)^2
    k = gaussian_kernel(3)
    assert k.shape == (3, 3) and k.sum().item() == pytest.approx(1.0)
    assert k[1, 1].item() == pytest.approx(1 / (1 + 2 * math.exp(-4.5)) ** 2, rel=1e-6)
    assert torch.equal(k, k.T) and torch.equal(k, k.flip(0))
    assert gaussian_kernel(15).argmax().item() == 7 * 15 + 7


def test_diverse_input_shrinks_and_pads():
    x = torch.ones(2, 1, 28, 28)
    out = diverse_input(x, 0.9, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    # the resized image (side in [25, 28)) sits in a zero border
    inside = (out[0, 0] > 0).sum().item()
    assert 25 * 25 <= inside < 28 * 28 and out.min() >= 0 and out.max() <= 1 + 1e-6  # bilinear rounding
    assert torch.equal(out, diverse_input(x, 0.9, torch.Generator().manual_seed(0)))
    assert torch.equal(diverse_input(x, 1.0, torch.Generator()), x)  # resize_rate 1: nothing to draw


def test_mifgsm_matches_torchattacks(tiny_model, batch, success_rate):
    torchattacks = pytest.importorskip("torchattacks")
    x, y = batch
    ours = MIFGSM(eps=0.1, alpha=0.02, steps=10, decay=1.0)(tiny_model, x, y)
    theirs = torchattacks.MIFGSM(tiny_model, eps=0.1, alpha=0.02, steps=10, decay=1.0)(x, y)
    assert abs(success_rate(tiny_model, ours, y) - success_rate(tiny_model, theirs, y)) <= 0.01
    assert (ours - theirs).abs().max() <= 1e-6  # the same arithmetic: CE sum vs mean only rescales G


def test_mifgsm_without_momentum_is_i_fgsm(tiny_model, batch):
    # decay 0: sign(G / mean|G|) = sign(G), PGD's step without random start
    x, y = batch[0][:16], batch[1][:16]
    ours = MIFGSM(eps=0.05, steps=10, decay=0.0)(tiny_model, x, y)
    pgd = PGD(eps=0.05, alpha=0.005, steps=10, random_start=False)(tiny_model, x, y)
    assert (ours - pgd).abs().max() <= 1e-6


@pytest.mark.parametrize("options", [{}, {"diversity_prob": 0.5}, {"ti_kernel": 7}, {"diversity_prob": 0.5, "ti_kernel": 15}])
def test_mifgsm_variants_within_eps_and_bounds(options, tiny_model, batch, success_rate):
    x, y = batch[0][:32], batch[1][:32]
    adv = MIFGSM(eps=0.1, **options)(tiny_model, x, y)
    assert adv.dtype == torch.float32 and adv.min() >= 0 and adv.max() <= 1
    assert (adv - x).abs().max() <= 0.1 + 1e-6
    assert success_rate(tiny_model, adv, y) > 0.2


def test_mifgsm_di_is_seeded(tiny_model, batch):
    x, y = batch[0][:16], batch[1][:16]
    a = MIFGSM(eps=0.1, diversity_prob=0.5, seed=1)(tiny_model, x, y)
    assert torch.equal(a, MIFGSM(eps=0.1, diversity_prob=0.5, seed=1)(tiny_model, x, y))
    assert not torch.equal(a, MIFGSM(eps=0.1, diversity_prob=0.5, seed=2)(tiny_model, x, y))
    # an image's result does not depend on its batch-mates (one DI draw per step for the batch)
    assert torch.equal(a[:4], MIFGSM(eps=0.1, diversity_prob=0.5, seed=1)(tiny_model, x[:4], y[:4]))


def test_mifgsm_targeted(tiny_model, batch):
    x, y = batch[0][:32], batch[1][:32]
    target = (y + 1) % 10
    adv = MIFGSM(eps=1.0, alpha=0.05, steps=20)(tiny_model, x, y, target=target)
    with torch.no_grad():
        assert (tiny_model(adv).argmax(1) == target).float().mean() >= 0.95


def test_mifgsm_rejects_bad_input(tiny_model, batch):
    for bad in ({"ti_kernel": 4}, {"ti_kernel": 1}, {"diversity_prob": 1.5}, {"resize_rate": 0.0}, {"steps": 0}, {"alpha": 0.0}):
        with pytest.raises(UsageError, match=next(iter(bad))):
            MIFGSM(**bad)
    with pytest.raises(UsageError, match="unknown parameter 'kernel' for attack 'mifgsm'; allowed: eps, steps, alpha, decay"):
        MIFGSM(kernel=7)
    with pytest.raises(UsageError, match="'mifgsm' needs gradients"):
        MIFGSM(steps=1)(NoGrad(tiny_model), batch[0][:4], batch[1][:4])


def test_mifgsm_params_round_trip():
    attack = MIFGSM(eps=0.03, diversity_prob=0.5, ti_kernel=7, seed=3)
    assert json.loads(json.dumps(attack.params)) == attack.params
    assert MIFGSM(**attack.params) == attack and attack.step_size == pytest.approx(0.003)
