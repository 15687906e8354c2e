"""PGD (attacks/pgd.py): soundness on a trained tiny model and parity with torchattacks."""

from __future__ import annotations

import json

import pytest
import torch

from trendcli.attacks.pgd import PGD
from trendcli.errors import UsageError


def test_pgd_eps_one_fools_every_image(tiny_model, batch, success_rate):
    x, y = batch
    assert success_rate(tiny_model, PGD(eps=1.0)(tiny_model, x, y), y) == 1.0


def test_pgd_success_never_falls_as_eps_grows(tiny_model, batch, success_rate):
    x, y = batch
    rates = [success_rate(tiny_model, PGD(eps=eps, alpha=0.02, steps=20, seed=0)(tiny_model, x, y), y) for eps in (0.0, 0.05, 0.1, 0.2)]
    assert rates[0] == 0.0  # the batch is classified correctly and eps = 0 moves nothing
    assert rates == sorted(rates) and rates[-1] > rates[0]


def test_pgd_matches_torchattacks_without_random_start(tiny_model, batch):
    torchattacks = pytest.importorskip("torchattacks")
    x, y = batch  # 64 images: the mean CE is an exact power-of-two rescaling of the summed CE
    ours = PGD(eps=8 / 255, alpha=0.01, steps=40, random_start=False)(tiny_model, x, y)
    theirs = torchattacks.PGD(tiny_model, eps=8 / 255, alpha=0.01, steps=40, random_start=False)(x, y)
    assert (ours - theirs).abs().max() <= 1e-6


def test_pgd_seeded_and_layout_independent(tiny_model, batch):
    x, y = batch
    a = PGD(eps=0.05, steps=5, seed=1)(tiny_model, x, y)
    assert torch.equal(a, PGD(eps=0.05, steps=5, seed=1)(tiny_model, x, y))
    assert not torch.equal(a, PGD(eps=0.05, steps=5, seed=2)(tiny_model, x, y))
    # channels_last input: the result comes back in that layout with the same values
    b = PGD(eps=0.05, steps=5, seed=1)(tiny_model, x.contiguous(memory_format=torch.channels_last), y)
    assert b.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(a, b)


def test_pgd_restarts_keep_successes(tiny_model, batch, success_rate):
    x, y = batch
    one = success_rate(tiny_model, PGD(eps=0.05, steps=10, restarts=1)(tiny_model, x, y), y)
    three = success_rate(tiny_model, PGD(eps=0.05, steps=10, restarts=3)(tiny_model, x, y), y)
    assert three >= one  # restart 1 is the same run; later restarts only add successes


def test_pgd_targeted_reaches_target(tiny_model, batch):
    x, y = batch
    target = (y + 1) % 10
    adv = PGD(eps=1.0, alpha=0.05)(tiny_model, x, y, target=target)
    with torch.no_grad():
        assert (tiny_model(adv).argmax(1) == target).float().mean() >= 0.95


def test_pgd_params_round_trip_and_validation():
    attack = PGD(eps=0.03, steps=7, seed=5)
    assert json.loads(json.dumps(attack.params)) == attack.params
    assert PGD(**attack.params) == attack and attack.norm == "linf"
    with pytest.raises(UsageError, match="eps"):
        PGD(eps=-0.1)
    with pytest.raises(UsageError, match="steps"):
        PGD(steps=0)
    with pytest.raises(UsageError, match="random_start"):
        PGD(restarts=2, random_start=False)


def test_pgd_leaves_model_state_alone(tiny_model, batch):
    x, y = batch
    tiny_model.train()
    for p in tiny_model.parameters():
        p.grad = None  # torchattacks' CW and DeepFool (other tests) leave weight gradients
    try:
        PGD(eps=0.05, steps=2)(tiny_model, x, y)
        assert tiny_model.training and all(p.requires_grad for p in tiny_model.parameters())
        assert all(p.grad is None for p in tiny_model.parameters())
    finally:
        tiny_model.eval()


def test_pgd_works_under_no_grad_and_inference_mode(tiny_model, batch):
    x, y = batch[0][:8], batch[1][:8]
    expected = PGD(eps=0.05, steps=3)(tiny_model, x, y)
    with torch.no_grad():
        assert torch.equal(PGD(eps=0.05, steps=3)(tiny_model, x, y), expected)
    with torch.inference_mode():
        assert torch.equal(PGD(eps=0.05, steps=3)(tiny_model, x.clone(), y.clone()), expected)
