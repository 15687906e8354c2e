"""Specs and content keys (adversarial/store/keys.py)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from tests.adversarial.store.sets import W1, W2, W3, spec_for
from trendcli.adversarial.store import AdvStore, content_key
from trendcli.adversarial.store import keys as store_keys

def test_content_key_is_sha256_of_sorted_compact_json():
    # keys sorted, no whitespace: {"a":[1,2],"b":1}
    expected = hashlib.sha256(b'{"a":[1,2],"b":1}').hexdigest()
    assert content_key({"b": 1, "a": [1, 2]}) == expected
    assert content_key({"a": (1, 2), "b": 1}) == expected


def test_key_is_deterministic_and_ignores_input_form():
    base = content_key(spec_for())
    assert content_key(spec_for()) == base
    # same index list as torch, numpy int32, or list; params order, tuples and numpy scalars
    assert content_key(spec_for(indices=np.arange(10, dtype=np.int32))) == base
    assert content_key(spec_for(indices=list(range(10)))) == base
    same_params = {"steps": np.int64(40), "random_start": True, "alpha": 0.01, "eps": np.float64(0.03)}
    assert content_key(spec_for(params=same_params)) == base
    assert content_key(spec_for(attack="PGD")) == base
    assert content_key(spec_for(dataset="fashion-mnist")) == base
    assert content_key(spec_for(weights_sha256=[W1.upper()])) == base


@pytest.mark.parametrize(
    "change",
    [
        {"params": {"eps": 0.031, "alpha": 0.01, "steps": 40, "random_start": True}},
        {"params": {"eps": 0.03, "alpha": 0.01, "steps": 41, "random_start": True}},
        {"params": {"eps": 0.03, "alpha": 0.01, "steps": 40, "random_start": False}},
        {"params": {"eps": 0.03, "alpha": 0.01, "steps": 40, "random_start": True, "seed": 0}},
        {"weights_sha256": [W2]},
        {"weights_sha256": [W1, W2]},
        {"attack": "bim"},
        {"dataset": "cifar10"},
        {"split": "val"},
        {"indices": torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 11])},
        {"indices": torch.arange(9, -1, -1)},
        {"indices": torch.arange(11)},
        {"extra": {"tie_break": "first"}},
        {"layout": "channels_last"},  # the layout changes float rounding
    ],
)
def test_key_changes_with_every_field(change):
    assert content_key(spec_for(**change)) != content_key(spec_for())


def test_ensemble_weight_order_matters():
    a = content_key(spec_for(weights_sha256=[W1, W2, W3]))
    b = content_key(spec_for(weights_sha256=[W3, W2, W1]))
    assert a != b


def test_key_changes_with_attack_code_version(monkeypatch):
    before = content_key(spec_for())
    monkeypatch.setattr(store_keys, "ATTACK_CODE_VERSION", store_keys.ATTACK_CODE_VERSION + 1)
    assert content_key(spec_for()) != before


def test_spec_records_index_hash_not_the_list():
    spec = spec_for(indices=torch.arange(1000))
    assert spec["n"] == 1000
    assert spec["indices_sha256"] == hashlib.sha256(np.arange(1000, dtype="<i8").tobytes()).hexdigest()
    assert spec == json.loads(json.dumps(spec))


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"weights_sha256": W1}, "list"),
        ({"weights_sha256": []}, "empty"),
        ({"weights_sha256": ["abc"]}, "sha256"),
        ({"indices": torch.arange(0)}, "empty"),
        ({"indices": torch.zeros(2, 2, dtype=torch.long)}, "1-D"),
        ({"indices": torch.tensor([0.0, 1.0])}, "integers"),
        ({"indices": torch.tensor([0, -1])}, "non-negative"),
        ({"params": {"eps": float("nan")}}, "finite"),
        ({"params": {"eps": object()}}, "plain JSON"),
        ({"params": {1: 2}}, "string key"),
        ({"split": ""}, "split"),
        ({"layout": "auto"}, "layout must be one of contiguous, channels_last"),  # resolve "auto" first
    ],
)
def test_make_spec_rejects_bad_inputs(bad, match):
    with pytest.raises(ValueError, match=match):
        spec_for(**bad)


def test_keys_are_checked():
    with pytest.raises(ValueError, match="store key"):
        AdvStore("x").get("../etc/passwd")
