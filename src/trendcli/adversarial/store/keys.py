"""Specs and content keys of adversarial sets, and the checks on what goes into a set.

The key is sha256 over the spec's canonical JSON (sorted keys, no whitespace). The spec
(``make_spec``) names everything that decides the images: source weight hashes, attack and
parameters, dataset, split, the index list (by its hash), the memory layout the attack ran in
and ``ATTACK_CODE_VERSION``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from trendcli.attacks.base import MEMORY_FORMATS
from trendcli.registry import canonical

#: The file format written now. Version 2 added fletcher32 checksums on every dataset and the
#: ``layout`` field of the spec; version 1 files (no checksums) are still read.
FORMAT = "trendcli-advset/2"
READ_FORMATS = ("trendcli-advset/1", FORMAT)
PARTIAL_FORMAT = "trendcli-advset-partial/2"
# Bump when attack code changes what an attack produces for the same spec: every key changes,
# so old sets are no longer found (and are regenerated) instead of being silently reused.
ATTACK_CODE_VERSION = 1

_KEY_RE = re.compile(r"^[0-9a-f]{64}$")
_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
#: Per-image datasets besides ``adv``: name -> numpy dtype.
FIELDS: dict[str, np.dtype] = {
    "indices": np.dtype(np.int64),
    "labels": np.dtype(np.int64),
    "clean_pred": np.dtype(np.int64),
    "adv_pred": np.dtype(np.int64),
    "success": np.dtype(np.bool_),
    "linf": np.dtype(np.float32),
    "l2": np.dtype(np.float32),
}


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
    return hashlib.sha256(index_array(indices).tobytes()).hexdigest()


def make_spec(
    *,
    weights_sha256: list[str],
    attack: str,
    params: dict,
    dataset: str,
    split: str,
    indices: torch.Tensor | np.ndarray,
    layout: str = "contiguous",
    extra: dict | None = None,
) -> dict:
    """The spec of an adversarial set: everything that decides its images, as plain JSON.

    ``weights_sha256`` lists the source's weight hashes (one model, or K ensemble members in
    order; order matters). ``params`` holds every attack parameter; tuples become lists and
    numpy/torch scalars Python numbers, so ``json.loads(canonical_json(spec)) == spec``.
    The index list enters by its hash and length. ``layout`` is the memory layout the attack
    ran in ("contiguous" or "channels_last"): it changes float rounding, so it is part of the
    key. ``extra`` is for anything else that changes the result (e.g. the ensemble's tie-break
    rule).
    """
    hashes = _weight_hashes(weights_sha256)
    for name, value in (("attack", attack), ("dataset", dataset), ("split", split)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a dict, got {type(params).__name__}")
    if extra is not None and not isinstance(extra, Mapping):
        raise ValueError(f"extra must be a dict or None, got {type(extra).__name__}")
    if layout not in MEMORY_FORMATS:
        raise ValueError(f"layout must be one of {', '.join(MEMORY_FORMATS)}, got {layout!r}")
    idx = index_array(indices)
    return {
        "format": FORMAT,
        "attack_code_version": ATTACK_CODE_VERSION,
        "weights_sha256": hashes,
        "attack": canonical(attack),
        "params": plain(params, "params"),
        "dataset": canonical(dataset),
        "split": split.strip(),
        "n": int(idx.size),
        "indices_sha256": hashlib.sha256(idx.tobytes()).hexdigest(),
        "layout": layout,
        "extra": plain(extra or {}, "extra"),
    }


def _weight_hashes(weights_sha256: Any) -> list[str]:
    if isinstance(weights_sha256, str) or not isinstance(weights_sha256, (list, tuple)):
        raise ValueError("weights_sha256 must be a list of sha256 hex strings (one per source model)")
    if not weights_sha256:
        raise ValueError("weights_sha256 is empty; give the source model's weight hash")
    hashes = []
    for h in weights_sha256:
        if not isinstance(h, str) or not _SHA256_RE.match(h):
            raise ValueError(f"weights_sha256 entry {h!r} is not a sha256 hex digest (64 hex digits)")
        hashes.append(h.lower())
    return hashes


def plain(value: Any, where: str) -> Any:
    """``value`` as plain JSON types (tuples -> lists, numpy/torch scalars -> numbers)."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value}; spec values must be finite")
        return value
    if isinstance(value, np.generic):
        return plain(value.item(), where)
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.ndim == 0:
        return plain(value.item(), where)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{where} has a non-string key {k!r}; spec keys must be strings")
            out[k] = plain(v, f"{where}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise ValueError(f"{where} has type {type(value).__name__}; spec values must be plain JSON")


def is_key(name: str) -> bool:
    """Is ``name`` shaped like a content key (64 lowercase hex digits)?"""
    return bool(_KEY_RE.match(name))


def check_key(key: str) -> str:
    """``key`` unchanged, or ValueError when it is not a content key."""
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


def index_array(indices: Any) -> np.ndarray:
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


def int_vector(name: str, value: Any, m: int) -> np.ndarray:
    """A chunk's integer vector of length ``m`` (non-negative), as int64."""
    a = _numpy(name, value)
    if a.shape != (m,):
        raise ValueError(f"{name}: expected shape ({m},) for this chunk, got {tuple(a.shape)}")
    if a.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integers, got dtype {a.dtype}")
    if m and a.min() < 0:
        raise ValueError(f"{name} must be non-negative, found {int(a.min())}")
    return a.astype(np.int64, copy=False)


def images(name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A chunk's images of ``shape``: finite floats in [0, 1], as contiguous float32."""
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
