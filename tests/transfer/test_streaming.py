"""evaluate_set with the prediction cache: what a matrix costs, cached equals fresh, damage is recomputed.

Uses test_matrix's store-backed one-step FGSM on tiny template classifiers (real .h5 files,
real streaming, real prediction-cache files).
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from trendcli.adversarial.store import AdvStore
from trendcli.data import load_split
from trendcli.progress import NullProgress
from trendcli.transfer import streaming
from trendcli.transfer.matrix import compute_matrix
from trendcli.zoo.files import load_models

from ..conftest import needs_fmnist
from .test_matrix import FakeAttack, fake_attack, template_model  # noqa: F401  (fixture)

KW = dict(limit=64, batch_size=32, device="cpu")


class Log(NullProgress):
    def __init__(self):
        self.messages: list[str] = []

    def log(self, message: str) -> None:
        self.messages.append(message)


@needs_fmnist
def test_adding_a_model_costs_one_attack_and_2n_plus_1_evaluations(tmp_path, fake_attack):
    n = 3
    models = [template_model(s) for s in range(n + 1)]
    store = tmp_path / "adv"
    first = compute_matrix(models[:n], "fgsm", {"eps": 0.1}, store=store, **KW)
    assert (first.attacked, first.evaluated, first.read_from_cache) == (n, n * n, 0)
    grown = compute_matrix(models, "fgsm", {"eps": 0.1}, store=store, previous=first, **KW)
    # the new source's set through all n+1 models, the new target through the n old sets; the
    # old sources' own predictions on their sets come from the cache
    assert grown.attacked == 1
    assert grown.evaluated == 2 * n + 1
    assert grown.read_from_cache == n
    assert grown.reused_pairs == n * n
    # a new matrix over known models and sets (no previous matrix): no forward pass at all
    fresh = compute_matrix(models, "fgsm", {"eps": 0.1}, store=store, **KW)
    assert (fresh.attacked, fresh.evaluated, fresh.read_from_cache) == (0, 0, (n + 1) ** 2)
    np.testing.assert_array_equal(fresh.n_t, grown.n_t)
    assert fresh.to_dict()["run"]["read_from_cache"] == (n + 1) ** 2


@needs_fmnist
def test_cached_predictions_equal_fresh_ones(tmp_path):
    models = load_models([template_model(0), template_model(1), template_model(2, "q1", noise=1.0)])
    advset = FakeAttack()(models[0], "fgsm", {"eps": 0.1}, limit=64, batch_size=32, store=tmp_path).advset
    data, _ = load_split("fashion_mnist", "test")
    targets = dict(enumerate(models))
    cache = AdvStore(tmp_path).predictions
    fresh = streaming.evaluate_set(advset, targets, data, 32)
    first = streaming.evaluate_set(advset, targets, data, 32, cache=cache)
    again = streaming.evaluate_set(advset, targets, lambda: pytest.fail("data loaded"), 32, cache=cache)
    assert first.evaluated == [0, 1, 2] and again.evaluated == [] and again.from_cache == [0, 1, 2]
    for k in targets:
        np.testing.assert_array_equal(again.clean_ok[k], fresh.clean_ok[k])
        np.testing.assert_array_equal(again.adv_ok[k], fresh.adv_ok[k])
    assert not all(fresh.adv_ok[k].all() for k in targets)  # not a vacuous comparison
    # the q1 model quantizes per minibatch: another chunk is another entry; per-image ones are reused
    other = streaming.evaluate_set(advset, targets, data, 16, cache=cache)
    assert other.evaluated == [2] and other.from_cache == [0, 1]


@needs_fmnist
def test_corrupted_entry_is_reported_and_recomputed(tmp_path, fake_attack):
    models = [template_model(s) for s in range(3)]
    store = tmp_path / "adv"
    first = compute_matrix(models, "fgsm", {"eps": 0.1}, store=store, **KW)
    entries = sorted((store / "predictions").glob("*/*.h5"))
    assert len(entries) == 9
    with h5py.File(entries[0], "r") as f:  # where adv_pred's (only) chunk lies in the file
        at = f["adv_pred"].id.get_chunk_info(0).byte_offset
    raw = bytearray(entries[0].read_bytes())
    raw[at] ^= 0x01  # a prediction 0 <-> 1: plausible, caught only by the checksum
    entries[0].write_bytes(bytes(raw))
    log = Log()
    again = compute_matrix(models, "fgsm", {"eps": 0.1}, store=store, progress=log, **KW)
    assert again.evaluated == 1 and again.read_from_cache == 8
    assert any("prediction cache entry" in m and "recomputing" in m for m in log.messages), log.messages
    for name in ("n_c", "n_g", "n_t"):
        np.testing.assert_array_equal(getattr(again, name), getattr(first, name))
    third = compute_matrix(models, "fgsm", {"eps": 0.1}, store=store, **KW)
    assert (third.evaluated, third.read_from_cache) == (0, 9)  # the rewritten entry reads cleanly


@needs_fmnist
def test_trend_matrix_prints_the_counts(tmp_path, fake_attack, capsys):
    from .test_matrix import _cli, _saved_smallcnn

    for seed in range(2):
        _saved_smallcnn(tmp_path / "zoo" / f"m{seed}", seed)
    argv = ["matrix", "--models-dir", str(tmp_path / "zoo"), "--attack", "fgsm", "--eps", "8/255", "--limit", "32",
            "--device", "cpu", "--store", str(tmp_path / "adv")]
    code, out, err = _cli(argv + ["--out", str(tmp_path / "a")], capsys)
    assert code == 0, err
    assert "4 evaluated, 0 read from the cache; 2 set(s) attacked" in " ".join(out.split())
    code, out, err = _cli(argv + ["--out", str(tmp_path / "b")], capsys)  # a new matrix over known sets
    assert code == 0, err
    assert "0 evaluated, 4 read from the cache; 0 set(s) attacked" in " ".join(out.split())


@needs_fmnist
def test_a_cache_that_cannot_be_written_is_logged_not_fatal(tmp_path, monkeypatch):
    from trendcli.adversarial.store import PredictionCache
    from trendcli.errors import StoreError

    models = load_models([template_model(0), template_model(1)])
    advset = FakeAttack()(models[0], "fgsm", {"eps": 0.1}, limit=32, batch_size=32, store=tmp_path).advset
    data, _ = load_split("fashion_mnist", "test")

    def refuse(self, spec, predictions, set_created=None):
        raise StoreError(f"cannot write {self.root} (Read-only file system)")

    monkeypatch.setattr(PredictionCache, "put", refuse)
    log = Log()
    ev = streaming.evaluate_set(advset, dict(enumerate(models)), data, 32, progress=log, cache=AdvStore(tmp_path).predictions)
    assert ev.evaluated == [0, 1] and sum("not kept in the cache" in m for m in log.messages) == 2
    np.testing.assert_array_equal(ev.adv_pred[0] == ev.labels, ev.adv_ok[0])
