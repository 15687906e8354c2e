"""Reading a finished adversarial set (``AdvSet``): checked on open, checksummed on every read.

Version 2 files carry a fletcher32 checksum on every HDF5 chunk, so a flipped byte surfaces
as a StoreError naming the file (regenerate with force=True) instead of as wrong images.
Version 1 files (no checksums) are read as before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from trendcli.adversarial.store.files import open_h5
from trendcli.adversarial.store.keys import FIELDS, FORMAT, READ_FORMATS, content_key
from trendcli.errors import StoreError

REGENERATE = "rerun with force=True (--force on the command line) to regenerate it"


def attr_str(f: h5py.File, name: str) -> str | None:
    """A string attribute of ``f`` (bytes decoded), or None when absent or not a string."""
    v = f.attrs.get(name)
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    return v if isinstance(v, str) else None


class AdvSet:
    """A finished adversarial set; opens its file on first access, ``close()`` releases it.

    Arrays (``indices``, ``labels``, ``clean_pred``, ``adv_pred``, ``success``, ``linf``,
    ``l2``) are read-only numpy vectors read once; ``tensor(name)`` gives a torch copy.
    The images are read with ``iter_chunks`` or ``read_adv``. Data that fail their checksum
    (or cannot be read) raise StoreError.
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
        return StoreError(f"adversarial set {self.path}: {what}; {REGENERATE}")

    def _h5(self) -> h5py.File:
        if self._file is None:
            self._file = self._open_checked()
        return self._file

    def _open_checked(self) -> h5py.File:
        if self.path.is_dir():
            raise StoreError(
                f"{self.path} is a directory where the adversarial set file should be; remove or rename it"
            )
        if not self.path.is_file():
            raise self._fail("file not found")
        try:
            if not h5py.is_hdf5(self.path):
                raise self._fail("not an HDF5 file")
            f = open_h5(self.path, "r")
        except PermissionError as exc:
            raise StoreError(f"adversarial set {self.path} cannot be read ({exc.strerror}); check its permissions") from exc
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
        fmt = attr_str(f, "format")
        if fmt is None:
            raise self._fail(f"no 'format' attribute; not a trendcli adversarial set ({FORMAT})")
        if fmt not in READ_FORMATS:
            raise self._fail(f"format is {fmt!r}, expected one of {', '.join(map(repr, READ_FORMATS))}")
        key = attr_str(f, "key")
        if key != self.key:
            raise self._fail(f"its key attribute {key!r} does not match the file name (key {self.key})")
        spec = _json_or_none(attr_str(f, "spec"))
        if not isinstance(spec, dict):
            raise self._fail("missing or malformed 'spec' attribute")
        if content_key(spec) != self.key:
            raise self._fail("its spec does not hash to its key (edited or damaged)")
        n = self._check_datasets(f)
        if "n" in spec and spec["n"] != n:
            raise self._fail(f"the spec says {spec['n']} images, the file holds {n}")
        indices = np.ascontiguousarray(self._read(f["indices"]), dtype="<i8")
        want = spec.get("indices_sha256")
        if want is not None and hashlib.sha256(indices.tobytes()).hexdigest() != want:
            raise self._fail("its index list does not match the spec's indices_sha256")
        indices.flags.writeable = False
        self._spec = spec
        self._arrays["indices"] = indices

    def _check_datasets(self, f: h5py.File) -> int:
        """Every dataset present with its dtype and shape; returns the number of images."""
        missing = [name for name in (*FIELDS, "adv") if not isinstance(f.get(name), h5py.Dataset)]
        if missing:
            raise self._fail(f"missing datasets {', '.join(missing)}")
        adv = f["adv"]
        n = adv.shape[0] if adv.ndim == 4 else -1
        if adv.ndim != 4 or adv.dtype != np.float32:
            raise self._fail(f"'adv' must be float32 [N, C, H, W], found {adv.dtype} {adv.shape}")
        for name, dtype in FIELDS.items():
            ds = f[name]
            if ds.shape != (n,) or ds.dtype != dtype:
                raise self._fail(f"{name!r} must be {dtype} [{n}], found {ds.dtype} {ds.shape}")
        return n

    def _read(self, ds: h5py.Dataset, sel: slice = slice(None)) -> np.ndarray:
        """``ds[sel]``; a failed checksum or unreadable chunk raises StoreError naming the file."""
        try:
            return ds[sel]
        except OSError as exc:
            raise self._fail(f"dataset {ds.name.lstrip('/')!r} fails its checksum or cannot be read ({exc})") from exc

    # -- metadata

    @property
    def format(self) -> str:
        """The file's format id (``trendcli-advset/1`` or ``/2``)."""
        return attr_str(self._h5(), "format") or ""

    @property
    def spec(self) -> dict:
        """The spec this set was made from (its content key hashes it)."""
        self._h5()
        assert self._spec is not None
        return self._spec

    def _json_attr(self, name: str) -> Any:
        if name not in self._attrs:
            raw = attr_str(self._h5(), name)
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
        return attr_str(self._h5(), "created")

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

    @property
    def loss_curves(self) -> np.ndarray | None:
        """The attack's loss per iteration, one row per chunk (float32 [n_chunks, L], NaN rows for
        chunks without one), as APGD records it; None when the set holds none."""
        f = self._h5()
        if not isinstance(f.get("loss_curve"), h5py.Dataset):
            return None
        return self._read(f["loss_curve"])

    # -- per-image vectors

    def array(self, name: str) -> np.ndarray:
        """A per-image dataset (indices, labels, clean_pred, adv_pred, success, linf, l2), read-only."""
        if name not in FIELDS:
            raise ValueError(f"unknown array {name!r}; known: {', '.join(FIELDS)}")
        if name not in self._arrays:
            a = self._read(self._h5()[name])
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
        return self._read(self._h5()["adv"], slice(start, self.n if stop is None else stop))

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
            block = self._read(ds, slice(rs, min(rs + step, n)))
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


def _json_or_none(raw: str | None) -> Any:
    try:
        return json.loads(raw) if raw is not None else None
    except json.JSONDecodeError:
        return None
