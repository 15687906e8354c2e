"""The prediction cache: a target's predictions on a stored set and on its clean images.

A matrix, audit or evaluation that needs a (set, target) pair it has seen before reads the
pair's entry and runs no forward pass. One entry is one HDF5 file
``<store>/predictions/<set key>/<key>.h5``, named by the content key of its spec

    {"format": "trendcli-predictions/1", "set_key": <the adversarial set's key>,
     "weights_sha256": <the target's weights>, "model_spec": <the target's spec>,
     "form": "per_image" | "per_minibatch", "chunk": <images per forward pass> | null}

``form`` is "per_minibatch" when the target's output for an image depends on its batch-mates
(a per-minibatch input quantizer); then ``chunk``, the batch the images went through the model
in, decides the predictions and is part of the key. Per-image targets have ``chunk`` null:
their predictions do not depend on the batch. The file holds flat datasets

    labels, clean_pred, adv_pred   int64 [N]   the set's labels; the target's argmax
    clean_ok, adv_ok               bool [N]    clean_pred == labels, adv_pred == labels

each with a fletcher32 checksum, and the attributes ``format``, ``key``, ``spec`` (canonical
JSON), ``set_created`` (the set's own ``created``: a set regenerated under the same key makes
its old entries stale), ``created`` (ISO 8601, UTC). Regenerating a set (force=True) removes
its folder of entries. Entries are written under a temporary name and renamed
(os.replace), under the lock ``<key>.lock`` (the filelock approach of the sets), so a reader
sees a whole entry or none. An entry that fails any check (checksum, shapes, key, labels that
differ from the set's, correctness that disagrees with the predictions) raises StoreError;
callers report it and recompute.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from filelock import FileLock

from trendcli.adversarial.store.files import fsync, open_h5, write_failure
from trendcli.adversarial.store.keys import canonical_json, check_key, content_key, plain
from trendcli.adversarial.store.reader import attr_str
from trendcli.errors import StoreError

__all__ = ["FORMS", "PREDICTIONS_FORMAT", "PredictionCache", "Predictions", "prediction_spec"]

PREDICTIONS_FORMAT = "trendcli-predictions/1"
FORMS = ("per_image", "per_minibatch")
_INT = ("labels", "clean_pred", "adv_pred")
_BOOL = ("clean_ok", "adv_ok")


def prediction_spec(set_key: str, weights_sha256: str, model_spec: dict, form: str, chunk: int | None = None) -> dict:
    """The spec of one cache entry: the set, the target (weights + spec) and the form."""
    check_key(set_key)
    if form not in FORMS:
        raise ValueError(f"form must be one of {', '.join(FORMS)}, got {form!r}")
    if form == "per_minibatch" and (not isinstance(chunk, int) or chunk < 1):
        raise ValueError(f"chunk must be a positive int for form 'per_minibatch', got {chunk!r}")
    if not isinstance(weights_sha256, str) or len(weights_sha256) != 64:
        raise ValueError(f"weights_sha256 must be a sha256 hex digest, got {weights_sha256!r}")
    return {
        "format": PREDICTIONS_FORMAT,
        "set_key": set_key,
        "weights_sha256": weights_sha256.lower(),
        "model_spec": plain(model_spec, "model_spec"),
        "form": form,
        "chunk": int(chunk) if form == "per_minibatch" else None,
    }


@dataclass(frozen=True)
class Predictions:
    """One target's argmax on a set's clean and adversarial images, and whether each is right."""

    labels: np.ndarray
    clean_pred: np.ndarray
    adv_pred: np.ndarray

    @property
    def clean_ok(self) -> np.ndarray:
        """clean_pred == labels, bool [N]."""
        return self.clean_pred == self.labels

    @property
    def adv_ok(self) -> np.ndarray:
        """adv_pred == labels, bool [N]."""
        return self.adv_pred == self.labels


class PredictionCache:
    """A directory of prediction entries (``AdvStore(root).predictions``: ``<root>/predictions``)."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"PredictionCache({str(self.root)!r})"

    def path(self, spec: dict) -> Path:
        """Where the entry for ``spec`` (named by its content key) lives."""
        return self.root / check_key(spec["set_key"]) / f"{content_key(spec)}.h5"

    def lock(self, spec: dict) -> FileLock:
        """The lock writers (and ``remove``) of the entry for ``spec`` take."""
        return FileLock(self.path(spec).with_suffix(".lock"), thread_local=False)

    def get(self, spec: dict, labels: np.ndarray, set_created: str | None = None) -> Predictions | None:
        """The entry for ``spec``, checked against the set's ``labels`` and ``created``; None when absent.

        Raises StoreError when the entry exists but fails a check (it is never returned then).
        """
        key = content_key(spec)
        path = self.path(spec)
        if not path.exists():
            return None
        try:
            with open_h5(path, "r") as f:
                arrays = self._read_checked(f, path, key, len(labels))
                if set_created is not None and attr_str(f, "set_created") != set_created:
                    raise StoreError(f"prediction cache entry {path} belongs to an earlier version of its set "
                                     f"(created {attr_str(f, 'set_created')}, the set {set_created})")
        except StoreError:
            raise
        except Exception as exc:  # OSError on a failed checksum or a damaged file; KeyError, TypeError
            raise StoreError(f"prediction cache entry {path} is unreadable ({type(exc).__name__}: {exc})") from exc
        if not np.array_equal(arrays["labels"], labels):
            raise StoreError(f"prediction cache entry {path}: its labels differ from the set's")
        for name, pred in (("clean_ok", "clean_pred"), ("adv_ok", "adv_pred")):
            if not np.array_equal(arrays[name], arrays[pred] == arrays["labels"]):
                raise StoreError(f"prediction cache entry {path}: {name} disagrees with {pred}")
        return Predictions(arrays["labels"], arrays["clean_pred"], arrays["adv_pred"])

    @staticmethod
    def _read_checked(f: h5py.File, path: Path, key: str, n: int) -> dict[str, np.ndarray]:
        if attr_str(f, "format") != PREDICTIONS_FORMAT:
            raise StoreError(f"prediction cache entry {path}: format {attr_str(f, 'format')!r}, expected {PREDICTIONS_FORMAT!r}")
        spec_json = attr_str(f, "spec")
        if attr_str(f, "key") != key or spec_json is None or content_key(_loads(spec_json)) != key:
            raise StoreError(f"prediction cache entry {path}: its key or spec does not match its name")
        out = {}
        for name in (*_INT, *_BOOL):
            ds = f.get(name)
            want = np.bool_ if name in _BOOL else np.int64
            if not isinstance(ds, h5py.Dataset) or ds.shape != (n,) or ds.dtype != want:
                raise StoreError(f"prediction cache entry {path}: dataset {name!r} missing or not {np.dtype(want)} [{n}]")
            out[name] = ds[()]
        return out

    def put(self, spec: dict, predictions: Predictions, set_created: str | None = None) -> Path:
        """Write the entry for ``spec`` atomically (replacing a damaged one); returns its path."""
        key = content_key(spec)
        path = self.path(spec)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self.lock(spec):
                fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp.h5", dir=path.parent)
                os.close(fd)
                try:
                    self._write(Path(tmp), key, spec, predictions, set_created)
                    fsync(Path(tmp))
                    os.replace(tmp, path)
                finally:
                    Path(tmp).unlink(missing_ok=True)
        except (OSError, RuntimeError) as exc:
            raise write_failure(exc, path) from exc
        return path

    @staticmethod
    def _write(tmp: Path, key: str, spec: dict, p: Predictions, set_created: str | None) -> None:
        arrays = {"labels": p.labels, "clean_pred": p.clean_pred, "adv_pred": p.adv_pred,
                  "clean_ok": p.clean_ok, "adv_ok": p.adv_ok}
        with open_h5(tmp, "w") as f:
            for name, a in arrays.items():
                dtype = np.bool_ if name in _BOOL else np.int64
                f.create_dataset(name, data=np.asarray(a, dtype=dtype), fletcher32=True, chunks=True)
            f.attrs["format"] = PREDICTIONS_FORMAT
            f.attrs["key"] = key
            f.attrs["spec"] = canonical_json(spec)
            f.attrs["set_created"] = set_created or ""
            f.attrs["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")

    def remove_set(self, set_key: str) -> int:
        """Delete every entry of the set ``set_key`` (its set is being regenerated); returns how many."""
        folder = self.root / check_key(set_key)
        if not folder.is_dir():
            return 0
        gone = 0
        for p in folder.glob("*.h5"):
            p.unlink(missing_ok=True)
            gone += not p.name.startswith(".")
        shutil.rmtree(folder, ignore_errors=True)
        return gone

    def keys(self, set_key: str) -> list[str]:
        """The keys of every entry of the set ``set_key``, sorted."""
        folder = self.root / check_key(set_key)
        if not folder.is_dir():
            return []
        return sorted(p.name.removesuffix(".h5") for p in folder.glob("*.h5") if not p.name.startswith("."))


def _loads(raw: str) -> Any:
    import json

    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return None
