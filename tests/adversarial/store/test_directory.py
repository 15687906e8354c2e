"""The store directory: lookup, listing, removal, hostile paths, read-only stores (store/directory.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.adversarial.store.sets import SHAPE, finished, spec_for
from trendcli.adversarial.store import AdvStore, content_key
from trendcli.errors import StoreError

def test_get_absent_list_and_remove(st):
    assert st.get("0" * 64) is None
    assert st.list() == {}
    k1, spec1, _ = finished(st, n=10)
    k2, spec2, _ = finished(st, n=6)
    assert st.list() == {k1: spec1, k2: spec2}
    assert st.remove(k1) is True
    assert st.get(k1) is None and st.remove(k1) is False
    assert list(st.list()) == [k2]


def test_remove_waits_for_a_writer_of_the_key(st):
    key, _, _ = finished(st)
    held = threading.Event()

    def writer_elsewhere():  # holds the key's lock for 0.3 s, as a writer in another process would
        with st.lock(key):
            held.set()
            time.sleep(0.3)

    thread = threading.Thread(target=writer_elsewhere)
    thread.start()
    held.wait(10)
    t0 = time.monotonic()
    try:
        assert st.remove(key)
    finally:
        thread.join()
    assert time.monotonic() - t0 >= 0.2 and st.get(key) is None


def test_a_regular_file_as_the_store_root(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("not a store\n")
    spec = spec_for()
    key = content_key(spec)
    for root, named in ((readme, f"store {readme} is a file"), (readme / "adv", f"{readme} (a folder above the store")):
        st = AdvStore(root)
        for call in (lambda: st.get(key), st.list, lambda: st.remove(key),
                     lambda: st.writer(key, spec, n=10, image_shape=SHAPE).__enter__()):
            with pytest.raises(StoreError) as exc:
                call()
            assert named in str(exc.value) and "pass a directory as the store (store=" in str(exc.value)
    assert readme.read_text() == "not a store\n"


def test_a_directory_where_the_set_file_should_be(st):
    spec = spec_for()
    key = content_key(spec)
    st.path(key).mkdir(parents=True)
    for call in (lambda: st.get(key), lambda: st.remove(key),
                 lambda: st.writer(key, spec, n=10, image_shape=SHAPE).__enter__(), st.list):
        with pytest.raises(StoreError, match="is a directory where the adversarial set file should be") as exc:
            call()
        assert str(st.path(key)) in str(exc.value) and "remove or rename it" in str(exc.value)
    st.path(key).rmdir()
    for path in (st.partial_path(key), st.lock_path(key)):  # the writer's own files
        if path.is_file():
            path.unlink()  # the lock file the first round left
        path.mkdir()
        with pytest.raises(StoreError, match="is a directory where the store writes a file") as exc:
            st.writer(key, spec, n=10, image_shape=SHAPE).__enter__()
        assert str(path) in str(exc.value)
        path.rmdir()


@contextlib.contextmanager
def read_only(path: Path):
    """Make a directory read-only: chmod for users, the immutable flag for root (which chmod cannot stop)."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        pytest.skip("running as root on a file system without chattr +i: cannot make a directory read-only")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_read_only_store_serves_finished_sets_and_refuses_new_ones(st):
    key, spec, d = finished(st)
    new = spec_for(split="val")
    with read_only(st.root):
        s = st.get(key)
        assert np.array_equal(s.read_adv(), d["adv"].numpy()) and list(st.list()) == [key]
        s.close()
        with st.writer(key, spec, n=10, image_shape=SHAPE, chunk_size=4) as w:  # a cache hit needs no lock
            assert w.already_complete
        with pytest.raises(StoreError) as exc:
            st.writer(content_key(new), new, n=10, image_shape=SHAPE).__enter__()
        msg = str(exc.value)
        assert f"make the store directory {st.root} writable or pass another store directory (store=...)" in msg
        with pytest.raises(StoreError, match="writable"):
            st.remove(key)
    assert st.get(key) is not None and not any(p.name.startswith(content_key(new)) for p in st.root.iterdir())


def test_store_below_a_read_only_directory_cannot_be_created(tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir()
    st = AdvStore(parent / "adv")
    spec = spec_for()
    with read_only(parent):
        assert st.get(content_key(spec)) is None and st.list() == {}
        with pytest.raises(StoreError, match=f"cannot create the store directory {st.root}"):
            st.writer(content_key(spec), spec, n=10, image_shape=SHAPE).__enter__()
