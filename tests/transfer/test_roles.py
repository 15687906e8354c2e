"""Sources and targets of a rectangular matrix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trendcli import ModelSpec, build_model
from trendcli.errors import UsageError
from trendcli.transfer.matrix import TransferMatrix, model_entry
from trendcli.transfer.reuse import Reused
from trendcli.transfer.roles import forget_unasked, prepare_roles

SPEC = ModelSpec(arch="smallcnn", dataset="fashion_mnist", in_channels=1, image_size=28, num_classes=10,
                 mean=(0.286,), std=(0.353,))


def _models(n):
    out = []
    for seed in range(n):
        torch.manual_seed(seed)
        model = build_model(SPEC)
        model.meta = {"id": f"m{seed}"}
        out.append(model)
    return out


def test_a_model_that_is_source_and_target_is_one_model():
    a, b, c = _models(3)
    loaded, names, rows, cols = prepare_roles([a, b], [b, c], "cpu")
    assert names == ["m0", "m1", "m2"] and rows == [0, 1] and cols == [1, 2]
    assert prepare_roles([a, b], None, "cpu")[2:] == (None, None)
    with pytest.raises(UsageError, match="at least one source and one target"):
        prepare_roles([], [c], "cpu")


def test_pairs_a_rectangular_previous_never_computed_are_computed_again():
    a, b, c = _models(3)
    loaded, names, _, _ = prepare_roles([a, b, c], None, "cpu")
    entries = [model_entry(m, n) for m, n in zip(loaded, names)]
    ones = np.ones((3, 3), dtype=np.int64)
    # previous: sources m0, m1 -> target m2; the 3 x 3 counts hold zeros elsewhere
    previous = TransferMatrix(names, [None] * 3, ones, ones, ones, {}, models=entries,
                              source_names=["m0", "m1"], target_names=["m2"])
    counts = Reused(ones.copy(), ones.copy(), ones.copy())
    forget_unasked(previous, entries, counts)
    assert (counts.n_c >= 0).tolist() == [[False, False, True], [False, False, True], [False, False, False]]
