"""Writing sets: cache hits, atomic finish, resume, validation, concurrent writers, a full disk (store/writer.py)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections import namedtuple
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from filelock import FileLock

from tests.adversarial.store.sets import SHAPE, data, finished, same_set, spec_for, write
from trendcli.adversarial.store import AdvStore, Chunk, content_key
from trendcli.adversarial.store import files as store_files
from trendcli.errors import StoreError

REPO = Path(__file__).resolve().parents[3]

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


_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from tests.adversarial.store.sets import SHAPE, data, spec_for, write
    from trendcli.adversarial.store import AdvStore, content_key

    root, ready, go = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    d = data(12)
    spec = spec_for(indices=d["indices"])
    key = content_key(spec)
    with AdvStore(root).writer(key, spec, n=12, image_shape=SHAPE, chunk_size=4) as w:
        pending = w.pending_chunks()
        write(w, d, pending[:1])
        ready.touch()  # holds the lock with one chunk written
        deadline = time.monotonic() + 60
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        write(w, d, pending[1:])
        w.finish()
    print("wrote", key)
    """
)


def test_second_writer_waits_for_the_first_then_reads_its_set(st, tmp_path):
    # A child process writes the set; this process asks for the same key while the child holds
    # the lock with one chunk of three in. HDF5 file locking is off, as on clusters.
    ready, go = tmp_path / "ready", tmp_path / "go"
    env = {**os.environ, "HDF5_USE_FILE_LOCKING": "FALSE", "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(st.root), str(ready), str(go)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "child never started writing"
            time.sleep(0.01)
        d = data(12)
        spec = spec_for(indices=d["indices"])
        key = content_key(spec)
        waits = []
        # on_wait runs once, when this writer finds the lock held; it lets the child go on
        with st.writer(key, spec, n=12, image_shape=SHAPE, chunk_size=4,
                       on_wait=lambda lock: (waits.append(lock), go.touch())) as w:
            assert waits == [st.lock_path(key)] and w.waited
            assert w.already_complete and w.pending_chunks() == []
            s = w.finish()
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        assert out.split() == ["wrote", key]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert np.array_equal(s.read_adv(), d["adv"].numpy())
    assert s.timing["images"] == 12  # every image written once, by the child
    s.close()


def test_waiting_writer_gives_up_after_its_timeout(st):
    d = data(10)
    spec = spec_for(indices=d["indices"])
    key = content_key(spec)
    st.root.mkdir(parents=True)
    other = FileLock(st.lock_path(key), thread_local=False)  # another holder: flock is per open file
    other.acquire()
    try:
        with pytest.raises(StoreError, match="still being written by another process after 0.2 s") as exc:
            with st.writer(key, spec, n=10, image_shape=SHAPE, timeout=0.2):
                pass
        assert str(st.partial_path(key)) in str(exc.value)
    finally:
        other.release()
    with st.writer(key, spec, n=10, image_shape=SHAPE, timeout=0.2) as w:  # free again
        write(w, d)
        w.finish()
    assert st.get(key) is not None


def fail_second_adv_write(exc):
    """A replacement for h5py.Dataset.__setitem__ that raises ``exc`` when chunk 2 of ``adv`` is written."""
    real, adv_writes = h5py.Dataset.__setitem__, []

    def setitem(ds, sel, value):
        if ds.name == "/adv":
            adv_writes.append(sel)
            if len(adv_writes) == 2:
                raise exc
        return real(ds, sel, value)

    return setitem


@pytest.mark.parametrize("exc", [
    OSError(errno.ENOSPC, "No space left on device"),
    # how h5py reports HDF5's failed write (a RuntimeError carrying the errno in its text)
    RuntimeError("Can't write data (file write failed: errno = 28, error message = 'No space left on device')"),
])
def test_no_space_mid_write_leaves_a_resumable_partial(st, tmp_path, monkeypatch, exc):
    d = data(12)
    spec = spec_for(indices=d["indices"])
    key = content_key(spec)
    with monkeypatch.context() as m:
        m.setattr(h5py.Dataset, "__setitem__", fail_second_adv_write(exc))
        with pytest.raises(StoreError) as err:
            with st.writer(key, spec, n=12, image_shape=SHAPE, chunk_size=4) as w:
                write(w, d)
    assert str(err.value) == f"no space left on device writing {st.partial_path(key)}; free space and rerun to resume"
    assert st.partial_path(key).exists() and not st.path(key).exists()
    with st.writer(key, spec, n=12, image_shape=SHAPE, chunk_size=4) as w:  # the rerun resumes
        assert w.resumed and [c.index for c in w.pending_chunks()] == [1, 2]
        write(w, d)
        resumed = w.finish()
    whole = finished(AdvStore(tmp_path / "uninterrupted"), n=12, chunk_size=4)[0]
    same_set(resumed, AdvStore(tmp_path / "uninterrupted").get(whole))


def test_too_little_free_space_is_refused_before_hdf5_writes(st, monkeypatch):
    # After HDF5 itself fails a write for want of space its handle cannot be closed cleanly,
    # so the writer checks free space first: 1 MiB margin + the chunk's raw bytes.
    d = data(12)
    spec = spec_for(indices=d["indices"])
    key = content_key(spec)
    usage = namedtuple("usage", "total used free")
    calls = []

    def disk_usage(path):
        calls.append(path)
        return usage(1 << 30, 1 << 30, (1 << 30) if len(calls) <= 2 else 1000)  # create, chunk 0; then full

    monkeypatch.setattr(store_files.shutil, "disk_usage", disk_usage)
    with pytest.raises(StoreError, match="no space left on device writing"):
        with st.writer(key, spec, n=12, image_shape=SHAPE, chunk_size=4) as w:
            write(w, d)
    assert calls == [st.root] * 3
    monkeypatch.setattr(store_files.shutil, "disk_usage", shutil.disk_usage)
    with st.writer(key, spec, n=12, image_shape=SHAPE, chunk_size=4) as w:
        assert [c.index for c in w.pending_chunks()] == [1, 2]
