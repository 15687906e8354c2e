"""Streaming evaluation of stored adversarial sets through target models.

What every transfer stage (matrix, strength sweep) shares: the source's set from the store
(generated once through trendcli.adversarial.generate.attack), the models loaded under unique
names, the dataset split they were split with, and :func:`evaluate_set`, which reads each
stored chunk once and passes it through every target under ``torch.inference_mode()``, and
reads (set, target) pairs already seen from the store's prediction cache instead.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from trendcli.ensemble.members import unique_ids
from trendcli.errors import TrendError
from trendcli.progress import NullProgress, Progress
from trendcli.registry import canonical
from trendcli.zoo.files import check_compatible, load_models
from trendcli.zoo.model import TrendModel

__all__ = [
    "SetEvaluation",
    "cache_spec",
    "cached_predictions",
    "evaluate_set",
    "load_eval_data",
    "normalize_params",
    "prepare_models",
    "run_attack",
    "unique_names",
]


def unique_names(models: Sequence[TrendModel]) -> list[str]:
    """Model ids; two models with one id get their directory name (or a counter) appended."""
    ids = [m.name for m in models]
    out = []
    for i, (m, base) in enumerate(zip(models, ids)):
        if ids.count(base) == 1:
            out.append(base)
            continue
        path = m.meta.get("path")
        out.append(f"{base}@{Path(path).name}" if path else f"{base}#{ids[: i + 1].count(base)}")
    # same id and same directory name in two places: number the repeats
    return unique_ids(out) if len(set(out)) != len(out) else out


def prepare_models(models: Sequence[TrendModel | str | Path], device: str = "auto") -> tuple[list[TrendModel], list[str]]:
    """Load ``models`` (directories or loaded models) on ``device``, name them, check they share one input."""
    from trendcli.zoo.files import resolve_device

    loaded = load_models(list(models), resolve_device(device))
    names = unique_names(loaded)
    check_compatible(loaded, names)
    return loaded, names


def normalize_params(params: dict[str, Any] | None) -> dict[str, Any]:
    """Attack parameters as JSON values with sorted keys (a stable part of the reuse check)."""
    out = {}
    for key in sorted(params or {}):
        value = params[key]
        if isinstance(value, np.generic):
            value = value.item()
        out[str(key)] = value
    return json.loads(json.dumps(out))


def run_attack(models: Any, method: str, params: dict | None, **kwargs: Any) -> Any:
    """trendcli.adversarial.generate.attack (imported on use; the one seam tests replace)."""
    from trendcli.adversarial.generate import attack

    return attack(models, method, params, **kwargs)


def load_eval_data(dataset: str, split: str, data_dir: Path | None, split_seed: int, cache: dict | None = None) -> Any:
    """The dataset of ``split`` (the split seed matters for val only), memoized in ``cache``."""
    from trendcli.data import load_split

    cache = cache if cache is not None else {}
    key = (canonical(dataset), split, str(data_dir), split_seed if split != "test" else 0)
    if key not in cache:
        cache[key] = load_split(dataset, split, data_dir, split_seed)[0]
    return cache[key]


def _digest_indices(indices: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(indices, dtype=np.int64).tobytes()).hexdigest()


@dataclass
class SetEvaluation:
    """Per-image correctness of each evaluated model on one adversarial set and its clean images.

    ``evaluated`` lists the models that ran forward passes on the set, ``from_cache`` those
    read from the prediction cache, ``corrupt`` the cache entries that failed a check (each
    reported through the progress log and recomputed, so also in ``evaluated``).
    ``clean_pred`` / ``adv_pred``: each model's argmax, int64 [N] (what an ensemble votes on).
    """

    labels: np.ndarray
    clean_ok: dict[int, np.ndarray]
    adv_ok: dict[int, np.ndarray]
    seconds: float
    evaluated: list[int] = field(default_factory=list)
    from_cache: list[int] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    clean_pred: dict[int, np.ndarray] = field(default_factory=dict)
    adv_pred: dict[int, np.ndarray] = field(default_factory=dict)


def _check_labels(advset: Any, stored: torch.Tensor, from_data: torch.Tensor) -> None:
    if not torch.equal(from_data.long().cpu(), stored.cpu()):
        raise TrendError(
            f"the labels stored in {getattr(advset, 'path', 'the adversarial set')} differ from the dataset's "
            "at the same indices; regenerate the set with force=True (`--force`)"
        )


def cache_spec(advset: Any, model: TrendModel, batch_size: int) -> dict | None:
    """The prediction-cache spec of (``advset``, ``model``) evaluated in chunks of ``batch_size``.

    None when the model has no weights hash or the set no key (nothing to key the entry by).
    """
    from trendcli.adversarial.generate import per_minibatch
    from trendcli.adversarial.store import prediction_spec
    from trendcli.adversarial.store.keys import is_key

    sha, key = getattr(model, "meta", {}).get("weights_sha256"), getattr(advset, "key", None)
    if not isinstance(sha, str) or len(sha) != 64 or not isinstance(key, str) or not is_key(key):
        return None
    try:
        form = "per_minibatch" if per_minibatch(model) else "per_image"
        model_spec = model.spec.to_dict()
    except AttributeError:  # not a TrendModel (a wrapped foreign model): nothing to key it by
        return None
    return prediction_spec(key, sha, model_spec, form, batch_size if form == "per_minibatch" else None)


def cached_predictions(
    cache: Any, spec: dict | None, labels: np.ndarray, progress: Progress | None = None, set_created: str | None = None
) -> tuple[Any, str | None]:
    """(the cache entry for ``spec`` or None, the corruption message or None).

    A damaged entry is never returned: its StoreError is logged through ``progress`` and
    returned as the message, so the caller recomputes and overwrites it. For callers outside
    the transfer stages (the ensemble evaluation) as well as :func:`evaluate_set`.
    """
    from trendcli.errors import StoreError

    if cache is None or spec is None:
        return None, None
    try:
        return cache.get(spec, labels, set_created), None
    except StoreError as exc:
        (progress or NullProgress()).log(f"{exc}; recomputing it")
        return None, str(exc)


@torch.inference_mode()
def evaluate_set(
    advset: Any,
    models: dict[int, TrendModel],
    data: Any,
    batch_size: int | None,
    clean_cache: dict[tuple[int, str], np.ndarray] | None = None,
    progress: Progress | None = None,
    description: str = "transfer",
    cache: Any = None,
) -> SetEvaluation:
    """Stream ``advset`` once in chunks of ``batch_size``; every chunk goes through every model.

    ``batch_size`` None: the set's own chunk size (the batch it was attacked in). Clean
    predictions are taken on the same indices and the same chunks, which matters for
    per-minibatch input quantizers; ``clean_cache`` keyed by (model key, indices digest,
    chunk) spares a second clean pass for a model already evaluated on those images.
    ``cache`` (a store's PredictionCache) supplies every (set, model) pair it holds, with no
    forward pass, and keeps the pairs computed here. ``data``: the dataset, or a function of
    no arguments returning it (called only when a clean image is needed).
    """
    progress = progress or NullProgress()
    batch_size = int(batch_size or advset.chunk_size)
    t0 = time.perf_counter()
    labels = np.asarray(advset.labels, dtype=np.int64)
    specs = {k: cache_spec(advset, m, batch_size) if cache is not None else None for k, m in models.items()}
    hits, corrupt = {}, []
    created = getattr(advset, "created", None) if cache is not None else None
    for k in models:
        entry, problem = cached_predictions(cache, specs[k], labels, progress, created)
        if entry is not None:
            hits[k] = entry
        if problem:
            corrupt.append(problem)
    todo = {k: m for k, m in models.items() if k not in hits}
    clean_pred, adv_pred = _forward(advset, todo, data, batch_size, clean_cache, progress, description) if todo else ({}, {})
    from trendcli.adversarial.store import Predictions
    from trendcli.errors import StoreError

    for k in todo:
        if specs[k] is not None:
            try:
                cache.put(specs[k], Predictions(labels, clean_pred[k], adv_pred[k]), created)
            except StoreError as exc:  # a read-only store still serves what it holds
                progress.log(f"predictions not kept in the cache: {exc}")
    clean_pred.update({k: hits[k].clean_pred for k in hits})
    adv_pred.update({k: hits[k].adv_pred for k in hits})
    clean_pred = {k: clean_pred[k] for k in models}
    adv_pred = {k: adv_pred[k] for k in models}
    return SetEvaluation(labels=labels, clean_ok={k: p == labels for k, p in clean_pred.items()},
                         adv_ok={k: p == labels for k, p in adv_pred.items()}, seconds=time.perf_counter() - t0,
                         evaluated=list(todo), from_cache=list(hits), corrupt=corrupt, clean_pred=clean_pred,
                         adv_pred=adv_pred)


def _forward(
    advset: Any, models: dict[int, TrendModel], data: Any, batch_size: int,
    clean_cache: dict | None, progress: Progress, description: str,
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Clean and adversarial argmax of every model in ``models`` over the whole set, int64 [N] each."""
    indices = np.asarray(advset.indices, dtype=np.int64)
    n = len(indices)
    cache = clean_cache if clean_cache is not None else {}
    digest = f"{_digest_indices(indices)}/{batch_size}"
    need_clean = [k for k in models if (k, digest) not in cache]
    adv_pred = {k: np.empty(n, dtype=np.int64) for k in models}
    clean_pred = {k: np.empty(n, dtype=np.int64) for k in need_clean}
    devices = {k: next(m.parameters()).device for k, m in models.items()}
    for m in models.values():
        m.eval()
    if need_clean and callable(data) and not hasattr(data, "batch"):
        data = data()
    handle = progress.task(description, total=max(1, math.ceil(n / batch_size)))
    for start, stop, adv, y, idx in advset.iter_chunks(batch_size):
        y = torch.as_tensor(y).long()
        x_clean = None
        if need_clean:
            x_clean, y_data = data.batch(torch.as_tensor(np.asarray(idx), dtype=torch.long))
            _check_labels(advset, y, y_data)
        for k, model in models.items():
            dev = devices[k]
            adv_pred[k][start:stop] = model(adv.to(dev, non_blocking=True)).argmax(1).cpu().numpy()
            if k in clean_pred:
                clean_pred[k][start:stop] = model(x_clean.to(dev, non_blocking=True)).argmax(1).cpu().numpy()
        progress.advance(handle)
    progress.done(handle)
    for k in need_clean:
        cache[(k, digest)] = clean_pred[k]
    return {k: cache[(k, digest)] for k in models}, adv_pred
