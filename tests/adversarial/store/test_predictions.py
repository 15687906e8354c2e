"""The prediction cache: keys, round trip, corruption never passes, regeneration removes entries."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from trendcli.adversarial.store import PREDICTIONS_FORMAT, Predictions, content_key, prediction_spec
from trendcli.errors import StoreError

from .sets import W1, W2, finished, spec_for

SET_KEY = content_key(spec_for())
MODEL = {"arch": "smallcnn", "input_quant": "q1"}


def _preds(n=6):
    # labels 0..5; clean right on all, adversarial right on the even ones
    labels = np.arange(n, dtype=np.int64)
    adv = np.where(labels % 2 == 0, labels, (labels + 1) % 10)
    return Predictions(labels, labels.copy(), adv)


def test_correctness_is_prediction_equals_label():
    p = _preds()
    assert p.clean_ok.tolist() == [True] * 6
    assert p.adv_ok.tolist() == [True, False, True, False, True, False]


def test_key_holds_set_weights_spec_form_and_chunk_only_when_per_minibatch():
    base = prediction_spec(SET_KEY, W1, MODEL, "per_image")
    assert base["chunk"] is None and base["format"] == PREDICTIONS_FORMAT
    # per-image predictions do not depend on the batch: a chunk given there is dropped
    assert prediction_spec(SET_KEY, W1, MODEL, "per_image", 64) == base
    keys = {content_key(s) for s in (
        base,
        prediction_spec(SET_KEY, W2, MODEL, "per_image"),
        prediction_spec(SET_KEY, W1, {**MODEL, "input_quant": "q2"}, "per_image"),
        prediction_spec(SET_KEY, W1, MODEL, "per_minibatch", 64),
        prediction_spec(SET_KEY, W1, MODEL, "per_minibatch", 128),
        prediction_spec(content_key(spec_for(attack="fgsm")), W1, MODEL, "per_image"),
    )}
    assert len(keys) == 6
    with pytest.raises(ValueError, match="chunk"):
        prediction_spec(SET_KEY, W1, MODEL, "per_minibatch")
    with pytest.raises(ValueError, match="form"):
        prediction_spec(SET_KEY, W1, MODEL, "per_batch")


def test_round_trip_and_absent_entry(st):
    cache, spec, p = st.predictions, prediction_spec(SET_KEY, W1, MODEL, "per_image"), _preds()
    assert cache.get(spec, p.labels) is None
    path = cache.put(spec, p, "2026-12-01T00:00:00+00:00")
    assert path.parent.name == SET_KEY and path.name == f"{content_key(spec)}.h5"
    got = cache.get(spec, p.labels, "2026-12-01T00:00:00+00:00")
    np.testing.assert_array_equal(got.clean_pred, p.clean_pred)
    np.testing.assert_array_equal(got.adv_pred, p.adv_pred)
    with h5py.File(path, "r") as f:  # every dataset checksummed, no pickle anywhere
        assert all(f[name].fletcher32 for name in ("labels", "clean_pred", "adv_pred", "clean_ok", "adv_ok"))
        assert f.attrs["format"] == PREDICTIONS_FORMAT
    assert cache.keys(SET_KEY) == [content_key(spec)]
    assert list(path.parent.glob(".*")) == []  # no temporary file left behind


def test_flipped_byte_fails_its_checksum(st):
    cache, spec, p = st.predictions, prediction_spec(SET_KEY, W1, MODEL, "per_image"), _preds()
    path = cache.put(spec, Predictions(p.labels, p.clean_pred, np.full(6, 123456789, dtype=np.int64)))
    raw = bytearray(path.read_bytes())
    at = raw.find(np.int64(123456789).tobytes())
    assert at > 0
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match="unreadable"):
        cache.get(spec, p.labels)


def test_edited_entry_wrong_labels_and_stale_set_are_refused(st):
    cache, spec, p = st.predictions, prediction_spec(SET_KEY, W1, MODEL, "per_image"), _preds()
    path = cache.put(spec, p, "then")
    with pytest.raises(StoreError, match="labels differ"):
        cache.get(spec, p.labels + 1)
    with pytest.raises(StoreError, match="earlier version"):
        cache.get(spec, p.labels, "now")
    with h5py.File(path, "r+") as f:  # rewritten with a fresh checksum: the consistency check catches it
        f["adv_ok"][...] = ~f["adv_ok"][...]
    with pytest.raises(StoreError, match="adv_ok disagrees"):
        cache.get(spec, p.labels)
    with h5py.File(path, "r+") as f:
        f.attrs["key"] = "0" * 64
    with pytest.raises(StoreError, match="key or spec"):
        cache.get(spec, p.labels)


def test_regenerating_a_set_removes_its_entries(st):
    # AdvStore.remove (force=True) takes the set's predictions with it
    key, _, _ = finished(st, n=4)
    cache = st.predictions
    pspec = prediction_spec(key, W1, MODEL, "per_image")
    cache.put(pspec, _preds(4))
    assert cache.keys(key)
    assert st.remove(key)
    assert cache.keys(key) == [] and cache.get(pspec, _preds(4).labels) is None
