"""Majority vote and its tie-breaks (vote.py; docs/method.md "Ensemble prediction")."""

from __future__ import annotations

import pytest
import torch

from trendcli.errors import UsageError
from trendcli.ensemble.vote import predict, votes


def _one_hot_logits(labels: list[int], classes: int = 4, value: float = 1.0) -> torch.Tensor:
    """Logits [N, classes] whose argmax per row is labels[n]."""
    out = torch.zeros(len(labels), classes)
    out[torch.arange(len(labels)), torch.tensor(labels)] = value
    return out


def test_votes_count_argmaxes():
    # 3 members, 2 images: image 0 votes [2, 2, 1]; image 1 votes [0, 3, 3]
    members = [_one_hot_logits([2, 0]), _one_hot_logits([2, 3]), _one_hot_logits([1, 3])]
    assert votes(members).tolist() == [[0, 1, 2, 0], [1, 0, 0, 2]]


def test_clear_majority_is_the_same_under_every_policy():
    members = [_one_hot_logits([2, 0]), _one_hot_logits([2, 3]), _one_hot_logits([1, 3])]
    for policy in ("paper", "first", "confidence"):
        assert predict(members, policy).tolist() == [2, 3]


def test_paper_all_different_picks_a_seeded_random_member():
    # 3 members vote 3, 1, 2 on each of 200 images: max votes = 1 -> a random member's label
    members = [_one_hot_logits([3] * 200), _one_hot_logits([1] * 200), _one_hot_logits([2] * 200)]
    a = predict(members, "paper", seed=0)
    assert set(a.tolist()) == {1, 2, 3}  # every member gets picked (P(miss one) ~ 3 * (2/3)^200)
    assert torch.equal(a, predict(members, "paper", seed=0))
    assert not torch.equal(a, predict(members, "paper", seed=1))
    # uniform: each member about a third of the time
    counts = torch.bincount(a, minlength=4)[1:].float() / 200
    assert (counts - 1 / 3).abs().max() < 0.12


def test_paper_two_two_tie_goes_to_the_lowest_class():
    # 4 members vote 3, 1, 3, 1: max votes 2 (not all different) -> lowest tied class, 1
    members = [_one_hot_logits([3]), _one_hot_logits([1]), _one_hot_logits([3]), _one_hot_logits([1])]
    assert predict(members, "paper").tolist() == [1]


def test_first_two_two_tie_goes_to_the_earliest_member():
    # members vote 3, 1, 3, 1: classes 3 and 1 tie with 2 votes; member 0 voted 3 -> 3
    members = [_one_hot_logits([3]), _one_hot_logits([1]), _one_hot_logits([3]), _one_hot_logits([1])]
    assert predict(members, "first").tolist() == [3]
    # a member outside the tie comes first: votes 0, 1, 3, 1, 3 -> tie {1, 3}; member 1 voted 1 -> 1
    members = [_one_hot_logits([v]) for v in (0, 1, 3, 1, 3)]
    assert predict(members, "first").tolist() == [1]


def test_first_all_different_is_the_first_member():
    members = [_one_hot_logits([2]), _one_hot_logits([0]), _one_hot_logits([3])]
    assert predict(members, "first").tolist() == [2]


def test_confidence_two_two_tie_goes_to_the_higher_mean_softmax():
    # votes 3, 1, 3, 1 (tie {1, 3}). Member logits over 4 classes:
    # m0 = [0, 0, 0, 1], m2 = [0, 0, 0, 1]  (vote 3, softmax of class 3 = e/(3+e) = 0.475)
    # m1 = [0, 4, 0, 0], m3 = [0, 4, 0, 0]  (vote 1, softmax of class 1 = e^4/(3+e^4) = 0.948)
    # mean softmax: class 1 = (0.175 + 0.948 + 0.175 + 0.948)/4 = 0.562 (0.175 = 1/(3+e))
    #               class 3 = (0.475 + 0.018 + 0.475 + 0.018)/4 = 0.247 (0.018 = 1/(3+e^4)) -> 1
    members = [_one_hot_logits([3]), _one_hot_logits([1], value=4.0), _one_hot_logits([3]), _one_hot_logits([1], value=4.0)]
    assert predict(members, "confidence").tolist() == [1]
    assert predict(members, "first").tolist() == [3]  # the same tie, a different policy


def test_confidence_ignores_classes_outside_the_tie():
    # votes 0, 0, 2, 2, 1 -> tie {0, 2}; member 4 is very sure of class 1, which has 1 vote
    members = [_one_hot_logits([v]) for v in (0, 0, 2, 2)] + [_one_hot_logits([1], value=50.0)]
    assert predict(members, "confidence").tolist() in ([0], [2])
    assert predict(members, "confidence").tolist() != [1]


def test_errors():
    with pytest.raises(UsageError, match="unknown tie-break 'coin'"):
        predict([_one_hot_logits([0])], "coin")
    with pytest.raises(UsageError, match="at least one"):
        predict([], "first")
    with pytest.raises(UsageError, match="share one shape"):
        votes([_one_hot_logits([0]), _one_hot_logits([0, 1])])
