"""Tests for the adversarial-set store (src/trendcli/store.py)."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import sys
import time

import h5py
import numpy as np
import pytest
import torch

from trendcli.adversarial import store as store_mod
from trendcli.errors import StoreError
from trendcli.adversarial.store import FORMAT, AdvStore, Chunk, content_key, make_spec

W1, W2, W3 = "a" * 64, "b" * 64, "c" * 64
SHAPE = (1, 2, 3)  # tiny images: C, H, W


def spec_for(indices=None, **over):
    kw = dict(
        weights_sha256=[W1],
        attack="pgd",
        params={"eps": 0.03, "alpha": 0.01, "steps": 40, "random_start": True},
        dataset="fashion_mnist",
        split="test",
        indices=torch.arange(10) if indices is None else indices,
    )
    kw.update(over)
    return make_spec(**kw)


def data(n, seed=0):
    """Clean images, adversarial images (clean + noise, clipped), labels and predictions."""
    g = torch.Generator().manual_seed(seed)
    clean = torch.rand((n, *SHAPE), generator=g)
    adv = (clean + 0.05 * torch.randn((n, *SHAPE), generator=g)).clamp(0, 1)
    labels = torch.randint(0, 10, (n,), generator=g)
    adv_pred = torch.where(torch.rand(n, generator=g) < 0.5, labels, (labels + 1) % 10)
    return {
        "indices": torch.arange(100, 100 + n),
        "labels": labels,
        "adv": adv,
        "clean": clean,
        "clean_pred": labels.clone(),
        "adv_pred": adv_pred,
    }


def write(w, d, chunks=None):
    """Write the given chunks (default: all pending) of data d; returns how many were written."""
    chunks = w.pending_chunks() if chunks is None else chunks
    for c in chunks:
        w.write_chunk(c, **{k: v[c.start : c.stop] for k, v in d.items()})
    return len(chunks)


@pytest.fixture
def st(tmp_path):
    return AdvStore(tmp_path / "adv")


def finished(st, n=10, chunk_size=4, seed=0):
    """Write a complete set of n images; returns (key, spec, data)."""
    d = data(n, seed)
    spec = spec_for(indices=d["indices"])
    key = content_key(spec)
    with st.writer(key, spec, n=n, image_shape=SHAPE, chunk_size=chunk_size) as w:
        write(w, d)
        w.finish()
    return key, spec, d


# ---------------------------------------------------------------------------- keys


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
    monkeypatch.setattr(store_mod, "ATTACK_CODE_VERSION", store_mod.ATTACK_CODE_VERSION + 1)
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
    ],
)
def test_make_spec_rejects_bad_inputs(bad, match):
    with pytest.raises(ValueError, match=match):
        spec_for(**bad)


# ---------------------------------------------------------------------------- write and read


def test_round_trip_is_exact(st):
    n = 10
    d = data(n)
    # values float32 rounding would spoil if anything converted them: ends, subnormal, 1 - ulp
    d["adv"][0, 0, 0, :3] = torch.tensor([0.0, 1.0, 1e-40])
    d["adv"][1, 0, 0, 0] = float(np.nextafter(np.float32(1), np.float32(0)))
    spec = spec_for(indices=d["indices"])
    key = content_key(spec)
    with st.writer(key, spec, n=n, image_shape=SHAPE, chunk_size=4) as w:
        assert [(c.index, c.start, c.stop) for c in w.pending_chunks()] == [(0, 0, 4), (1, 4, 8), (2, 8, 10)]
        write(w, d)
        w.finish(timing={"seconds": 2.0})
    s = st.get(key)
    assert s is not None and s.key == key and s.path == st.root / f"{key}.h5"
    back = s.read_adv()
    assert back.dtype == np.float32
    assert np.array_equal(back.view(np.int32), d["adv"].numpy().view(np.int32))  # bit for bit
    for name in ("indices", "labels", "clean_pred", "adv_pred"):
        assert s.array(name).dtype == np.int64
        assert np.array_equal(s.array(name), d[name].numpy())
        assert torch.equal(s.tensor(name), d[name])
    assert s.spec == spec and s.n == n and s.image_shape == SHAPE
    assert s.success_rate == pytest.approx(float((d["adv_pred"] != d["labels"]).float().mean()))
    # caller's seconds win; images_per_s = 10 images / 2.0 s = 5
    assert s.timing["seconds"] == 2.0 and s.timing["images"] == 10 and s.timing["images_per_s"] == 5.0
    assert {"torch", "trendcli", "h5py", "numpy"} <= set(s.versions)
    assert s.created
    s.close()
    with h5py.File(st.path(key), "r") as f:
        assert f.attrs["format"] == FORMAT and f.attrs["key"] == key
        assert json.loads(f.attrs["spec"]) == spec
        assert "done" not in f
        assert f["adv"].chunks == (4, *SHAPE) and f["adv"].compression == store_mod.COMPRESSION
    assert not st.partial_path(key).exists()


def test_success_and_norms_by_hand(st):
    clean = torch.zeros(2, 1, 2, 2)
    clean[1] = 0.5
    adv = clean.clone()
    adv[0, 0, 0, 0], adv[0, 0, 1, 1] = 0.3, 0.4  # image 0: diff (0.3, 0, 0, 0.4)
    adv[1, 0, 1, 1] = 0.25  # image 1: diff (0, 0, 0, -0.25)
    # image 0: linf = 0.4, l2 = sqrt(0.09 + 0.16) = 0.5; image 1: linf = l2 = 0.25
    labels = torch.tensor([1, 2])
    adv_pred = torch.tensor([1, 0])  # image 0 still right, image 1 fooled -> success (F, T), rate 1/2
    idx = torch.tensor([7, 3])
    spec = spec_for(indices=idx)
    key = content_key(spec)
    with st.writer(key, spec, n=2, image_shape=(1, 2, 2)) as w:
        (c,) = w.pending_chunks()
        w.write_chunk(c, indices=idx, labels=labels, adv=adv, clean=clean, clean_pred=labels, adv_pred=adv_pred)
        s = w.finish()
    assert s.success.tolist() == [False, True]
    assert s.success_rate == 0.5
    assert s.linf.dtype == np.float32 and s.l2.dtype == np.float32
    assert s.linf.tolist() == pytest.approx([0.4, 0.25], rel=1e-6)
    assert s.l2.tolist() == pytest.approx([0.5, 0.25], rel=1e-6)
    s.close()


def test_iter_chunks_covers_everything_once_in_order(st, monkeypatch):
    key, _, d = finished(st, n=10, chunk_size=4)
    s = st.get(key)
    for bs, bounds in [
        (None, [(0, 4), (4, 8), (8, 10)]),
        (3, [(0, 3), (3, 6), (6, 9), (9, 10)]),
        (8, [(0, 8), (8, 10)]),
        (100, [(0, 10)]),
    ]:
        out = list(s.iter_chunks(bs))
        assert [(a, b) for a, b, *_ in out] == bounds
        assert torch.equal(torch.cat([x for _, _, x, _, _ in out]), d["adv"])
        assert torch.equal(torch.cat([y for _, _, _, y, _ in out]), d["labels"])
        assert torch.equal(torch.cat([i for *_, i in out]), d["indices"])
    # each HDF5 chunk of 4 images is read once even when batches (3) straddle chunks
    reads = []
    real = h5py.Dataset.__getitem__

    def spy(ds, sel):
        if ds.name == "/adv":
            reads.append((sel.start, sel.stop))
        return real(ds, sel)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    list(s.iter_chunks(3))
    assert reads == [(0, 4), (4, 8), (8, 10)]
    s.close()


def test_reading_a_fashion_mnist_sized_set_is_fast(st):
    n, shape = 10_000, (1, 28, 28)
    g = torch.Generator().manual_seed(0)
    clean = torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8).float() / 255
    adv = (clean + 8 / 255 * torch.randn((n, *shape), generator=g).sign()).clamp(0, 1)
    idx = torch.arange(n)
    labels = idx % 10
    spec = spec_for(indices=idx)
    key = content_key(spec)
    with st.writer(key, spec, n=n, image_shape=shape, chunk_size=256) as w:
        for c in w.pending_chunks():
            sl = slice(c.start, c.stop)
            w.write_chunk(c, indices=idx[sl], labels=labels[sl], adv=adv[sl], clean=clean[sl],
                          clean_pred=labels[sl], adv_pred=labels[sl])
        w.finish()
    s = st.get(key)
    t0 = time.perf_counter()
    total = sum(len(x) for _, _, x, _, _ in s.iter_chunks())
    seconds = time.perf_counter() - t0
    s.close()
    assert total == n
    assert seconds < 1.0, f"reading 10000 x 1 x 28 x 28 took {seconds:.2f} s"


def test_get_absent_list_and_remove(st):
    assert st.get("0" * 64) is None
    assert st.list() == {}
    k1, spec1, _ = finished(st, n=10)
    k2, spec2, _ = finished(st, n=6)
    assert st.list() == {k1: spec1, k2: spec2}
    assert st.remove(k1) is True
    assert st.get(k1) is None and st.remove(k1) is False
    assert list(st.list()) == [k2]


def test_keys_are_checked():
    with pytest.raises(ValueError, match="store key"):
        AdvStore("x").get("../etc/passwd")


def test_advset_opens_lazily_and_pickles(st):
    key, _, d = finished(st)
    s = st.get(key)
    assert s._file is None  # get checked the file and closed it again
    assert np.array_equal(s.labels, d["labels"].numpy())
    assert s._file is not None
    t = pickle.loads(pickle.dumps(s))
    assert t._file is None and np.array_equal(t.read_adv(), d["adv"].numpy())
    t.close()
    s.close()
    assert s._file is None


# ---------------------------------------------------------------------------- cache hits, atomicity, resume


def test_second_writer_on_finished_key_signals_already_complete(st):
    key, spec, d = finished(st)
    before = st.path(key).read_bytes()
    with st.writer(key, spec, n=10, image_shape=SHAPE, chunk_size=4) as w:
        assert w.already_complete and w.pending_chunks() == []
        with pytest.raises(RuntimeError, match="already complete"):
            w.write_chunk(0, **{k: v[:4] for k, v in d.items()})
        s = w.finish(timing={"seconds": 1.0})
    assert s.path == st.path(key)
    assert st.path(key).read_bytes() == before  # untouched


def test_exception_mid_write_leaves_no_final_file_and_resume_writes_only_pending(st):
    n = 10
    d = data(n)
    spec = spec_for(indices=d["indices"])
    key = content_key(spec)
    with pytest.raises(KeyboardInterrupt):
        with st.writer(key, spec, n=n, image_shape=SHAPE, chunk_size=3) as w:
            assert len(w.pending_chunks()) == 4  # ceil(10 / 3)
            write(w, d, w.pending_chunks()[:2])
            raise KeyboardInterrupt
    assert not st.path(key).exists()
    assert st.partial_path(key).exists()
    assert st.get(key) is None and st.list() == {}
    with st.writer(key, spec, n=n, image_shape=SHAPE, chunk_size=3) as w:
        assert w.resumed and w.restart_reason is None
        pending = w.pending_chunks()
        assert [(c.start, c.stop) for c in pending] == [(6, 9), (9, 10)]
        assert write(w, d) == 2
        s = w.finish()
    assert s.timing["images"] == 4 and s.timing["resumed"] is True  # 3 + 1 images this run
    assert np.array_equal(s.read_adv(), d["adv"].numpy())
    assert np.array_equal(s.success, (d["adv_pred"] != d["labels"]).numpy())
    assert not st.partial_path(key).exists()
    s.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_resume_after_the_writing_process_is_killed(st):
    n = 12
    d = data(n)
    spec = spec_for(indices=d["indices"])
    key = content_key(spec)
    pid = os.fork()
    if pid == 0:  # child: two chunks done, a third half-written, then die without closing
        try:
            w = st.writer(key, spec, n=n, image_shape=SHAPE, chunk_size=4).__enter__()
            write(w, d, w.pending_chunks()[:2])
            w._file["adv"][8:12] = np.full((4, *SHAPE), 0.123, np.float32)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert not st.path(key).exists()
    with st.writer(key, spec, n=n, image_shape=SHAPE, chunk_size=4) as w:
        assert [c.index for c in w.pending_chunks()] == [2]
        write(w, d)
        s = w.finish()
    assert np.array_equal(s.read_adv(), d["adv"].numpy())
    s.close()


def test_partial_with_foreign_spec_is_restarted(st):
    d = data(10)
    spec_a = spec_for(indices=d["indices"])
    spec_b = spec_for(indices=d["indices"], split="val")
    ka, kb = content_key(spec_a), content_key(spec_b)
    with pytest.raises(RuntimeError):
        with st.writer(ka, spec_a, n=10, image_shape=SHAPE, chunk_size=4) as w:
            write(w, d, w.pending_chunks()[:2])
            raise RuntimeError("stop")
    shutil.copy(st.partial_path(ka), st.partial_path(kb))
    with st.writer(kb, spec_b, n=10, image_shape=SHAPE, chunk_size=4) as w:
        assert not w.resumed and "different spec" in w.restart_reason
        assert len(w.pending_chunks()) == 3
        write(w, d)
        s = w.finish()
    assert s.spec == spec_b
    s.close()


def test_partial_with_other_layout_or_garbage_is_restarted(st):
    d = data(10)
    spec = spec_for(indices=d["indices"])
    key = content_key(spec)
    with pytest.raises(RuntimeError):
        with st.writer(key, spec, n=10, image_shape=SHAPE, chunk_size=4) as w:
            write(w, d, w.pending_chunks()[:1])
            raise RuntimeError("stop")
    with st.writer(key, spec, n=10, image_shape=SHAPE, chunk_size=5) as w:
        assert "chunk size" in w.restart_reason and len(w.pending_chunks()) == 2
    st.partial_path(key).write_bytes(os.urandom(3000))
    with st.writer(key, spec, n=10, image_shape=SHAPE, chunk_size=5) as w:
        assert "cannot be opened" in w.restart_reason and len(w.pending_chunks()) == 2
        write(w, d)
        w.finish()
    assert st.get(key) is not None


def test_damaged_chunk_in_a_resumed_partial_is_caught_at_finish(st):
    d = data(12)
    spec = spec_for(indices=d["indices"])
    key = content_key(spec)
    with pytest.raises(RuntimeError):
        with st.writer(key, spec, n=12, image_shape=SHAPE, chunk_size=4) as w:
            write(w, d, w.pending_chunks()[:2])
            raise RuntimeError("stop")
    with h5py.File(st.partial_path(key), "r") as f:
        info = f["adv"].id.get_chunk_info(0)  # where chunk 0's compressed bytes lie
    with open(st.partial_path(key), "r+b") as fh:
        fh.seek(info.byte_offset)
        fh.write(b"\xff" * info.size)
    with st.writer(key, spec, n=12, image_shape=SHAPE, chunk_size=4) as w:
        assert [c.index for c in w.pending_chunks()] == [2]
        write(w, d)
        with pytest.raises(StoreError, match="damaged"):
            w.finish()
    assert not st.path(key).exists() and not st.partial_path(key).exists()


def test_finished_but_not_renamed_partial_is_adopted(st):
    key, spec, _ = finished(st)
    os.replace(st.path(key), st.partial_path(key))  # as if killed between close and rename
    with st.writer(key, spec, n=10, image_shape=SHAPE, chunk_size=4) as w:
        assert w.already_complete and w.pending_chunks() == []
    assert st.path(key).exists() and not st.partial_path(key).exists()


def test_finish_refuses_missing_chunks(st):
    d = data(10)
    spec = spec_for(indices=d["indices"])
    key = content_key(spec)
    with st.writer(key, spec, n=10, image_shape=SHAPE, chunk_size=4) as w:
        write(w, d, w.pending_chunks()[:2])
        with pytest.raises(RuntimeError, match="1 of 3 chunks not written"):
            w.finish()
    assert not st.path(key).exists()


def test_finish_refuses_indices_that_differ_from_the_spec(st):
    d = data(10)
    spec = spec_for(indices=d["indices"])
    key = content_key(spec)
    d["indices"] = d["indices"].flip(0)
    with st.writer(key, spec, n=10, image_shape=SHAPE, chunk_size=4) as w:
        write(w, d)
        with pytest.raises(ValueError, match="indices written do not match"):
            w.finish()
    assert not st.path(key).exists() and not st.partial_path(key).exists()


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("adv", lambda d: d["adv"][:4] + 1.5, r"adv must lie in \[0, 1\]"),
        ("adv", lambda d: d["adv"][:4].clone().fill_(float("nan")), "NaN"),
        ("adv", lambda d: d["adv"][:3], r"expected shape \(4, 1, 2, 3\)"),
        ("adv", lambda d: (d["adv"][:4] * 255).to(torch.uint8), "floating point"),
        ("clean", lambda d: d["clean"][:4] - 2, r"clean must lie in \[0, 1\]"),
        ("labels", lambda d: d["labels"][:3], r"expected shape \(4,\)"),
        ("labels", lambda d: -d["labels"][:4] - 1, "non-negative"),
        ("adv_pred", lambda d: d["adv_pred"][:4].float(), "integers"),
    ],
)
def test_write_chunk_validates_inputs(st, field, value, match):
    d = data(10)
    spec = spec_for(indices=d["indices"])
    key = content_key(spec)
    with st.writer(key, spec, n=10, image_shape=SHAPE, chunk_size=4) as w:
        chunk = {k: v[:4] for k, v in d.items()}
        chunk[field] = value(d)
        with pytest.raises(ValueError, match=match):
            w.write_chunk(0, **chunk)
        assert len(w.pending_chunks()) == 3  # nothing recorded


def test_writer_validates_its_arguments(st):
    spec = spec_for()
    key = content_key(spec)
    with pytest.raises(ValueError, match="not content_key"):
        st.writer("f" * 64, spec, n=10, image_shape=SHAPE)
    with pytest.raises(ValueError, match="spec says 10"):
        st.writer(key, spec, n=9, image_shape=SHAPE)
    with pytest.raises(ValueError, match="image_shape"):
        st.writer(key, spec, n=10, image_shape=(2, 3))
    with pytest.raises(ValueError, match="chunk_size"):
        st.writer(key, spec, n=10, image_shape=SHAPE, chunk_size=0)
    d = data(10)
    with st.writer(key, spec, n=10, image_shape=SHAPE, chunk_size=4) as w:
        with pytest.raises(ValueError, match="does not match"):
            w.write_chunk(Chunk(0, 0, 3), **{k: v[:3] for k, v in d.items()})
        write(w, d, w.pending_chunks()[:1])
        with pytest.raises(ValueError, match="already written"):
            w.write_chunk(0, **{k: v[:4] for k, v in d.items()})


# ---------------------------------------------------------------------------- corrupt and foreign files


def _expect_store_error(st, key, match):
    with pytest.raises(StoreError, match=match) as exc:
        st.get(key)
    assert str(st.path(key)) in str(exc.value) and "--force" in str(exc.value)
    with pytest.raises(StoreError):
        st.list()


def test_random_bytes_give_store_error(st):
    key = content_key(spec_for())
    st.root.mkdir(parents=True)
    st.path(key).write_bytes(np.random.default_rng(0).bytes(4096))
    _expect_store_error(st, key, "not an HDF5 file")
    assert st.remove(key) and st.get(key) is None  # what --force does


def test_hdf5_without_datasets_gives_store_error(st):
    spec = spec_for()
    key = content_key(spec)
    st.root.mkdir(parents=True)
    with h5py.File(st.path(key), "w"):
        pass
    _expect_store_error(st, key, "no 'format' attribute")
    with h5py.File(st.path(key), "w") as f:
        f.attrs.update({"format": FORMAT, "key": key, "spec": json.dumps(spec)})
    _expect_store_error(st, key, "missing datasets indices, labels")


def test_renamed_file_of_another_key_gives_store_error(st):
    k1, _, _ = finished(st, n=10)
    k2 = content_key(spec_for(split="val"))
    os.replace(st.path(k1), st.path(k2))
    _expect_store_error(st, k2, "does not match the file name")


def test_edited_spec_or_format_gives_store_error(st):
    key, spec, _ = finished(st)
    with h5py.File(st.path(key), "r+") as f:
        f.attrs["spec"] = json.dumps({**spec, "split": "train"})
    _expect_store_error(st, key, "does not hash to its key")
    key2, _, _ = finished(st, n=6)
    with h5py.File(st.path(key2), "r+") as f:
        f.attrs["format"] = "trendcli-advset/0"
    with pytest.raises(StoreError, match="format is 'trendcli-advset/0'"):
        st.get(key2)


def test_dataset_of_wrong_shape_gives_store_error(st):
    key, _, _ = finished(st)
    with h5py.File(st.path(key), "r+") as f:
        del f["l2"]
        f.create_dataset("l2", data=np.zeros(9, np.float32))
    _expect_store_error(st, key, "'l2' must be float32")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
