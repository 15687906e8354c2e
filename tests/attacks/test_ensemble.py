"""Ensemble PGD with direction rules (attacks/ensemble.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trendcli.attacks.ensemble import EnsemblePGD
from trendcli.attacks.pgd import PGD
from trendcli.errors import UnknownNameError, UsageError
from trendcli.hookspecs import hookimpl
from trendcli.registry import Registry, get_registry, set_registry
from trendcli.rules.directions import agd
from trendcli.ensemble.vote import predict


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by ``scale``."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


class GradScaled(nn.Module):
    """Same predictions, input gradient x scale: the member's G_k dominates sum_k G_k."""

    def __init__(self, model: nn.Module, scale: float):
        super().__init__()
        self.model, self.scale = model, scale

    def forward(self, x):
        return self.model(_ScaleGrad.apply(x, self.scale))


class LogitScaled(nn.Module):
    """Logits x scale. (Where the softmax saturates the CE gradient underflows to 0 instead
    of growing, so this dominates only near the decision boundary; GradScaled everywhere.)"""

    def __init__(self, model: nn.Module, scale: float):
        super().__init__()
        self.model, self.scale = model, scale

    def forward(self, x):
        return self.model(x) * self.scale


@pytest.fixture(scope="module")
def vote_batch(three_models, fmnist_test):
    """128 test images the three members' vote classifies correctly."""
    x, y = fmnist_test
    with torch.no_grad():
        ok = predict([m(x) for m in three_models], "paper") == y
    return x[ok][:128], y[ok][:128]


def _vote_success(models, adv, y) -> float:
    with torch.no_grad():
        return float((predict([m(adv) for m in models], "paper") != y).float().mean())


@pytest.mark.parametrize("wrapper", [GradScaled, LogitScaled])
def test_agd_beats_dag_when_one_gradient_dominates(wrapper, three_models, vote_batch):
    x, y = vote_batch
    members = [wrapper(three_models[0], 1000.0), *three_models[1:]]
    rates = {
        rule: _vote_success(three_models, EnsemblePGD(rule, eps=0.05, steps=20, seed=0)(members, x, y), y)
        for rule in ("dag", "agd")
    }
    # D-AG follows the dominant member alone; A-GD's per-pixel majority attacks the vote
    assert rates["agd"] >= rates["dag"]
    if wrapper is GradScaled:
        assert rates["agd"] > rates["dag"]


def test_single_member_dag_equals_pgd(tiny_model, batch):
    # K = 1: sign(G_1) is PGD's direction, and the same seed gives the same random start
    x, y = batch
    ours = EnsemblePGD("dag", eps=0.05, alpha=0.01, steps=10, seed=3)([tiny_model], x, y)
    assert torch.equal(ours, PGD(eps=0.05, alpha=0.01, steps=10, seed=3)(tiny_model, x, y))


@pytest.mark.parametrize("rule", ["dag", "agd", "ugd", "empir", "eadg"])
def test_every_rule_stays_in_bound(rule, three_models, vote_batch):
    x, y = vote_batch[0][:16], vote_batch[1][:16]
    adv = EnsemblePGD(rule, eps=0.03, steps=5)(three_models, x, y)
    assert (adv - x).abs().max() <= 0.03 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    assert adv.shape == x.shape and adv.dtype == torch.float32


@pytest.fixture()
def spy_registry():
    """The process registry plus an in-test plugin whose rule "spy" records its masks."""
    seen: list[torch.Tensor] = []

    def spy(grads, mask):
        seen.append(mask.clone())
        return agd(grads, mask)

    spy.needs_mask = True

    class Plugin:
        @hookimpl
        def trend_direction_rules(self):
            return {"spy": spy}

    old = get_registry()
    fresh = Registry()
    fresh.register(Plugin(), name="test-spy")
    set_registry(fresh)
    try:
        yield seen
    finally:
        set_registry(old)


def test_mask_rules_fix_the_vote_at_x0(spy_registry, three_models, vote_batch):
    x, y = vote_batch[0][:32], vote_batch[1][:32]
    attack = EnsemblePGD("spy", eps=0.1, steps=3, random_start=False)
    attack(three_models, x, y)
    assert attack.params["rule"] == "spy" and len(spy_registry) == 3
    with torch.no_grad():
        logits = [m(x) for m in three_models]  # no random start: x_0 = x
    y_hat = predict(logits, "paper", seed=0)
    expected = torch.stack([(lg.argmax(1) == y_hat).float() for lg in logits])
    assert torch.equal(spy_registry[0], expected)  # m_k at x_0, against y_hat = vote(x_0)
    # later masks compare against the same y_hat (members drift away from it, never to a new one)
    assert (spy_registry[2] <= 1).all() and spy_registry[2].sum() <= spy_registry[0].sum()


def test_params_and_validation():
    attack = EnsemblePGD("AGD", eps=0.02)  # names are canonicalised: lower_snake
    assert attack.params == {
        "rule": "agd", "eps": 0.02, "alpha": 0.01, "steps": 40, "random_start": True, "seed": 0, "tie_break": "paper",
    }
    with pytest.raises(UnknownNameError, match="known: agd"):
        EnsemblePGD("avg_grad")
    with pytest.raises(UsageError, match="tie-break"):
        EnsemblePGD("agd", tie_break="coin")
    with pytest.raises(UsageError, match="at least one model"):
        EnsemblePGD("agd")([], torch.rand(1, 1, 2, 2), torch.tensor([0]))
