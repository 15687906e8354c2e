"""Writing one adversarial set: chunked, resumable, atomic, one writer per key at a time.

``AdvStore.writer`` writes ``<key>.partial.h5``, records each finished chunk in a bool dataset
``done``, and ``finish`` renames the file to ``<key>.h5`` (os.replace) only when every chunk is
in, so a file with the final name is always complete. A lock file ``<key>.lock`` beside it
(``filelock``: flock where the file system has it, a lock file's existence where it does not)
makes a second writer of the same key wait for the first and then find the finished set; it
does not rely on HDF5's own file locking, which clusters switch off. Every dataset carries a
fletcher32 checksum (applied after gzip, per HDF5 chunk). Free space is checked before each
chunk: a full disk stops the write with a StoreError and leaves the partial file resumable.
"""

from __future__ import annotations

import hashlib
import os
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
import torch
from filelock import FileLock, Timeout

from trendcli.adversarial.store.files import check_space, fsync, open_h5, write_failure
from trendcli.adversarial.store.keys import (
    FIELDS,
    FORMAT,
    PARTIAL_FORMAT,
    canonical_json,
    check_key,
    content_key,
    images,
    int_vector,
    perturbation_norms,
    plain,
)
from trendcli.adversarial.store.reader import AdvSet, attr_str
from trendcli.errors import StoreError

if TYPE_CHECKING:
    from trendcli.adversarial.store.directory import AdvStore

DEFAULT_CHUNK_SIZE = 256
# Measured on 10000 x 1 x 28 x 28 float32 (Fashion-MNIST + simulated PGD-40, eps 8/255, and
# a continuous CW-like perturbation), 256 images per chunk, 2 shared CPU cores:
#   none 30.6 MiB; lzf 15.3/25.1 MiB, write 0.11-0.15 s; lzf+shuffle 22.0/25.1 MiB;
#   gzip-1 10.7/22.6 MiB, write 0.26-0.56 s, read 0.07-0.11 s; gzip-1+shuffle 18.6/22.4 MiB;
#   gzip-4 10.0/22.0 MiB, write 0.38-0.70 s.
# Byte shuffle hurts here: PGD output repeats exact float32 values (x +- eps, 0, 1), which
# deflate matches as whole 4-byte words. gzip-1 is ~30% smaller than lzf on PGD sets, costs
# tens of microseconds per image (nothing beside the attack), and every HDF5 tool reads it.
COMPRESSION = "gzip"
COMPRESSION_LEVEL = 1
SHUFFLE = False
#: fletcher32 on every dataset: 4 bytes per HDF5 chunk, checked on every read.
CHECKSUM = True
# HDF5 keeps attributes in the object header, limited to 64 KiB.
_MAX_SPEC_BYTES = 60_000


def versions() -> dict[str, str]:
    """The library versions recorded in a set."""
    from trendcli import __version__

    return {
        "trendcli": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "python": platform.python_version(),
    }


@dataclass(frozen=True)
class Chunk:
    """One unit of work for a writer: images [start, stop) of the set."""

    index: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        """Number of images in the chunk."""
        return self.stop - self.start


class AdvSetWriter:
    """Writes one adversarial set chunk by chunk; use as a context manager (``AdvStore.writer``).

    If the set is already complete, ``already_complete`` is True, ``pending_chunks()`` is
    empty and ``finish()`` returns the existing set unchanged (so a second run is a no-op).
    While another process writes the same key, entering waits for it (``on_wait(lock_path)``
    is called once first; ``timeout`` seconds at most, None: no limit) and then finds the
    finished set, or resumes what it left. A partial file from an interrupted run with the same
    key and chunk size is resumed (``resumed``); one that cannot be opened or does not match is
    discarded and ``restart_reason`` says why. OSErrors (a full disk, a read-only store)
    surface as StoreError; the partial file stays for the next run to resume.
    """

    def __init__(
        self,
        store: AdvStore,
        key: str,
        spec: Mapping[str, Any],
        n: int,
        image_shape: tuple[int, int, int],
        chunk_size: int,
        timeout: float | None = None,
        on_wait: Callable[[Path], None] | None = None,
    ):
        self.store = store
        self.key = check_key(key)
        self.spec, self._spec_json = _checked_spec(spec, key)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        if "n" in self.spec and self.spec["n"] != n:
            raise ValueError(f"n={n} but the spec says {self.spec['n']} images")
        shape = tuple(image_shape)
        if len(shape) != 3 or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in shape):
            raise ValueError(f"image_shape must be (C, H, W) of positive ints, got {image_shape!r}")
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        if timeout is not None and not timeout >= 0:
            raise ValueError(f"timeout must be >= 0 seconds or None, got {timeout!r}")
        self.n = int(n)
        self.image_shape: tuple[int, int, int] = tuple(int(s) for s in shape)  # type: ignore[assignment]
        self.chunk_size = min(int(chunk_size), self.n)
        self.n_chunks = -(-self.n // self.chunk_size)
        self.path = store.path(key)
        self.partial_path = store.partial_path(key)
        self.lock_path = store.lock_path(key)
        self.timeout = timeout
        self.on_wait = on_wait
        self.already_complete = False
        self.resumed = False
        self.waited = False
        self.restart_reason: str | None = None
        self._file: h5py.File | None = None
        self._lock: FileLock | None = None
        self._done = np.zeros(self.n_chunks, dtype=bool)
        self._written = 0
        self._t0 = 0.0
        self._entered = False
        self._finished = False

    # -- lifecycle

    def __enter__(self) -> AdvSetWriter:
        if self._entered:
            raise RuntimeError("a writer can be entered only once")
        self._entered = True
        self._t0 = time.perf_counter()
        if self.store.get(self.key) is not None:  # validates; a damaged set raises StoreError
            self.already_complete = True  # needs no lock: a read-only store serves it
            return self
        self.store.ensure_root()
        self._acquire()
        try:
            self._open_partial()
        except BaseException:
            self.close()
            raise
        return self

    def _open_partial(self) -> None:
        """With the lock held: find the set finished meanwhile, resume the partial, or start one."""
        if self.store.get(self.key) is not None:  # the writer we waited for finished it
            self.already_complete = True
            self._release()
            return
        if self.partial_path.is_dir():
            raise StoreError(f"{self.partial_path} is a directory where the store writes a file; remove or rename it")
        try:
            if self.partial_path.exists():
                self._file = self._resume()
                if self.already_complete:
                    self._release()
                    return
            if self._file is None:
                check_space(self.partial_path, 0)
                self._file = self._create()
        except (OSError, RuntimeError) as exc:  # h5py reports failed HDF5 writes as RuntimeError
            raise write_failure(exc, self.partial_path) from exc

    def _acquire(self) -> None:
        """Take ``<key>.lock``, waiting for another writer of the key to finish first."""
        lock = self.store.lock(self.key)
        try:
            try:
                lock.acquire(timeout=0)
            except Timeout:
                self.waited = True
                if self.on_wait is not None:
                    self.on_wait(self.lock_path)
                lock.acquire(timeout=-1 if self.timeout is None else self.timeout)
        except Timeout:
            raise StoreError(
                f"{self.partial_path} is still being written by another process after {self.timeout} s "
                f"(lock {self.lock_path}); wait for it, or stop it and rerun to resume"
            ) from None
        except OSError as exc:
            raise write_failure(exc, self.lock_path) from exc
        self._lock = lock

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the partial file and release the lock; finished chunks stay for the next writer."""
        try:
            if self._file is not None:
                f, self._file = self._file, None
                f.close()
        finally:
            self._release()

    def _abandon(self) -> None:
        """Close after a failed write, ignoring a second failure (a full disk fails the close too)."""
        try:
            self.close()
        except (OSError, RuntimeError):
            self._file = None
            self._release()

    def _resume(self) -> h5py.File | None:
        """Open the partial for appending, or None (after deleting it) when it cannot be used."""
        try:
            f = open_h5(self.partial_path, "r+")
        except PermissionError:
            raise
        except OSError as exc:
            return self._discard(f"cannot be opened ({exc})")
        try:
            reason = self._partial_mismatch(f)
            if reason is None:
                self._done = np.asarray(f["done"][:], dtype=bool)
        except Exception as exc:  # damaged objects surface as OSError/KeyError/ValueError
            reason = f"unreadable ({type(exc).__name__}: {exc})"
        if reason is None:
            self.resumed = bool(self._done.any())
            return f
        f.close()
        if reason == "complete":
            # The previous run died between closing the finished file and renaming it.
            try:
                AdvSet(self.partial_path, self.key)._open_checked().close()
            except StoreError as exc:
                return self._discard(f"finished but damaged ({exc})")
            os.replace(self.partial_path, self.path)
            self.already_complete = True
            return None
        return self._discard(reason)

    def _partial_mismatch(self, f: h5py.File) -> str | None:
        """Why the partial cannot be resumed, "complete" if it is a finished set, or None."""
        fmt = attr_str(f, "format")
        if attr_str(f, "key") != self.key or attr_str(f, "spec") != self._spec_json:
            return "it was written for a different spec"
        if fmt == FORMAT:
            return "complete"
        if fmt != PARTIAL_FORMAT:
            return f"format {fmt!r} is not {PARTIAL_FORMAT!r}"
        if int(f.attrs.get("chunk_size", -1)) != self.chunk_size:
            return f"chunk size {f.attrs.get('chunk_size')} differs from {self.chunk_size}"
        if f["adv"].shape != (self.n, *self.image_shape):
            return f"image array shape {f['adv'].shape} differs from {(self.n, *self.image_shape)}"
        if f["done"].shape != (self.n_chunks,) or any(f[name].shape != (self.n,) for name in FIELDS):
            return "per-image datasets have the wrong length"
        return None

    def _discard(self, reason: str) -> None:
        self.restart_reason = f"{self.partial_path.name}: {reason}; restarted"
        self.partial_path.unlink(missing_ok=True)
        self._done[:] = False
        return None

    def _create(self) -> h5py.File:
        f = open_h5(self.partial_path, "w")
        try:
            f.attrs["format"] = PARTIAL_FORMAT
            f.attrs["key"] = self.key
            f.attrs["spec"] = self._spec_json
            f.attrs["chunk_size"] = self.chunk_size
            for name, dtype in FIELDS.items():
                f.create_dataset(name, shape=(self.n,), dtype=dtype, fletcher32=CHECKSUM)
            f.create_dataset(
                "adv",
                shape=(self.n, *self.image_shape),
                dtype=np.float32,
                chunks=(self.chunk_size, *self.image_shape),
                compression=COMPRESSION,
                compression_opts=COMPRESSION_LEVEL,
                shuffle=SHUFFLE,
                fletcher32=CHECKSUM,
            )
            f.create_dataset("done", data=np.zeros(self.n_chunks, dtype=bool), fletcher32=CHECKSUM)
            f.flush()
        except BaseException:
            f.close()
            raise
        return f

    # -- chunks

    def chunk(self, index: int) -> Chunk:
        """Chunk ``index``: images [index * chunk_size, min(n, (index + 1) * chunk_size))."""
        if not 0 <= index < self.n_chunks:
            raise ValueError(f"chunk index {index} out of range [0, {self.n_chunks})")
        start = index * self.chunk_size
        return Chunk(index, start, min(self.n, start + self.chunk_size))

    def pending_chunks(self) -> list[Chunk]:
        """The chunks not written yet, in order (empty when the set is complete)."""
        if self.already_complete:
            return []
        return [self.chunk(i) for i in np.flatnonzero(~self._done).tolist()]

    def write_chunk(
        self,
        chunk: Chunk | int,
        *,
        indices: Any,
        labels: Any,
        adv: Any,
        clean: Any,
        clean_pred: Any,
        adv_pred: Any,
        loss_curve: Any = None,
    ) -> None:
        """Validate and store one chunk; success, linf and l2 are computed from adv vs clean.

        success = adv_pred != labels; linf = max|adv - clean|; l2 = sqrt(sum (adv - clean)^2),
        per image over C, H, W. Images must be floating point in [0, 1] and are stored as
        float32; indices, labels and predictions non-negative integers. ``loss_curve``: the
        attack's loss per iteration on this chunk (APGD's ``last_loss_curve``), kept as row
        ``chunk.index`` of the dataset ``loss_curve`` [n_chunks, L] (NaN where a chunk has none).
        """
        f = self._writable()
        c = self.chunk(int(chunk) if isinstance(chunk, (int, np.integer)) else chunk.index)
        if isinstance(chunk, Chunk) and chunk != c:
            raise ValueError(f"{chunk} does not match this writer's layout ({c})")
        if self._done[c.index]:
            raise ValueError(f"chunk {c.index} is already written")
        m = c.size
        shape = (m, *self.image_shape)
        arrays = {
            "indices": int_vector("indices", indices, m),
            "labels": int_vector("labels", labels, m),
            "clean_pred": int_vector("clean_pred", clean_pred, m),
            "adv_pred": int_vector("adv_pred", adv_pred, m),
        }
        adv_a = images("adv", adv, shape)
        clean_a = images("clean", clean, shape)
        arrays["success"] = arrays["adv_pred"] != arrays["labels"]
        arrays["linf"], arrays["l2"] = perturbation_norms(adv_a, clean_a)
        curve = _curve(loss_curve)
        try:
            check_space(self.partial_path, adv_a.nbytes + sum(a.nbytes for a in arrays.values()))
            if curve is not None:
                self._store_curve(f, c.index, curve)
            self._store(f, c, adv_a, arrays)
        except (OSError, RuntimeError) as exc:  # h5py reports failed HDF5 writes as RuntimeError
            self._abandon()
            raise write_failure(exc, self.partial_path) from exc
        self._done[c.index] = True
        self._written += m

    def _store_curve(self, f: h5py.File, index: int, curve: np.ndarray) -> None:
        """Row ``index`` of ``loss_curve`` (created NaN-filled on the first chunk that has one)."""
        if "loss_curve" not in f:
            f.create_dataset("loss_curve", data=np.full((self.n_chunks, curve.size), np.nan, np.float32))
        ds = f["loss_curve"]
        if ds.shape[1] != curve.size:
            raise ValueError(f"loss_curve has {curve.size} values, earlier chunks {ds.shape[1]}")
        ds[index] = curve

    @staticmethod
    def _store(f: h5py.File, c: Chunk, adv: np.ndarray, arrays: dict[str, np.ndarray]) -> None:
        sl = slice(c.start, c.stop)
        f["adv"][sl] = adv
        for name, a in arrays.items():
            f[name][sl] = a
        # Data reach the file before the chunk is marked done, so `done` never overstates.
        f.flush()
        f["done"][c.index] = True
        f.flush()

    def _writable(self) -> h5py.File:
        if self.already_complete:
            raise RuntimeError(f"set {self.key} is already complete; nothing to write")
        if self._finished:
            raise RuntimeError("writer already finished")
        if self._file is None:
            raise RuntimeError("use the writer as a context manager: with store.writer(...) as w")
        return self._file

    def finish(self, timing: Mapping[str, Any] | None = None) -> AdvSet:
        """Check that every chunk is in, write the attributes, and rename to ``<key>.h5``.

        ``timing`` (e.g. {"seconds": attack time}) is merged over the writer's own
        measurement (wall seconds since entering, images written in this run, images_per_s).
        Returns the finished set (not yet opened).
        """
        if self.already_complete:
            self._finished = True
            return AdvSet(self.path, self.key)
        f = self._writable()
        missing = np.flatnonzero(~self._done)
        if missing.size:
            raise RuntimeError(
                f"{missing.size} of {self.n_chunks} chunks not written (first: {int(missing[0])}); "
                "write every pending chunk before finish()"
            )
        self._check_written(f)
        try:
            check_space(self.partial_path, 0)
            self._seal(f, timing)
        except (OSError, RuntimeError) as exc:
            self._abandon()
            raise write_failure(exc, self.partial_path) from exc
        self._finished = True
        return AdvSet(self.path, self.key)

    def _check_written(self, f: h5py.File) -> None:
        """The indices match the spec; after a resume, every chunk reads back (checksums hold)."""
        want = self.spec.get("indices_sha256")
        if want is not None:
            got = hashlib.sha256(np.ascontiguousarray(f["indices"][:], dtype="<i8").tobytes()).hexdigest()
            if got != want:
                self._drop_partial()
                raise ValueError(
                    f"the indices written do not match the spec's index list; {self.partial_path.name} removed"
                )
        if not self.resumed:
            return
        # A run that was killed may have left damaged chunks that `done` claims; read all once.
        try:
            for name in FIELDS:
                f[name][:]
            for s in range(0, self.n, self.chunk_size):
                f["adv"][s : s + self.chunk_size]
        except OSError as exc:
            self._drop_partial()
            raise StoreError(
                f"{self.partial_path}: a resumed chunk is damaged ({exc}); the partial file was removed, "
                "rerun to start over"
            ) from exc

    def _drop_partial(self) -> None:
        self._abandon()
        self.partial_path.unlink(missing_ok=True)

    def _seal(self, f: h5py.File, timing: Mapping[str, Any] | None) -> None:
        """Attributes, format last, close, fsync, rename to the final name, release the lock."""
        seconds = time.perf_counter() - self._t0
        t: dict[str, Any] = {"seconds": seconds, "images": self._written, "resumed": self.resumed}
        if timing:
            t.update(plain(dict(timing), "timing"))
        if "images_per_s" not in (timing or {}):
            t["images_per_s"] = t["images"] / t["seconds"] if t["seconds"] else None
        f.attrs["spec"] = self._spec_json
        f.attrs["key"] = self.key
        f.attrs["versions"] = canonical_json(versions())
        f.attrs["timing"] = canonical_json(t)
        f.attrs["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        # `done` goes only now: a full disk above leaves a partial that still resumes.
        del f["done"]
        f.attrs["format"] = FORMAT  # last: until here the file reads as partial
        self._file = None
        f.close()
        fsync(self.partial_path)
        os.replace(self.partial_path, self.path)
        fsync(self.path.parent)
        self._release()


def _curve(values: Any) -> np.ndarray | None:
    """A loss curve as float32 [L]; None for None or an empty one."""
    if values is None:
        return None
    a = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float32).ravel()
    return a if a.size else None


def _checked_spec(spec: Mapping[str, Any], key: str) -> tuple[dict, str]:
    """The spec as a dict and its canonical JSON, checked against ``key`` and the attribute limit."""
    if not isinstance(spec, Mapping):
        raise ValueError(f"spec must be a dict, got {type(spec).__name__}")
    spec = dict(spec)
    spec_json = canonical_json(spec)
    if len(spec_json) > _MAX_SPEC_BYTES:
        raise ValueError(f"spec JSON is {len(spec_json)} bytes; keep it under {_MAX_SPEC_BYTES}")
    if content_key(spec) != key:
        raise ValueError(f"key {key} is not content_key(spec) ({content_key(spec)})")
    return spec, spec_json
