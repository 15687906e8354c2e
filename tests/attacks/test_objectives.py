"""Losses, success and strict parameters shared by the adaptive attacks (attacks/objectives.py)."""

from __future__ import annotations

import math

import pytest
import torch

from trendcli.attacks.apgd import APGD
from trendcli.attacks.objectives import dlr, dlr_targeted, fooled, forward_all, gradient_loss, vote_score
from trendcli.errors import UsageError

LOGITS = torch.tensor([[3.0, 1.0, 2.0, 0.0]])  # sorted: 3 (class 0), 2 (class 2), 1 (class 1), 0 (class 3)


def test_dlr_by_hand():
    # y = 0: -(3 - 2) / (3 - 1) = -0.5;  y = 1: -(1 - 3) / (3 - 1) = 1
    assert dlr(LOGITS, torch.tensor([0])).item() == pytest.approx(-0.5)
    assert dlr(LOGITS, torch.tensor([1])).item() == pytest.approx(1.0)
    # shift and scale invariant: DLR(2 z + 5) = DLR(z)
    assert dlr(2 * LOGITS + 5, torch.tensor([1])).item() == pytest.approx(1.0)


def test_targeted_dlr_by_hand():
    # y = 0, t = 3: -(3 - 0) / (3 - (1 + 0) / 2) = -3 / 2.5 = -1.2
    assert dlr_targeted(LOGITS, torch.tensor([0]), torch.tensor([3])).item() == pytest.approx(-1.2)
    assert gradient_loss(LOGITS, "dlr", torch.tensor([0]), torch.tensor([3])).item() == pytest.approx(-1.2)


def test_dlr_needs_enough_classes():
    with pytest.raises(UsageError, match="at least 3 classes"):
        dlr(torch.zeros(1, 2), torch.tensor([0]))
    with pytest.raises(UsageError, match="at least 4 classes"):
        dlr_targeted(torch.zeros(1, 3), torch.tensor([0]), torch.tensor([1]))


def test_ce_loss_signs():
    y, t = torch.tensor([0]), torch.tensor([3])
    ce_y = -math.log(math.exp(3) / sum(math.exp(v) for v in (3, 1, 2, 0)))
    ce_t = -math.log(math.exp(0) / sum(math.exp(v) for v in (3, 1, 2, 0)))
    assert gradient_loss(LOGITS, "ce", y, None).item() == pytest.approx(ce_y, rel=1e-5)
    assert gradient_loss(LOGITS, "ce", y, t).item() == pytest.approx(-ce_t, rel=1e-5)


def test_vote_score_one_model_is_the_margin():
    # margin for y = 2: 2 - 3 = -1; targeted toward t = 1: -(1 - 3) = 2
    assert vote_score([LOGITS], torch.tensor([2]), None).item() == -1.0
    assert vote_score([LOGITS], torch.tensor([0]), torch.tensor([1])).item() == 2.0


def test_vote_score_votes_dominate_and_margins_break_ties():
    # three members on 3 classes, y = 0; members 1, 2 vote 0, member 3 votes 1
    a = torch.tensor([[2.0, 0.0, 0.0]])  # margin 2
    b = torch.tensor([[1.0, 0.5, 0.0]])  # margin 0.5
    c = torch.tensor([[0.0, 4.0, 0.0]])  # margin -4
    y = torch.tensor([0])
    # votes (2, 1, 0): vote margin 1; mean margin (2 + 0.5 - 4) / 3 = -0.5 -> 1 + tanh(-0.5) / 2
    assert vote_score([a, b, c], y, None).item() == pytest.approx(1 + math.tanh(-0.5) / 2, rel=1e-6)
    # however large the logit margins, one vote more for y scores higher
    huge = [a * 100, b * 100, c]
    fewer = [a, c, c]  # votes (1, 2, 0): vote margin -1
    assert vote_score(fewer, y, None).item() < 0 < vote_score(huge, y, None).item()
    assert abs(vote_score(huge, y, None).item() - 1) <= 0.5  # the logit term is within [-1/2, 1/2]


def test_fooled_uses_the_vote():
    y = torch.tensor([0])
    a, c = torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([[0.0, 4.0, 0.0]])
    assert not fooled([a, a, c], y, None, "first", 0).item()
    assert fooled([a, c, c], y, None, "first", 0).item()
    assert fooled([a, c, c], y, torch.tensor([1]), "first", 0).item()


def test_forward_all_rejects_a_model_without_gradients():
    class NoGrad(torch.nn.Module):
        def forward(self, x):
            with torch.no_grad():
                return x.flatten(1)[:, :4] * 1.0

    x = torch.rand(2, 1, 2, 2, requires_grad=True)
    with pytest.raises(UsageError, match="needs gradients.*square"):
        forward_all([NoGrad()], x, "apgd", need_grad=True)
    assert forward_all([NoGrad()], x, "square", need_grad=False)[0].shape == (2, 4)


def test_unknown_parameter_names_the_allowed_ones():
    with pytest.raises(UsageError, match=r"unknown parameter 'ti_kernel' for attack 'apgd'; allowed: eps, n_iter"):
        APGD(ti_kernel=7)
