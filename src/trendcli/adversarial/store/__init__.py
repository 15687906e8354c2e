"""The adversarial-set store: one HDF5 file per set, named by the content key of its spec.

Only this module reads and writes adversarial sets. A set for N images
of shape [C, H, W] is one file ``<root>/<key>.h5`` holding flat datasets

    indices, labels, clean_pred, adv_pred   int64 [N]
    success                                 bool [N]   adv_pred != label (untargeted)
    linf, l2                                float32 [N] max|adv - clean|, ||adv - clean||_2
    adv                                     float32 [N, C, H, W] in [0, 1], chunked along N

and plain attributes ``format`` ("trendcli-advset/1"), ``key``, ``spec`` (canonical JSON),
``versions``, ``timing`` (JSON) and ``created`` (ISO 8601, UTC).

The key is sha256 over the spec's canonical JSON (sorted keys, no whitespace). The spec
(``make_spec``) names everything that decides the images: source weight hashes, attack and
parameters, dataset, split, the index list (by its hash) and ``ATTACK_CODE_VERSION``.

Writing is chunked, resumable and atomic: ``AdvStore.writer`` writes ``<key>.partial.h5``,
records each finished chunk in a bool dataset ``done``, and ``finish`` renames the file to
``<key>.h5`` (os.replace) only when every chunk is in. A file with the final name is always
complete.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from trendcli.errors import StoreError
from trendcli.registry import canonical

FORMAT = "trendcli-advset/1"
PARTIAL_FORMAT = "trendcli-advset-partial/1"
# Bump when attack code changes what an attack produces for the same spec: every key changes,
# so old sets are no longer found (and are regenerated) instead of being silently reused.
ATTACK_CODE_VERSION = 1
DEFAULT_ROOT = Path("runs/adv")
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

_KEY_RE = re.compile(r"^[0-9a-f]{64}$")
_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
# Per-image datasets besides ``adv``: name -> numpy dtype.
_FIELDS: dict[str, np.dtype] = {
    "indices": np.dtype(np.int64),
    "labels": np.dtype(np.int64),
    "clean_pred": np.dtype(np.int64),
    "adv_pred": np.dtype(np.int64),
    "success": np.dtype(np.bool_),
    "linf": np.dtype(np.float32),
    "l2": np.dtype(np.float32),
}
# HDF5 keeps attributes in the object header, limited to 64 KiB.
_MAX_SPEC_BYTES = 60_000


# ---------------------------------------------------------------------------- keys and specs


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the byte string a content key hashes."""
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"spec is not plain JSON (str keys; str, int, float, bool, None, lists): {exc}") from None


def content_key(spec: Mapping[str, Any]) -> str:
    """sha256 (hex) of the spec's canonical JSON; the file name of its adversarial set."""
    if not isinstance(spec, Mapping):
        raise ValueError(f"spec must be a dict, got {type(spec).__name__}")
    return hashlib.sha256(canonical_json(dict(spec)).encode("ascii")).hexdigest()


def indices_sha256(indices: torch.Tensor | np.ndarray | list[int]) -> str:
    """sha256 (hex) of the index list as little-endian int64 bytes."""
    return hashlib.sha256(_index_array(indices).tobytes()).hexdigest()


def make_spec(
    *,
    weights_sha256: list[str],
    attack: str,
    params: dict,
    dataset: str,
    split: str,
    indices: torch.Tensor | np.ndarray,
    extra: dict | None = None,
) -> dict:
    """The spec of an adversarial set: everything that decides its images, as plain JSON.

    ``weights_sha256`` lists the source's weight hashes (one model, or K ensemble members in
    order; order matters). ``params`` holds every attack parameter; tuples become lists and
    numpy/torch scalars Python numbers, so ``json.loads(canonical_json(spec)) == spec``.
    The index list enters by its hash and length. ``extra`` is for anything else that
    changes the result (e.g. the ensemble's tie-break rule).
    """
    if isinstance(weights_sha256, str) or not isinstance(weights_sha256, (list, tuple)):
        raise ValueError("weights_sha256 must be a list of sha256 hex strings (one per source model)")
    if not weights_sha256:
        raise ValueError("weights_sha256 is empty; give the source model's weight hash")
    hashes = []
    for h in weights_sha256:
        if not isinstance(h, str) or not _SHA256_RE.match(h):
            raise ValueError(f"weights_sha256 entry {h!r} is not a sha256 hex digest (64 hex digits)")
        hashes.append(h.lower())
    for name, value in (("attack", attack), ("dataset", dataset), ("split", split)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a dict, got {type(params).__name__}")
    if extra is not None and not isinstance(extra, Mapping):
        raise ValueError(f"extra must be a dict or None, got {type(extra).__name__}")
    idx = _index_array(indices)
    return {
        "format": FORMAT,
        "attack_code_version": ATTACK_CODE_VERSION,
        "weights_sha256": hashes,
        "attack": canonical(attack),
        "params": _plain(params, "params"),
        "dataset": canonical(dataset),
        "split": split.strip(),
        "n": int(idx.size),
        "indices_sha256": hashlib.sha256(idx.tobytes()).hexdigest(),
        "extra": _plain(extra or {}, "extra"),
    }


def _plain(value: Any, where: str) -> Any:
    """``value`` as plain JSON types (tuples -> lists, numpy/torch scalars -> numbers)."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value}; spec values must be finite")
        return value
    if isinstance(value, np.generic):
        return _plain(value.item(), where)
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.ndim == 0:
        return _plain(value.item(), where)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{where} has a non-string key {k!r}; spec keys must be strings")
            out[k] = _plain(v, f"{where}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise ValueError(f"{where} has type {type(value).__name__}; spec values must be plain JSON")


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise ValueError(f"{key!r} is not a store key (64 lowercase hex digits from content_key)")
    return key


# ---------------------------------------------------------------------------- array checks


def _numpy(name: str, value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach()
        if value.dtype == torch.bfloat16:
            value = value.float()
        return value.cpu().numpy()
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (list, tuple)):
        return np.asarray(value)
    raise ValueError(f"{name} must be a torch.Tensor or numpy array, got {type(value).__name__}")


def _index_array(indices: Any) -> np.ndarray:
    """The index list as a contiguous little-endian int64 vector (non-negative, non-empty)."""
    a = _numpy("indices", indices)
    if a.ndim != 1:
        raise ValueError(f"indices must be 1-D, got shape {tuple(a.shape)}")
    if a.size == 0:
        raise ValueError("indices is empty; an adversarial set needs at least one image")
    if a.dtype.kind not in "iu":
        raise ValueError(f"indices must be integers, got dtype {a.dtype}")
    if a.min() < 0:
        raise ValueError(f"indices must be non-negative, found {int(a.min())}")
    return np.ascontiguousarray(a, dtype="<i8")


def _int_vector(name: str, value: Any, m: int) -> np.ndarray:
    a = _numpy(name, value)
    if a.shape != (m,):
        raise ValueError(f"{name}: expected shape ({m},) for this chunk, got {tuple(a.shape)}")
    if a.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integers, got dtype {a.dtype}")
    if m and a.min() < 0:
        raise ValueError(f"{name} must be non-negative, found {int(a.min())}")
    return a.astype(np.int64, copy=False)


def _images(name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    a = _numpy(name, value)
    if a.shape != shape:
        raise ValueError(f"{name}: expected shape {shape} for this chunk, got {tuple(a.shape)}")
    if a.dtype.kind != "f":
        raise ValueError(f"{name} must be floating point in [0, 1], got dtype {a.dtype}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    lo, hi = float(a.min()), float(a.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"{name} must lie in [0, 1]; found values in [{lo}, {hi}]")
    return a


def perturbation_norms(adv: np.ndarray, clean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image max|adv - clean| and sqrt(sum (adv - clean)^2) over C, H, W, as float32."""
    d = adv.reshape(len(adv), -1).astype(np.float64) - clean.reshape(len(clean), -1)
    linf = np.abs(d).max(axis=1)
    l2 = np.sqrt(np.einsum("ij,ij->i", d, d))
    return linf.astype(np.float32), l2.astype(np.float32)


# ---------------------------------------------------------------------------- reading


def _versions() -> dict[str, str]:
    from trendcli import __version__

    return {
        "trendcli": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "python": platform.python_version(),
    }


def _attr_str(f: h5py.File, name: str) -> str | None:
    v = f.attrs.get(name)
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    return v if isinstance(v, str) else None


class AdvSet:
    """A finished adversarial set; opens its file on first access, ``close()`` releases it.

    Arrays (``indices``, ``labels``, ``clean_pred``, ``adv_pred``, ``success``, ``linf``,
    ``l2``) are read-only numpy vectors read once; ``tensor(name)`` gives a torch copy.
    The images are read with ``iter_chunks`` or ``read_adv``.
    """

    def __init__(self, path: Path | str, key: str | None = None):
        self.path = Path(path)
        self.key = key if key is not None else self.path.name.removesuffix(".h5")
        self._file: h5py.File | None = None
        self._spec: dict | None = None
        self._attrs: dict[str, Any] = {}
        self._arrays: dict[str, np.ndarray] = {}

    def __repr__(self) -> str:
        return f"AdvSet({str(self.path)!r})"

    def __enter__(self) -> AdvSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict:
        # An open h5py handle cannot cross processes; the copy reopens lazily.
        return {**self.__dict__, "_file": None}

    def close(self) -> None:
        """Close the HDF5 handle (reopened on the next access)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _fail(self, what: str) -> StoreError:
        return StoreError(f"adversarial set {self.path}: {what}; rerun with --force to regenerate it")

    def _h5(self) -> h5py.File:
        if self._file is None:
            self._file = self._open_checked()
        return self._file

    def _open_checked(self) -> h5py.File:
        if not self.path.is_file():
            raise self._fail("file not found")
        if not h5py.is_hdf5(self.path):
            raise self._fail("not an HDF5 file")
        try:
            f = h5py.File(self.path, "r")
        except BlockingIOError as exc:
            raise StoreError(f"adversarial set {self.path} is locked by another process ({exc})") from exc
        except OSError as exc:
            raise self._fail(f"cannot be opened ({exc})") from exc
        try:
            self._check(f)
        except StoreError:
            f.close()
            raise
        except Exception as exc:  # h5py raises OSError/KeyError/TypeError on damaged objects
            f.close()
            raise self._fail(f"unreadable ({type(exc).__name__}: {exc})") from exc
        return f

    def _check(self, f: h5py.File) -> None:
        fmt = _attr_str(f, "format")
        if fmt is None:
            raise self._fail(f"no 'format' attribute; not a trendcli adversarial set ({FORMAT})")
        if fmt != FORMAT:
            raise self._fail(f"format is {fmt!r}, expected {FORMAT!r}")
        key = _attr_str(f, "key")
        if key != self.key:
            raise self._fail(f"its key attribute {key!r} does not match the file name (key {self.key})")
        spec_json = _attr_str(f, "spec")
        try:
            spec = json.loads(spec_json) if spec_json is not None else None
        except json.JSONDecodeError:
            spec = None
        if not isinstance(spec, dict):
            raise self._fail("missing or malformed 'spec' attribute")
        if content_key(spec) != self.key:
            raise self._fail("its spec does not hash to its key (edited or damaged)")
        missing = [name for name in (*_FIELDS, "adv") if not isinstance(f.get(name), h5py.Dataset)]
        if missing:
            raise self._fail(f"missing datasets {', '.join(missing)}")
        adv = f["adv"]
        n = adv.shape[0] if adv.ndim == 4 else -1
        if adv.ndim != 4 or adv.dtype != np.float32:
            raise self._fail(f"'adv' must be float32 [N, C, H, W], found {adv.dtype} {adv.shape}")
        for name, dtype in _FIELDS.items():
            ds = f[name]
            if ds.shape != (n,) or ds.dtype != dtype:
                raise self._fail(f"{name!r} must be {dtype} [{n}], found {ds.dtype} {ds.shape}")
        if "n" in spec and spec["n"] != n:
            raise self._fail(f"the spec says {spec['n']} images, the file holds {n}")
        indices = np.ascontiguousarray(f["indices"][:], dtype="<i8")
        want = spec.get("indices_sha256")
        if want is not None and hashlib.sha256(indices.tobytes()).hexdigest() != want:
            raise self._fail("its index list does not match the spec's indices_sha256")
        indices.flags.writeable = False
        self._spec = spec
        self._arrays["indices"] = indices

    # -- metadata

    @property
    def spec(self) -> dict:
        """The spec this set was made from (its content key hashes it)."""
        self._h5()
        assert self._spec is not None
        return self._spec

    def _json_attr(self, name: str) -> Any:
        if name not in self._attrs:
            raw = _attr_str(self._h5(), name)
            try:
                self._attrs[name] = json.loads(raw) if raw is not None else None
            except json.JSONDecodeError:
                self._attrs[name] = raw
        return self._attrs[name]

    @property
    def versions(self) -> dict | None:
        """Library versions that wrote the set (torch, trendcli, h5py, numpy, ...)."""
        return self._json_attr("versions")

    @property
    def timing(self) -> dict | None:
        """How long writing took: seconds, images, images_per_s, resumed."""
        return self._json_attr("timing")

    @property
    def created(self) -> str | None:
        """When the set was finished (ISO 8601, UTC)."""
        return _attr_str(self._h5(), "created")

    @property
    def n(self) -> int:
        """Number of images."""
        return int(self._h5()["adv"].shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of each image."""
        c, h, w = self._h5()["adv"].shape[1:]
        return int(c), int(h), int(w)

    @property
    def chunk_size(self) -> int:
        """Images per HDF5 chunk of ``adv`` (the natural read size)."""
        chunks = self._h5()["adv"].chunks
        return int(chunks[0]) if chunks else max(self.n, 1)

    # -- per-image vectors

    def array(self, name: str) -> np.ndarray:
        """A per-image dataset (indices, labels, clean_pred, adv_pred, success, linf, l2), read-only."""
        if name not in _FIELDS:
            raise ValueError(f"unknown array {name!r}; known: {', '.join(_FIELDS)}")
        if name not in self._arrays:
            a = self._h5()[name][:]
            a.flags.writeable = False
            self._arrays[name] = a
        return self._arrays[name]

    def tensor(self, name: str) -> torch.Tensor:
        """A per-image dataset as a (writable, CPU) torch tensor."""
        return torch.from_numpy(self.array(name).copy())

    @property
    def indices(self) -> np.ndarray:
        """Dataset indices of the images, int64 [N]."""
        return self.array("indices")

    @property
    def labels(self) -> np.ndarray:
        """True labels, int64 [N]."""
        return self.array("labels")

    @property
    def clean_pred(self) -> np.ndarray:
        """The source's prediction on the clean image (an ensemble source: its vote), int64 [N]."""
        return self.array("clean_pred")

    @property
    def adv_pred(self) -> np.ndarray:
        """The source's prediction on the adversarial image, int64 [N]."""
        return self.array("adv_pred")

    @property
    def success(self) -> np.ndarray:
        """adv_pred != label (untargeted success on the source), bool [N]."""
        return self.array("success")

    @property
    def linf(self) -> np.ndarray:
        """max |adv - clean| per image, float32 [N]."""
        return self.array("linf")

    @property
    def l2(self) -> np.ndarray:
        """||adv - clean||_2 per image, float32 [N]."""
        return self.array("l2")

    @property
    def success_rate(self) -> float:
        """Share of images whose adversarial version fools the source: mean(success)."""
        return float(self.success.mean())

    # -- images

    def read_adv(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Adversarial images [start, stop) as float32 [M, C, H, W]."""
        return self._h5()["adv"][start : self.n if stop is None else stop]

    def iter_chunks(
        self, batch_size: int | None = None
    ) -> Iterator[tuple[int, int, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Yield (start, stop, adv [B,C,H,W] float32, labels [B], indices [B]) in order, CPU tensors.

        Reads each HDF5 chunk once: whole storage chunks are read and re-cut into batches of
        ``batch_size`` (default: the storage chunk size); the last batch may be shorter.
        """
        n, cs = self.n, self.chunk_size
        bs = cs if batch_size is None else int(batch_size)
        if bs < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        labels, indices = self.labels, self.indices
        ds = self._h5()["adv"]
        step = -(-bs // cs) * cs  # whole storage chunks, at least one batch
        buf = np.empty((0, *ds.shape[1:]), dtype=np.float32)
        pos = 0
        for rs in range(0, n, step):
            block = ds[rs : min(rs + step, n)]
            buf = block if len(buf) == 0 else np.concatenate([buf, block])
            last = rs + step >= n
            while len(buf) >= bs or (last and len(buf)):
                take = min(bs, len(buf))
                yield (
                    pos,
                    pos + take,
                    torch.from_numpy(buf[:take]),
                    torch.from_numpy(labels[pos : pos + take].copy()),
                    torch.from_numpy(indices[pos : pos + take].copy()),
                )
                buf = buf[take:]
                pos += take


# ---------------------------------------------------------------------------- writing


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
    A partial file from an interrupted run with the same key and layout is resumed
    (``resumed``); one that cannot be opened or does not match is discarded and
    ``restart_reason`` says why.
    """

    def __init__(
        self,
        store: AdvStore,
        key: str,
        spec: Mapping[str, Any],
        n: int,
        image_shape: tuple[int, int, int],
        chunk_size: int,
    ):
        self.store = store
        self.key = _check_key(key)
        if not isinstance(spec, Mapping):
            raise ValueError(f"spec must be a dict, got {type(spec).__name__}")
        self.spec = dict(spec)
        self._spec_json = canonical_json(self.spec)
        if len(self._spec_json) > _MAX_SPEC_BYTES:
            raise ValueError(f"spec JSON is {len(self._spec_json)} bytes; keep it under {_MAX_SPEC_BYTES}")
        if content_key(self.spec) != key:
            raise ValueError(f"key {key} is not content_key(spec) ({content_key(self.spec)})")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        if "n" in self.spec and self.spec["n"] != n:
            raise ValueError(f"n={n} but the spec says {self.spec['n']} images")
        shape = tuple(image_shape)
        if len(shape) != 3 or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in shape):
            raise ValueError(f"image_shape must be (C, H, W) of positive ints, got {image_shape!r}")
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        self.n = int(n)
        self.image_shape: tuple[int, int, int] = tuple(int(s) for s in shape)  # type: ignore[assignment]
        self.chunk_size = min(int(chunk_size), self.n)
        self.n_chunks = -(-self.n // self.chunk_size)
        self.path = store.path(key)
        self.partial_path = store.partial_path(key)
        self.already_complete = False
        self.resumed = False
        self.restart_reason: str | None = None
        self._file: h5py.File | None = None
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
            self.already_complete = True
            return self
        self.store.root.mkdir(parents=True, exist_ok=True)
        if self.partial_path.exists():
            self._file = self._resume()
            if self.already_complete:
                return self
        if self._file is None:
            self._file = self._create()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the partial file; finished chunks stay for the next writer to resume."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _resume(self) -> h5py.File | None:
        """Open the partial for appending, or None (after deleting it) when it cannot be used."""
        try:
            f = h5py.File(self.partial_path, "r+")
        except BlockingIOError as exc:
            raise StoreError(
                f"{self.partial_path} is being written by another process; wait for it or stop it"
            ) from exc
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
        fmt = _attr_str(f, "format")
        if _attr_str(f, "key") != self.key or _attr_str(f, "spec") != self._spec_json:
            return "it was written for a different spec"
        if fmt == FORMAT:
            return "complete"
        if fmt != PARTIAL_FORMAT:
            return f"format {fmt!r} is not {PARTIAL_FORMAT!r}"
        if int(f.attrs.get("chunk_size", -1)) != self.chunk_size:
            return f"chunk size {f.attrs.get('chunk_size')} differs from {self.chunk_size}"
        if f["adv"].shape != (self.n, *self.image_shape):
            return f"image array shape {f['adv'].shape} differs from {(self.n, *self.image_shape)}"
        if f["done"].shape != (self.n_chunks,) or any(f[name].shape != (self.n,) for name in _FIELDS):
            return "per-image datasets have the wrong length"
        return None

    def _discard(self, reason: str) -> None:
        self.restart_reason = f"{self.partial_path.name}: {reason}; restarted"
        self.partial_path.unlink(missing_ok=True)
        self._done[:] = False
        return None

    def _create(self) -> h5py.File:
        try:
            f = h5py.File(self.partial_path, "w")
        except BlockingIOError as exc:
            raise StoreError(
                f"{self.partial_path} is being written by another process; wait for it or stop it"
            ) from exc
        f.attrs["format"] = PARTIAL_FORMAT
        f.attrs["key"] = self.key
        f.attrs["spec"] = self._spec_json
        f.attrs["chunk_size"] = self.chunk_size
        for name, dtype in _FIELDS.items():
            f.create_dataset(name, shape=(self.n,), dtype=dtype)
        f.create_dataset(
            "adv",
            shape=(self.n, *self.image_shape),
            dtype=np.float32,
            chunks=(self.chunk_size, *self.image_shape),
            compression=COMPRESSION,
            compression_opts=COMPRESSION_LEVEL,
            shuffle=SHUFFLE,
        )
        f.create_dataset("done", data=np.zeros(self.n_chunks, dtype=bool))
        f.flush()
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
    ) -> None:
        """Validate and store one chunk; success, linf and l2 are computed from adv vs clean.

        success = adv_pred != labels; linf = max|adv - clean|; l2 = sqrt(sum (adv - clean)^2),
        per image over C, H, W. Images must be floating point in [0, 1] and are stored as
        float32; indices, labels and predictions non-negative integers.
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
            "indices": _int_vector("indices", indices, m),
            "labels": _int_vector("labels", labels, m),
            "clean_pred": _int_vector("clean_pred", clean_pred, m),
            "adv_pred": _int_vector("adv_pred", adv_pred, m),
        }
        adv_a = _images("adv", adv, shape)
        clean_a = _images("clean", clean, shape)
        arrays["success"] = arrays["adv_pred"] != arrays["labels"]
        arrays["linf"], arrays["l2"] = perturbation_norms(adv_a, clean_a)
        sl = slice(c.start, c.stop)
        f["adv"][sl] = adv_a
        for name, a in arrays.items():
            f[name][sl] = a
        # Data reach the file before the chunk is marked done, so `done` never overstates.
        f.flush()
        f["done"][c.index] = True
        f.flush()
        self._done[c.index] = True
        self._written += m

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
        want = self.spec.get("indices_sha256")
        if want is not None:
            got = hashlib.sha256(np.ascontiguousarray(f["indices"][:], dtype="<i8").tobytes()).hexdigest()
            if got != want:
                self.close()
                self.partial_path.unlink(missing_ok=True)
                raise ValueError(
                    f"the indices written do not match the spec's index list; {self.partial_path.name} removed"
                )
        if self.resumed:
            # A run that was killed may have left damaged chunks that `done` claims; read all once.
            try:
                for s in range(0, self.n, self.chunk_size):
                    f["adv"][s : s + self.chunk_size]
            except OSError as exc:
                self.close()
                self.partial_path.unlink(missing_ok=True)
                raise StoreError(
                    f"{self.partial_path}: a resumed chunk is damaged ({exc}); the partial file was removed, "
                    "rerun to start over"
                ) from exc
        seconds = time.perf_counter() - self._t0
        t: dict[str, Any] = {"seconds": seconds, "images": self._written, "resumed": self.resumed}
        if timing:
            t.update(_plain(dict(timing), "timing"))
        if "images_per_s" not in (timing or {}):
            t["images_per_s"] = t["images"] / t["seconds"] if t["seconds"] else None
        del f["done"]
        f.attrs["spec"] = self._spec_json
        f.attrs["key"] = self.key
        f.attrs["versions"] = canonical_json(_versions())
        f.attrs["timing"] = canonical_json(t)
        f.attrs["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        f.attrs["format"] = FORMAT  # last: until here the file reads as partial
        self.close()
        _fsync(self.partial_path)
        os.replace(self.partial_path, self.path)
        _fsync(self.path.parent)
        self._finished = True
        return AdvSet(self.path, self.key)


def _fsync(path: Path) -> None:
    """Push a file (or, on POSIX, a directory entry) to disk so a rename survives a crash."""
    if path.is_dir() and os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- the store


class AdvStore:
    """A directory of adversarial sets, one ``<key>.h5`` per set (default ``runs/adv``)."""

    def __init__(self, root: Path | str = DEFAULT_ROOT):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"AdvStore({str(self.root)!r})"

    def path(self, key: str) -> Path:
        """Where the finished set for ``key`` lives."""
        return self.root / f"{_check_key(key)}.h5"

    def partial_path(self, key: str) -> Path:
        """Where an unfinished set for ``key`` is written."""
        return self.root / f"{_check_key(key)}.partial.h5"

    def get(self, key: str) -> AdvSet | None:
        """The finished set for ``key`` (checked, handle closed until used), or None if absent.

        Raises StoreError when the file is corrupt or foreign.
        """
        path = self.path(key)
        if not path.exists():
            return None
        s = AdvSet(path, key)
        s._h5()
        s.close()
        return s

    def writer(
        self,
        key: str,
        spec: Mapping[str, Any],
        *,
        n: int,
        image_shape: tuple[int, int, int],
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AdvSetWriter:
        """A resumable, atomic writer for the set ``key`` = content_key(spec); use with ``with``.

        On a key whose set is already finished the writer signals it instead of raising:
        ``already_complete`` is True, no chunks are pending and ``finish()`` returns the set.
        """
        return AdvSetWriter(self, key, spec, n, image_shape, chunk_size)

    def remove(self, key: str) -> bool:
        """Delete the set and any partial file for ``key`` (for --force); True if anything went."""
        removed = False
        for p in (self.path(key), self.partial_path(key)):
            if p.exists():
                p.unlink()
                removed = True
        return removed

    def list(self) -> dict[str, dict]:
        """Every finished set in the store: key -> spec, sorted by key (StoreError on a bad file)."""
        out: dict[str, dict] = {}
        if not self.root.is_dir():
            return out
        for p in sorted(self.root.glob("*.h5")):
            key = p.name.removesuffix(".h5")
            if not _KEY_RE.match(key):
                continue  # partials and files that are not named by a key
            with AdvSet(p, key) as s:
                out[key] = s.spec
        return out
