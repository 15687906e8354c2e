"""Reading finished sets: round trips, chunked reads, checksums, damaged and foreign files (store/reader.py)."""

from __future__ import annotations

import json
import os
import pickle
import time

import h5py
import numpy as np
import pytest
import torch

from tests.adversarial.store.sets import SHAPE, data, finished, spec_for, write
from trendcli.adversarial import store as store_mod
from trendcli.adversarial.store import FORMAT, content_key
from trendcli.errors import StoreError

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


def _flip_bytes_in_chunk(path, dataset, chunk):
    """Change 4 bytes in the middle of one stored (compressed) chunk of ``dataset``."""
    with h5py.File(path, "r") as f:
        info = f[dataset].id.get_chunk_info(chunk)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        old = fh.read(4)
        fh.seek(info.byte_offset + info.size // 2)
        fh.write(bytes(b ^ 0x5A for b in old))  # not 0xFF: fletcher32 cannot tell 0x0000 from 0xFFFF


def test_every_dataset_carries_a_checksum(st):
    key, _, _ = finished(st)
    with h5py.File(st.path(key), "r") as f:
        assert f.attrs["format"] == FORMAT == "trendcli-advset/2"
        assert all(ds.fletcher32 for ds in f.values())
        assert f["adv"].compression == "gzip"  # checksum and gzip together


@pytest.mark.parametrize("dataset, read", [
    ("adv", lambda s: s.read_adv()),
    ("adv", lambda s: list(s.iter_chunks())),
    ("labels", lambda s: s.labels),
])
def test_flipped_bytes_fail_the_checksum_with_a_store_error(st, dataset, read):
    key, _, _ = finished(st, n=12, chunk_size=4)
    _flip_bytes_in_chunk(st.path(key), dataset, 1 if dataset == "adv" else 0)
    s = st.get(key)  # spec, key and index list are intact
    with pytest.raises(StoreError, match="fails its checksum") as exc:
        read(s)
    msg = str(exc.value)
    assert str(st.path(key)) in msg and "force=True" in msg and "--force" in msg
    s.close()
    assert st.remove(key) and st.get(key) is None  # what force=True does


def test_damaged_index_list_is_caught_when_the_set_is_opened(st):
    key, _, _ = finished(st)
    _flip_bytes_in_chunk(st.path(key), "indices", 0)
    with pytest.raises(StoreError, match="fails its checksum"):
        st.get(key)


def test_version_1_files_without_checksums_stay_readable(st):
    d = data(6)
    spec = {**spec_for(indices=d["indices"]), "format": "trendcli-advset/1"}
    spec.pop("layout")  # version 1 specs had no layout
    key = content_key(spec)
    st.root.mkdir(parents=True)
    adv, clean = d["adv"].numpy(), d["clean"].numpy()
    diff = (adv - clean).reshape(6, -1)
    with h5py.File(st.path(key), "w") as f:  # what version 1 wrote: no fletcher32
        f.attrs.update({"format": "trendcli-advset/1", "key": key, "spec": json.dumps(spec)})
        for name in ("indices", "labels", "clean_pred", "adv_pred"):
            f[name] = d[name].numpy().astype(np.int64)
        f["success"] = (d["adv_pred"] != d["labels"]).numpy()
        f["linf"] = np.abs(diff).max(1).astype(np.float32)
        f["l2"] = np.sqrt((diff.astype(np.float64) ** 2).sum(1)).astype(np.float32)
        f.create_dataset("adv", data=adv, chunks=(3, *SHAPE), compression="gzip")
    s = st.get(key)
    assert s.format == "trendcli-advset/1" and s.spec == spec
    assert np.array_equal(s.read_adv(), adv) and np.array_equal(s.labels, d["labels"].numpy())
    assert st.list() == {key: spec}
    s.close()
