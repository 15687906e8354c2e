"""Matrix reuse: which pairs of a previous matrix a new one takes over."""

from __future__ import annotations

import numpy as np

from trendcli.transfer.matrix import TransferMatrix
from trendcli.transfer.reuse import attack_settings, identity, reuse_pairs, same_settings


def _entry(name: str, sha: str) -> dict:
    return {"name": name, "weights_sha256": sha, "spec": {"arch": "smallcnn", "input_quant": "fp"}}


SETTINGS = attack_settings("PGD", {"steps": 5, "eps": np.float32(0.5)}, "test", 64, 32)


def _previous() -> TransferMatrix:
    # models a, b; counts chosen so that every entry is distinct: n_c = 10*(s+1) + t
    n_c = np.array([[10, 11], [20, 21]])
    return TransferMatrix(names=["a", "b"], model_dirs=[None, None], n_c=n_c, n_g=n_c - 5, n_t=n_c - 8,
                          clean_accuracy={"a": 0.75, "b": 0.5}, models=[_entry("a", "A"), _entry("b", "B")],
                          attack={**SETTINGS, "n_images": 64}, sources=[{"name": "b", "store_key": "kb"}])


def test_settings_are_canonical_json():
    assert SETTINGS == {"method": "pgd", "params": {"eps": 0.5, "steps": 5}, "split": "test", "limit": 64, "batch_size": 32}
    assert list(SETTINGS["params"]) == ["eps", "steps"] and type(SETTINGS["params"]["eps"]) is float
    assert same_settings({**SETTINGS, "n_images": 64}, SETTINGS)
    assert not same_settings({**SETTINGS, "limit": 128}, SETTINGS)


def test_reused_pairs_follow_the_models_not_their_positions():
    # new order: b, c (new weights), a  -> reused: (b,b) (b,a) (a,b) (a,a); row and column of c to compute
    new = [_entry("b2", "B"), _entry("c", "C"), _entry("a2", "A")]
    got = reuse_pairs(_previous(), new, ["b2", "c", "a2"], SETTINGS)
    assert got.n_c.tolist() == [[21, -1, 20], [-1, -1, -1], [11, -1, 10]]
    assert got.n_g[0, 2] == 15 and got.n_t[2, 0] == 3
    assert got.count == 4 and got.todo() == [(0, [1]), (1, [0, 1, 2]), (2, [1])]
    assert got.clean_accuracy == {"b2": 0.5, "a2": 0.75} and got.n_images == 64
    # b's source record comes along under its new name; a had none
    assert got.sources == [{"name": "b2", "store_key": "kb", "reused": True}, None, None]


def test_nothing_is_reused_under_other_settings_or_without_a_previous_matrix():
    new = [_entry("a", "A"), _entry("b", "B")]
    other = attack_settings("pgd", {"steps": 5, "eps": 0.25}, "test", 64, 32)
    for previous, settings in ((_previous(), other), (None, SETTINGS)):
        got = reuse_pairs(previous, new, ["a", "b"], settings)
        assert got.count == 0 and got.todo() == [(0, [0, 1]), (1, [0, 1])] and got.n_images is None


def test_identity_is_weights_and_spec():
    a = _entry("a", "A")
    assert identity(a) == identity({**a, "name": "other"})
    assert identity(a) != identity({**a, "spec": {**a["spec"], "input_quant": "q1"}})
