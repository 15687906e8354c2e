"""Direction rules on hand-made gradients (rules/directions.py; docs/method.md "Attacks on an ensemble")."""

from __future__ import annotations

import pytest
import torch

from trendcli.errors import UsageError
from trendcli.registry import get_registry
from trendcli.rules.directions import agd, dag, eadg, empir, ugd

# K = 3 members, N = 1 image of 4 pixels ([1, 1, 1, 4] each):
#            pixel:  p0    p1    p2    p3
# G_1             [ 5.0,  1.0, -1.0,  2.0]
# G_2             [-1.0,  2.0, -3.0,  0.0]
# G_3             [-1.0,  3.0,  1.0, -2.0]
G = torch.tensor([[5.0, 1.0, -1.0, 2.0], [-1.0, 2.0, -3.0, 0.0], [-1.0, 3.0, 1.0, -2.0]]).view(3, 1, 1, 1, 4)


def _flat(t: torch.Tensor) -> list[float]:
    return t.flatten().tolist()


def test_dag():
    # sum_k G_k = [3, 6, -3, 0] -> sign [1, 1, -1, 0]
    assert _flat(dag(G, None)) == [1.0, 1.0, -1.0, 0.0]


def test_agd():
    # S = [[1, 1, -1, 1], [-1, 1, -1, 0], [-1, 1, 1, -1]]; sum_k S_k = [-1, 3, -1, 0] -> [-1, 1, -1, 0]
    # (p0: D-AG follows G_1's large 5, A-GD the two members voting -1; p3: a 1-1 tie -> 0)
    assert _flat(agd(G, None)) == [-1.0, 1.0, -1.0, 0.0]


def test_ugd():
    # A = sum_k S_k / 3 = [-1/3, 1, -1/3, 0]; floor(|A|) = [0, 1, 0, 0] -> A * floor(|A|) = [0, 1, 0, 0]
    assert _flat(ugd(G, None)) == [0.0, 1.0, 0.0, 0.0]
    # all three agree on -1 at one pixel: A = -1 -> step -1
    neg = -G.abs()
    assert _flat(ugd(neg, None)) == [-1.0, -1.0, -1.0, 0.0]  # p3: G_2 = 0 has sign 0, so |A| = 2/3


def test_empir():
    # m = [1, 0, 1] (member 2 no longer votes y_hat): G_1 + G_3 = [4, 4, 0, 0] -> [1, 1, 0, 0]
    mask = torch.tensor([[1.0], [0.0], [1.0]])
    assert _flat(empir(G, mask)) == [1.0, 1.0, 0.0, 0.0]


def test_eadg():
    # m = [0, 1, 1]: S_2 + S_3 = [-2, 2, 0, -1] -> [-1, 1, 0, -1]
    mask = torch.tensor([[0.0], [1.0], [1.0]])
    assert _flat(eadg(G, mask)) == [-1.0, 1.0, 0.0, -1.0]


def test_full_mask_reduces_to_dag_and_agd():
    ones = torch.ones(3, 1)
    assert torch.equal(empir(G, ones), dag(G, None))
    assert torch.equal(eadg(G, ones), agd(G, None))


def test_mask_flags_and_errors():
    assert empir.needs_mask and eadg.needs_mask
    assert not (dag.needs_mask or agd.needs_mask or ugd.needs_mask)
    with pytest.raises(UsageError, match="mask"):
        empir(G, None)
    with pytest.raises(UsageError, match="mask shape"):
        eadg(G, torch.ones(2, 1))
    with pytest.raises(UsageError, match=r"\[K, N, C, H, W\]"):
        dag(G[0], None)


def test_rules_are_registered():
    registry = get_registry()
    for name, rule in {"dag": dag, "agd": agd, "ugd": ugd, "empir": empir, "eadg": eadg}.items():
        assert registry.factory("direction rule", name) is rule


def test_batched_shapes():
    grads = torch.randn(4, 5, 3, 2, 2)
    for rule in (dag, agd, ugd):
        assert rule(grads, None).shape == (5, 3, 2, 2)
    for rule in (empir, eadg):
        assert rule(grads, torch.ones(4, 5)).shape == (5, 3, 2, 2)
