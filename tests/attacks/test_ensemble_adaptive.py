"""APGD, APGD-T, Square and MI-FGSM on an ensemble (attacks/ensemble_adaptive.py)."""

from __future__ import annotations

import json

import pytest
import torch

from trendcli.attacks.apgd import APGD
from trendcli.attacks.ensemble_adaptive import (
    ENSEMBLE_VARIANTS,
    EnsembleAPGD,
    EnsembleAPGDT,
    EnsembleMIFGSM,
    EnsembleSquare,
)
from trendcli.attacks.mifgsm import MIFGSM
from trendcli.attacks.square import Square
from trendcli.ensemble.vote import predict
from trendcli.errors import UsageError
from trendcli.registry import get_registry

FAST = [
    EnsembleAPGD(eps=0.1, n_iter=10),
    EnsembleAPGDT(eps=0.1, n_iter=5, n_target_classes=2),
    EnsembleSquare(eps=0.1, n_queries=100),
    EnsembleMIFGSM(eps=0.1, diversity_prob=0.5, ti_kernel=7),
]


@pytest.fixture(scope="module")
def vote_batch(three_models, fmnist_test):
    """32 test images the three members' vote classifies correctly."""
    x, y = fmnist_test
    with torch.no_grad():
        ok = predict([m(x) for m in three_models], "paper") == y
    return x[ok][:32], y[ok][:32]


def _vote_success(models, adv, y) -> float:
    with torch.no_grad():
        return float((predict([m(adv) for m in models], "paper") != y).float().mean())


@pytest.mark.parametrize("attack", FAST, ids=lambda a: a.name)
def test_ensemble_attacks_within_eps_bounds_and_fool_the_vote(attack, three_models, vote_batch):
    x, y = vote_batch
    adv = attack(three_models, x, y)
    assert adv.shape == x.shape and adv.dtype == torch.float32
    assert adv.min() >= 0 and adv.max() <= 1 and (adv - x).abs().max() <= 0.1 + 1e-6
    assert _vote_success(three_models, adv, y) > 0.1
    assert json.loads(json.dumps(attack.params)) == attack.params and type(attack)(**attack.params) == attack


@pytest.mark.parametrize(
    "single,ensemble",
    [
        (APGD(eps=0.05, n_iter=10), EnsembleAPGD(eps=0.05, n_iter=10)),
        (Square(eps=0.05, n_queries=50), EnsembleSquare(eps=0.05, n_queries=50)),
        (MIFGSM(eps=0.05, diversity_prob=0.5), EnsembleMIFGSM(eps=0.05, diversity_prob=0.5)),
    ],
    ids=lambda a: a.name,
)
def test_one_member_ensemble_is_the_single_model_attack(single, ensemble, tiny_model, batch):
    x, y = batch[0][:16], batch[1][:16]
    assert torch.equal(single(tiny_model, x, y), ensemble([tiny_model], x, y))


def test_ensemble_square_counts_ensemble_queries(three_models, vote_batch):
    x, y = vote_batch
    attack = EnsembleSquare(eps=0.1, n_queries=40)
    attack(three_models, x, y)
    assert attack.last_queries.shape == (len(x),) and 1 <= int(attack.last_queries.min()) <= int(attack.last_queries.max()) <= 40


@pytest.mark.parametrize("quantizer", ["q1", "ht"])
def test_ensemble_apgd_runs_through_bpda(quantizer, quantized_model, tiny_model, success_rate):
    model, x, y = quantized_model(quantizer)
    eps = 0.2  # as in test_bpda: Q1 flips a pixel only within eps of its threshold
    noise = torch.empty_like(x).uniform_(-eps, eps, generator=torch.Generator().manual_seed(0))
    adv = EnsembleAPGD(eps=eps, n_iter=20)([model, model], x, y)
    assert success_rate(model, adv, y) > success_rate(model, (x + noise).clamp(0, 1), y) + 0.15


def test_ensemble_attacks_reject_bad_input(three_models, vote_batch):
    x, y = vote_batch
    with pytest.raises(UsageError, match="unknown tie_break 'coin'"):
        EnsembleAPGD(tie_break="coin")
    with pytest.raises(UsageError, match="unknown parameter 'rule' for attack 'ensemble_square'; allowed: eps, n_queries"):
        EnsembleSquare(rule="agd")
    with pytest.raises(UsageError, match="at least one model"):
        EnsembleMIFGSM()([], x, y)
    with pytest.raises(UsageError, match="n_queries"):
        EnsembleSquare(n_queries=0)


def test_every_variant_belongs_to_a_registered_attack():
    names = set(get_registry().names("attack"))
    assert set(ENSEMBLE_VARIANTS) <= names
    for name, cls in ENSEMBLE_VARIANTS.items():
        single = get_registry().factory("attack", name)
        assert issubclass(cls, single) and set(cls().params) == set(single().params) | {"tie_break"}
