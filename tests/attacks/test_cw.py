"""Carlini–Wagner L2 and L-inf (attacks/cw.py)."""

from __future__ import annotations

import pytest
import torch

from trendcli.attacks.cw import CWL2, CWLinf, cw_objective, kappa_success


def _l2(adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return (adv - x).flatten(1).norm(dim=1)


def _fooled(model, adv, y) -> torch.Tensor:
    with torch.no_grad():
        return model(adv).argmax(1) != y


def test_cw_objective_by_hand():
    logits = torch.tensor([[4.0, 1.0, 2.0], [0.0, 5.0, 1.0]])
    y = torch.tensor([0, 0])
    # image 0: Z_y - max other = 4 - 2 = 2; image 1: 0 - 5 = -5, floored at -kappa = -3
    assert cw_objective(logits, y, None, kappa=3.0).tolist() == [2.0, -3.0]
    # targeted at class 2: max other - Z_t = 4 - 2 = 2; 5 - 1 = 4
    assert cw_objective(logits, y, torch.tensor([2, 2]), kappa=3.0).tolist() == [2.0, 4.0]
    # success needs the wrong class ahead by more than kappa: image 1 leads by 5
    assert kappa_success(logits, y, None, kappa=3.0).tolist() == [False, True]
    assert kappa_success(logits, y, None, kappa=6.0).tolist() == [False, False]


def test_cw_l2_larger_kappa_larger_perturbation(tiny_model, batch):
    x, y = batch[0][:32], batch[1][:32]
    low = CWL2(kappa=0.0, steps=50, binary_steps=4, c=1.0, lr=0.05)(tiny_model, x, y)
    high = CWL2(kappa=3.0, steps=50, binary_steps=4, c=1.0, lr=0.05)(tiny_model, x, y)
    both = _fooled(tiny_model, low, y) & _fooled(tiny_model, high, y)
    assert both.sum() >= 8
    assert _l2(high, x)[both].mean() > _l2(low, x)[both].mean()


def test_cw_l2_unsuccessful_images_come_back_unchanged(tiny_model, batch):
    x, y = batch[0][:8], batch[1][:8]
    # kappa 1000 is out of reach for this model's logits: no image succeeds
    adv = CWL2(kappa=1000.0, steps=5, binary_steps=2)(tiny_model, x, y)
    assert torch.equal(adv, x)


def test_cw_l2_matches_torchattacks(tiny_model, batch):
    """Settings where both succeed on most images: one c = 30 (no binary search, as
    torchattacks.CW has none), kappa 0, 100 Adam steps, lr 0.05, 64 images. (At c = 10
    torchattacks' early abort stops it on ~10% of the images that ours, without it, fools.)"""
    torchattacks = pytest.importorskip("torchattacks")
    x, y = batch
    ours = CWL2(kappa=0.0, steps=100, binary_steps=1, c=30.0, lr=0.05)(tiny_model, x, y)
    theirs = torchattacks.CW(tiny_model, c=30.0, kappa=0.0, steps=100, lr=0.05)(x, y)
    ok_ours, ok_theirs = _fooled(tiny_model, ours, y), _fooled(tiny_model, theirs, y)
    rate_ours, rate_theirs = ok_ours.float().mean(), ok_theirs.float().mean()
    assert rate_theirs >= 0.8
    assert abs(rate_ours - rate_theirs) <= 0.1 * rate_theirs
    l2_ours, l2_theirs = _l2(ours, x)[ok_ours].mean(), _l2(theirs, x)[ok_theirs].mean()
    assert abs(l2_ours - l2_theirs) <= 0.1 * l2_theirs


def test_cw_l2_targeted(tiny_model, batch):
    x, y = batch[0][:16], batch[1][:16]
    target = (y + 1) % 10
    adv = CWL2(kappa=0.0, steps=100, binary_steps=2, c=10.0, lr=0.05)(tiny_model, x, y, target=target)
    with torch.no_grad():
        hit = tiny_model(adv).argmax(1) == target
    changed = (adv != x).flatten(1).any(1)
    assert hit.float().mean() >= 0.75 and torch.equal(hit, changed)  # success or unchanged


def test_cw_linf_stays_in_bound_and_kappa_pushes_further(tiny_model, batch):
    x, y = batch
    low = CWLinf(eps=0.1, steps=30, kappa=0.0)(tiny_model, x, y)
    high = CWLinf(eps=0.1, steps=30, kappa=5.0)(tiny_model, x, y)
    for adv in (low, high):
        assert (adv - x).abs().max() <= 0.1 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    assert _fooled(tiny_model, low, y).float().mean() >= 0.5
    # kappa 0 stops each image once it is misclassified; kappa 5 keeps pushing
    assert (high - x).abs().mean() > (low - x).abs().mean()
