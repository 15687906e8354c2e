"""APGD and APGD-T (attacks/apgd.py): schedule, soundness, parity with torchattacks."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from trendcli.attacks.apgd import APGD, APGDT, checkpoints
from trendcli.attacks.pgd import PGD
from trendcli.errors import UsageError

from .conftest import FMNIST_MEAN, FMNIST_STD, correct_subset, fit, one_thread


class NoGrad(nn.Module):
    """The wrapped model's logits, computed without autograd (like an exported runtime)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        with torch.no_grad():
            return self.model(x)


class Constant(nn.Module):
    """Logits that ignore the input except through a zero-weight term: a flat loss."""

    def forward(self, x):
        return torch.tensor([[1.0, 0.0, 0.0]]).expand(len(x), 3) + 0.0 * x.flatten(1)[:, :1]


def test_checkpoints_follow_the_paper():
    # p: 0.22, 0.41 (+0.19), 0.57 (+0.16), 0.70, 0.80, 0.87, 0.93, 0.99 (steps shrink by 0.03, floor 0.06)
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    # n_iter 10: ceil(2.2, 4.1, 5.7, 7.0, 8.0, 8.7) = 3, 5, 6, 7, 8, 9 (9.3 and 9.9 round up to 10: the end)
    assert checkpoints(10) == [3, 5, 6, 7, 8, 9]


def test_apgd_ce_matches_torchattacks(tiny_model, batch, success_rate):
    torchattacks = pytest.importorskip("torchattacks")
    x, y = batch
    eps = 0.1  # about 60% success on the tiny model: a rate far from 0 and 1
    ours = success_rate(tiny_model, APGD(eps=eps, n_iter=100)(tiny_model, x, y), y)
    theirs = success_rate(tiny_model, torchattacks.APGD(tiny_model, eps=eps, steps=100, seed=0)(x, y), y)
    assert abs(ours - theirs) <= 0.03


@pytest.fixture(scope="module")
def smallcnn(fmnist_train, fmnist_test):
    """The zoo's smallcnn FP member trained for one epoch on 5k images; 64 test images it gets right."""
    from trendcli.zoo.files import build_model
    from trendcli.zoo.spec import ModelSpec

    spec = ModelSpec(
        arch="smallcnn", dataset="fashion_mnist", in_channels=1, image_size=28, num_classes=10,
        mean=FMNIST_MEAN, std=FMNIST_STD,
    )
    torch.manual_seed(0)
    with one_thread():
        model = fit(build_model(spec), *fmnist_train, seed=0)
    return (model, *correct_subset(model, *fmnist_test, 64))


@pytest.mark.slow
def test_apgd_ce_at_least_pgd40_on_smallcnn(smallcnn, success_rate):
    model, x, y = smallcnn
    eps = 8 / 255
    apgd = success_rate(model, APGD(eps=eps)(model, x, y), y)
    pgd = success_rate(model, PGD(eps=eps, alpha=eps / 4, steps=40)(model, x, y), y)
    assert 0 < pgd <= apgd


def test_apgd_within_eps_and_bounds(tiny_model, batch):
    x, y = batch[0][:16], batch[1][:16]
    for attack in (APGD(eps=0.05, n_iter=10), APGD(eps=0.05, n_iter=10, loss="dlr"), APGDT(eps=0.05, n_iter=5, n_target_classes=3)):
        adv = attack(tiny_model, x, y)
        assert adv.dtype == torch.float32 and adv.min() >= 0 and adv.max() <= 1
        assert (adv - x).abs().max() <= 0.05 + 1e-6


def test_apgd_records_its_loss_curve(tiny_model, batch):
    x, y = batch[0][:16], batch[1][:16]
    attack = APGD(eps=0.1, n_iter=20)
    attack(tiny_model, x, y)
    curve = attack.last_loss_curve
    assert len(curve) == 21 and all(math.isfinite(v) for v in curve)
    assert max(curve) > curve[0]  # the mean CE rises on a model with useful gradients
    flat = APGD(eps=0.1, n_iter=20)
    xs = torch.rand(4, 1, 4, 4)
    flat(Constant(), xs, torch.zeros(4, dtype=torch.int64))
    assert max(flat.last_loss_curve) == min(flat.last_loss_curve)  # the masking signature


def test_apgd_restarts_only_add_successes(tiny_model, batch, success_rate):
    x, y = batch
    one = success_rate(tiny_model, APGD(eps=0.05, n_iter=10)(tiny_model, x, y), y)
    two = success_rate(tiny_model, APGD(eps=0.05, n_iter=10, restarts=2)(tiny_model, x, y), y)
    assert two >= one


def test_apgd_seeded(tiny_model, batch):
    x, y = batch[0][:16], batch[1][:16]
    a = APGD(eps=0.05, n_iter=5, seed=1)(tiny_model, x, y)
    assert torch.equal(a, APGD(eps=0.05, n_iter=5, seed=1)(tiny_model, x, y))
    assert not torch.equal(a, APGD(eps=0.05, n_iter=5, seed=2)(tiny_model, x, y))


def test_apgd_targeted_reaches_target(tiny_model, batch):
    x, y = batch[0][:32], batch[1][:32]
    target = (y + 1) % 10
    adv = APGD(eps=1.0, n_iter=20, loss="ce")(tiny_model, x, y, target=target)
    with torch.no_grad():
        assert (tiny_model(adv).argmax(1) == target).float().mean() >= 0.95
    # the targeted DLR lifts z_t over z_y (its numerator), not necessarily over every class
    adv = APGD(eps=1.0, n_iter=20, loss="dlr")(tiny_model, x, y, target=target)
    with torch.no_grad():
        logits = tiny_model(adv)
    assert (logits.gather(1, target[:, None]) > logits.gather(1, y[:, None])).all()
    assert (logits.argmax(1) == target).float().mean() >= 0.75


def test_apgd_t_beats_nothing_and_checks_classes(tiny_model, batch, success_rate):
    x, y = batch[0][:32], batch[1][:32]
    assert success_rate(tiny_model, APGDT(eps=0.1, n_iter=20, n_target_classes=3)(tiny_model, x, y), y) > 0.3
    with pytest.raises(UsageError, match="n_target_classes must be below the number of classes"):
        APGDT(n_iter=2, n_target_classes=10)(tiny_model, x, y)
    with pytest.raises(UsageError, match="untargeted"):
        APGDT(n_iter=2)(tiny_model, x, y, target=y)


def test_apgd_rejects_bad_input(tiny_model, batch):
    x, y = batch[0][:4], batch[1][:4]
    with pytest.raises(UsageError, match="unknown loss 'hinge'; known: ce, dlr"):
        APGD(loss="hinge")
    with pytest.raises(UsageError, match="unknown parameter 'diversity_prob' for attack 'apgd'"):
        APGD(diversity_prob=0.5)
    with pytest.raises(UsageError, match="n_iter"):
        APGD(n_iter=0)
    with pytest.raises(UsageError, match="rho"):
        APGD(rho=1.5)
    with pytest.raises(UsageError, match="loss must be 'dlr'"):
        APGDT(loss="ce")
    with pytest.raises(UsageError, match="'apgd' needs gradients"):
        APGD(n_iter=2)(NoGrad(tiny_model), x, y)


def test_apgd_params_round_trip():
    for attack in (APGD(eps=0.03, n_iter=7, loss="dlr", seed=5), APGDT(n_target_classes=4)):
        assert json.loads(json.dumps(attack.params)) == attack.params
        assert type(attack)(**attack.params) == attack and attack.norm == "linf"
