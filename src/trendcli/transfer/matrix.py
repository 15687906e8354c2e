"""Transferability matrices: every model's adversarial set (through the store), every other
model evaluated on it, the counts of eq. 1 for every ordered pair.

Each source's set is streamed from its .h5 file once, in chunks; every chunk goes through
every target that still needs it, under ``torch.inference_mode()``.
A matrix extends incrementally: pairs whose models (weights sha256 + spec) and evaluation
settings (attack, parameters, split, limit, batch size) match a previous matrix are reused.

Formulas: docs/method.md, "Transferability metric (eq. 1)"; counting lives in
transfer.py.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Hashable, Iterable, Sequence

import numpy as np
import torch

from trendcli.errors import TrendError, UsageError
from trendcli.fsio import write_json_atomic
from trendcli.zoo.model import TrendModel
from trendcli.progress import NullProgress, Progress
from trendcli.registry import canonical
from trendcli.ensemble.members import unique_ids
from trendcli.zoo.files import check_compatible, load_models
from trendcli.transfer.counts import GroupStats, averages, figure_normalization, group_stats, pair_counts, symmetrize, tm_from_counts

__all__ = ["SCHEMA", "NORMALIZATIONS", "TransferMatrix", "check_compatible", "compute_matrix", "evaluate_set", "load_models"]

SCHEMA = "trendcli-matrix/1"
NORMALIZATIONS = ("eq1", "figure")


# -- models ------------------------------------------------------------------------------------


def _unique_names(models: Sequence[TrendModel]) -> list[str]:
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


def _model_entry(model: TrendModel, name: str) -> dict[str, Any]:
    meta = model.meta
    return {
        "name": name,
        "id": meta.get("id", model.name),
        "path": meta.get("path"),
        "weights_sha256": model.meta["weights_sha256"],
        "spec": model.spec.to_dict(),
        "train": meta.get("train", {}),
        "split_seed": (meta.get("split") or {}).get("seed", 0),
        "card_accuracy": meta.get("accuracy"),
    }


def model_fields(entry: dict[str, Any]) -> dict[str, Any]:
    """The fields ``--group-by`` can use: the spec's, the training config's, id and name."""
    return {**entry.get("train", {}), **entry.get("spec", {}), "id": entry.get("id"), "name": entry.get("name")}


def _identity(entry: dict[str, Any]) -> str:
    """What makes two model entries the same model for reuse: weights and spec."""
    return entry["weights_sha256"] + json.dumps(entry["spec"], sort_keys=True)


# -- evaluation ----------------------------------------------------------------------------------


def _normalize_params(params: dict[str, Any] | None) -> dict[str, Any]:
    """Attack parameters as JSON values with sorted keys (a stable part of the reuse check)."""
    out = {}
    for key in sorted(params or {}):
        value = params[key]
        if isinstance(value, (np.generic,)):
            value = value.item()
        out[str(key)] = value
    return json.loads(json.dumps(out))


def _digest_indices(indices: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(indices, dtype=np.int64).tobytes()).hexdigest()


@dataclass
class SetEvaluation:
    """Per-image correctness of each evaluated model on one adversarial set and its clean images."""

    labels: np.ndarray
    clean_ok: dict[int, np.ndarray]
    adv_ok: dict[int, np.ndarray]
    seconds: float


@torch.inference_mode()
def evaluate_set(
    advset: Any,
    models: dict[int, TrendModel],
    data: Any,
    batch_size: int | None,
    clean_cache: dict[tuple[int, str], np.ndarray] | None = None,
    progress: Progress | None = None,
    description: str = "transfer",
) -> SetEvaluation:
    """Stream ``advset`` once in chunks of ``batch_size``; every chunk goes through every model.

    ``batch_size`` None: the set's own chunk size (the batch it was attacked in). Clean
    predictions are taken on the same indices and the same chunks, which matters for
    per-minibatch input quantizers; ``clean_cache`` keyed by (model key, indices digest,
    chunk) spares a second clean pass for a model already evaluated on those images.
    """
    progress = progress or NullProgress()
    batch_size = int(batch_size or advset.chunk_size)
    t0 = time.perf_counter()
    indices = np.asarray(advset.indices, dtype=np.int64)
    n = len(indices)
    cache = clean_cache if clean_cache is not None else {}
    digest = f"{_digest_indices(indices)}/{batch_size}"
    need_clean = [k for k in models if (k, digest) not in cache]
    labels = np.empty(n, dtype=np.int64)
    adv_ok = {k: np.empty(n, dtype=bool) for k in models}
    clean_ok = {k: np.empty(n, dtype=bool) for k in need_clean}
    devices = {k: next(m.parameters()).device for k, m in models.items()}
    for m in models.values():
        m.eval()
    handle = progress.task(description, total=max(1, math.ceil(n / batch_size)))
    for start, stop, adv, y, idx in advset.iter_chunks(batch_size):
        y = torch.as_tensor(y).long()
        labels[start:stop] = y.numpy()
        x_clean = None
        if need_clean:
            x_clean, y_data = data.batch(torch.as_tensor(np.asarray(idx), dtype=torch.long))
            if not torch.equal(y_data.long().cpu(), y.cpu()):
                raise TrendError(
                    f"the labels stored in {getattr(advset, 'path', 'the adversarial set')} differ from the dataset's "
                    "at the same indices; regenerate the set with --force"
                )
        for k, model in models.items():
            dev = devices[k]
            y_dev = y.to(dev)
            adv_ok[k][start:stop] = (model(adv.to(dev, non_blocking=True)).argmax(1) == y_dev).cpu().numpy()
            if k in clean_ok:
                clean_ok[k][start:stop] = (model(x_clean.to(dev, non_blocking=True)).argmax(1) == y_dev).cpu().numpy()
        progress.advance(handle)
    progress.done(handle)
    for k in need_clean:
        cache[(k, digest)] = clean_ok[k]
    return SetEvaluation(
        labels=labels,
        clean_ok={k: cache[(k, digest)] for k in models},
        adv_ok=adv_ok,
        seconds=time.perf_counter() - t0,
    )


def _load_data(dataset: str, split: str, data_dir: Path | None, split_seed: int, cache: dict) -> Any:
    from trendcli.data import load_split

    key = (canonical(dataset), split, str(data_dir), split_seed if split != "test" else 0)
    if key not in cache:
        cache[key] = load_split(dataset, split, data_dir, split_seed)[0]
    return cache[key]


# -- the matrix ------------------------------------------------------------------------------------


def _none_if_nan(values: Any) -> Any:
    """Nested lists with NaN as None (JSON null)."""
    arr = np.asarray(values, dtype=np.float64)
    return [None if not math.isfinite(v) else float(v) for v in arr.ravel()] if arr.ndim == 1 else [
        _none_if_nan(row) for row in arr
    ]


def _nan_if_none(values: Any) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in values], dtype=np.float64)


def _fmt(value: float, fmt: str = ".4f") -> str:
    return "n/a" if not math.isfinite(value) else format(value, fmt)


@dataclass
class TransferMatrix:
    """TM for every ordered pair of a model list: rows source, columns target (docs/formats.md)."""

    names: list[str]
    model_dirs: list[str | None]
    n_c: np.ndarray
    n_g: np.ndarray
    n_t: np.ndarray
    clean_accuracy: dict[str, float]
    models: list[dict[str, Any]] = field(default_factory=list)
    attack: dict[str, Any] = field(default_factory=dict)
    sources: list[dict[str, Any]] = field(default_factory=list)
    computed_pairs: int = 0
    reused_pairs: int = 0
    seconds: float = 0.0

    def __post_init__(self) -> None:
        self.n_c, self.n_g, self.n_t = (np.asarray(a, dtype=np.int64) for a in (self.n_c, self.n_g, self.n_t))
        k = len(self.names)
        if not (self.n_c.shape == self.n_g.shape == self.n_t.shape == (k, k)):
            raise UsageError(f"count matrices must be {k}x{k} for {k} models, got {self.n_c.shape}")

    # values ------------------------------------------------------------------------------------
    @property
    def tm(self) -> np.ndarray:
        """TM(s->t) = N_t / N_g, NaN where undefined; the diagonal 1 where defined (eq. 1)."""
        return tm_from_counts(self.n_g, self.n_t)

    @property
    def cached(self) -> bool:
        """True when nothing was computed: every pair came from a previous matrix."""
        return self.computed_pairs == 0

    def symmetric(self) -> np.ndarray:
        """TM_sym = (TM + TM.T) / 2, NaN stays NaN (docs/method.md eq. 1)."""
        return symmetrize(self.tm)

    def values(self, normalize: str = "eq1", groups: Sequence[Hashable] | None = None) -> np.ndarray:
        """TM (``eq1``, the default) or the authors' heatmap normalization (``figure``)."""
        if normalize == "eq1":
            return self.tm
        if normalize == "figure":
            return figure_normalization(self.n_t, groups)
        raise UsageError(f"unknown normalization {normalize!r}; use one of {', '.join(NORMALIZATIONS)}")

    def averages(self, include_diagonal: bool = False, normalize: str = "eq1") -> tuple[np.ndarray, np.ndarray]:
        """Row (source) and column (target) averages, diagonal left out unless asked."""
        return averages(self.values(normalize), include_diagonal)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise UsageError(f"no model {name!r} in the matrix; it has {', '.join(self.names)}") from None

    # groups ------------------------------------------------------------------------------------
    def group_keys(self, fields: Sequence[str]) -> list[str]:
        """Each model's group label from ``fields`` (e.g. arch, input_quant, optimizer)."""
        if not fields:
            raise UsageError("--group-by needs at least one field, e.g. arch,input_quant,optimizer")
        known = set()
        keys = []
        for entry in self.models:
            values = model_fields(entry)
            known |= set(values)
            missing = [f for f in fields if f not in values]
            if missing:
                raise UsageError(
                    f"unknown --group-by field {missing[0]!r}; known: {', '.join(sorted(k for k in known if k))}"
                )
            keys.append("/".join(str(values[f]) for f in fields))
        return keys

    def group_stats(self, fields: Sequence[str]) -> GroupStats:
        """Seed statistics (table II) over the groups that ``fields`` define."""
        return group_stats(self.n_g, self.n_t, self.tm, self.group_keys(fields))

    # serialization -----------------------------------------------------------------------------
    def to_dict(
        self, include_diagonal: bool = False, normalize: str = "eq1", group_by: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """Everything a report needs, JSON-ready; undefined values are null."""
        values = self.values(normalize)
        rows, cols = averages(values, include_diagonal)
        out: dict[str, Any] = {
            "schema": SCHEMA,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "names": list(self.names),
            "model_dirs": list(self.model_dirs),
            "models": self.models,
            "attack": self.attack,
            "split": self.attack.get("split"),
            "n_images": self.attack.get("n_images"),
            "store_keys": {s["name"]: s.get("store_key") for s in self.sources},
            "sources": self.sources,
            "clean_accuracy": {k: (v if math.isfinite(v) else None) for k, v in self.clean_accuracy.items()},
            "layout": "rows = source, columns = target",
            "n_c": self.n_c.tolist(),
            "n_g": self.n_g.tolist(),
            "n_t": self.n_t.tolist(),
            "tm": _none_if_nan(self.tm),
            "tm_symmetric": _none_if_nan(self.symmetric()),
            "normalization": normalize,
            "averages": {
                "of": "tm" if normalize == "eq1" else "figure",
                "include_diagonal": include_diagonal,
                "row": dict(zip(self.names, _none_if_nan(rows))),
                "column": dict(zip(self.names, _none_if_nan(cols))),
            },
            "run": {"computed_pairs": self.computed_pairs, "reused_pairs": self.reused_pairs, "seconds": round(self.seconds, 3)},
        }
        if normalize == "figure":
            out["figure"] = _none_if_nan(values)
        if group_by:
            out["groups"] = self.groups_dict(group_by, normalize)
        from trendcli.versions import library_versions

        out["versions"] = library_versions()
        return out

    def groups_dict(self, fields: Sequence[str], normalize: str = "eq1") -> dict[str, Any]:
        """Seed statistics as JSON: per ordered group pair mean/std of N_g, N_t, TM and pair count."""
        st = self.group_stats(fields)
        keys = self.group_keys(fields)
        out: dict[str, Any] = {
            "fields": list(fields),
            "groups": st.groups,
            "members": {g: [self.names[i] for i in m] for g, m in zip(st.groups, st.members)},
            "pairs": st.pairs.tolist(),
            "std": "sample (ddof=1), as the authors' torch .std()",
        }
        for name in ("n_g_mean", "n_g_std", "n_t_mean", "n_t_std", "tm_mean", "tm_std"):
            out[name] = _none_if_nan(getattr(st, name))
        if normalize == "figure":
            out["figure"] = _none_if_nan(figure_normalization(self.n_t, keys))
        return out

    def save(self, path: Path | str, include_diagonal: bool = False, normalize: str = "eq1",
             group_by: Sequence[str] | None = None) -> Path:
        """Write the matrix as JSON (atomically)."""
        path = Path(path)
        write_json_atomic(path, self.to_dict(include_diagonal, normalize, group_by))
        return path

    @classmethod
    def load(cls, path: Path | str) -> "TransferMatrix":
        """Read a matrix written by :meth:`save`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise UsageError(f"no matrix file at {path}") from None
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise UsageError(f"{path} is not a trendcli matrix (schema {data.get('schema') if isinstance(data, dict) else None!r})")
        return cls(
            names=data["names"],
            model_dirs=data["model_dirs"],
            n_c=np.array(data["n_c"]),
            n_g=np.array(data["n_g"]),
            n_t=np.array(data["n_t"]),
            clean_accuracy={k: (float("nan") if v is None else v) for k, v in data["clean_accuracy"].items()},
            models=data.get("models", []),
            attack=data.get("attack", {}),
            sources=data.get("sources", []),
        )

    def write_csv(self, path: Path | str, include_diagonal: bool = False, normalize: str = "eq1",
                  groups: Sequence[Hashable] | None = None, labels: Sequence[str] | None = None) -> Path:
        """The displayed matrix with its averages as CSV: rows source, columns target, "n/a" undefined."""
        labels = list(labels) if labels is not None else list(self.names)
        return write_matrix_csv(path, labels, self.values(normalize, groups), include_diagonal)

    def plot(self, path: Path | str, include_diagonal: bool = False, normalize: str = "eq1",
             groups: Sequence[Hashable] | None = None, labels: Sequence[str] | None = None,
             title: str | None = None) -> Path:
        """A paper-style heatmap PNG of TM (or the figure normalization) with averages beside."""
        from trendcli.transfer.heatmap import plot_heatmap, short_labels

        values = self.values(normalize, groups)
        rows, cols = averages(values, include_diagonal)
        labels = list(labels) if labels is not None else short_labels(self.names)
        if title is None:
            title = self.title()
        what = "TM(source -> target)" if normalize == "eq1" else "N_t(s->t) / N_t(s->s)"
        return plot_heatmap(values, path, labels, row_avg=rows, col_avg=cols, title=title, colorbar_label=what)

    def title(self) -> str:
        a = self.attack
        params = ", ".join(f"{k}={_short(v)}" for k, v in (a.get("params") or {}).items())
        return f"{a.get('method', '?')}({params}) on {a.get('n_images', '?')} {a.get('split', '')} images"

    def write(self, prefix: Path | str, include_diagonal: bool = False, normalize: str = "eq1",
              group_by: Sequence[str] | None = None) -> dict[str, Path]:
        """Write PREFIX.json, PREFIX.csv, PREFIX.png (and PREFIX.groups.{csv,png} with ``group_by``)."""
        prefix = Path(prefix)
        if prefix.suffix in (".json", ".csv", ".png"):
            prefix = prefix.with_suffix("")
        out = {
            "json": self.save(prefix.with_name(prefix.name + ".json"), include_diagonal, normalize, group_by),
            "csv": self.write_csv(prefix.with_name(prefix.name + ".csv"), include_diagonal, normalize),
            "png": self.plot(prefix.with_name(prefix.name + ".png"), include_diagonal, normalize),
        }
        if group_by:
            keys = self.group_keys(group_by)
            distinct = list(dict.fromkeys(keys))
            st = self.group_stats(group_by)
            gvalues = st.tm_mean if normalize == "eq1" else figure_normalization(self.n_t, keys)
            out["groups_csv"] = write_matrix_csv(prefix.with_name(prefix.name + ".groups.csv"), distinct, gvalues,
                                                 include_diagonal)
            from trendcli.transfer.heatmap import plot_heatmap

            rows, cols = averages(gvalues, include_diagonal)
            what = "mean TM over seeds" if normalize == "eq1" else "seed-mean N_t(s->t) / N_t(s->s)"
            out["groups_png"] = plot_heatmap(
                gvalues, prefix.with_name(prefix.name + ".groups.png"), distinct, row_avg=rows, col_avg=cols,
                title=f"{self.title()}, by {','.join(group_by)}", colorbar_label=what,
            )
        return out

    # growth ------------------------------------------------------------------------------------
    def extend(self, models: Iterable[TrendModel | str | Path], **kwargs: Any) -> "TransferMatrix":
        """This matrix with ``models`` added; only the new rows and columns are computed."""
        dirs = [d for d in self.model_dirs]
        if any(d is None for d in dirs):
            raise UsageError("this matrix holds in-memory models; extend it with compute_matrix(all models, previous=...)")
        settings = {
            "method": self.attack.get("method"),
            "params": self.attack.get("params"),
            "split": self.attack.get("split", "test"),
            "limit": self.attack.get("limit"),
            "batch_size": self.attack.get("batch_size"),
        }
        settings.update(kwargs)
        return compute_matrix([*dirs, *models], previous=self, **settings)


def _short(value: Any) -> str:
    """A parameter for a title: 8/255 for multiples of 1/255, else 4 significant digits."""
    if isinstance(value, float):
        if 0 < value < 1 and abs(value * 255 - round(value * 255)) < 1e-9:
            return f"{round(value * 255)}/255"
        return f"{value:.4g}"
    return str(value)


def write_matrix_csv(path: Path | str, labels: Sequence[str], values: np.ndarray, include_diagonal: bool = False) -> Path:
    """A matrix with its row and column averages as CSV: rows source, columns target, "n/a" undefined."""
    rows, cols = averages(values, include_diagonal)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source \\ target", *labels, "avg"])
        for name, row, avg in zip(labels, values, rows):
            w.writerow([name, *(_fmt(v) for v in row), _fmt(avg)])
        w.writerow(["avg", *(_fmt(v) for v in cols), ""])
    return path


# -- orchestration ---------------------------------------------------------------------------------


def run_attack(models: Any, method: str, params: dict | None, **kwargs: Any) -> Any:
    """trendcli.adversarial.generate.attack (imported on use; the one seam tests replace)."""
    from trendcli.adversarial.generate import attack

    return attack(models, method, params, **kwargs)


def _settings(method: str, params: dict | None, split: str, limit: int | None, batch_size: int | None) -> dict[str, Any]:
    return {
        "method": canonical(method),
        "params": _normalize_params(params),
        "split": split,
        "limit": limit,
        "batch_size": batch_size,
    }


def _same_settings(previous: TransferMatrix, settings: dict[str, Any]) -> bool:
    a = previous.attack
    return all(a.get(k) == v for k, v in settings.items())


def compute_matrix(
    models: Sequence[TrendModel | str | Path],
    method: str = "pgd",
    params: dict[str, Any] | None = None,
    *,
    split: str = "test",
    limit: int | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    store: str | Path = "runs/adv",
    data_dir: Path | None = None,
    previous: TransferMatrix | str | Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> TransferMatrix:
    """The transfer matrix of ``models`` under one attack (docs/method.md eq. 1).

    For each source that has a pair to compute: its adversarial set from the store (generated
    once through trendcli.adversarial.generate.attack), streamed in chunks of ``batch_size`` through the
    source itself and every target still missing (forward passes only). ``previous`` (a
    matrix or its JSON path) supplies every pair whose two models and whose settings match;
    with everything supplied, nothing is attacked or evaluated (``.cached``).
    """
    from trendcli.zoo.files import resolve_device

    t_start = time.perf_counter()
    progress = progress or NullProgress()
    if batch_size is not None and batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    if isinstance(previous, (str, Path)):
        previous = TransferMatrix.load(previous)
    dev = resolve_device(device)
    loaded = load_models(list(models), dev)
    names = _unique_names(loaded)
    check_compatible(loaded, names)
    entries = [_model_entry(m, n) for m, n in zip(loaded, names)]
    settings = _settings(method, params, split, limit, batch_size)
    k = len(loaded)

    n_c = np.full((k, k), -1, dtype=np.int64)
    n_g = np.full((k, k), -1, dtype=np.int64)
    n_t = np.full((k, k), -1, dtype=np.int64)
    clean_acc: dict[str, float] = {}
    sources: list[dict[str, Any] | None] = [None] * k
    n_images = None
    if previous is not None and not force and _same_settings(previous, settings):
        old = {_identity(e): i for i, e in enumerate(previous.models)}
        where = [old.get(_identity(e)) for e in entries]
        for s in range(k):
            for t in range(k):
                if where[s] is not None and where[t] is not None:
                    n_c[s, t] = previous.n_c[where[s], where[t]]
                    n_g[s, t] = previous.n_g[where[s], where[t]]
                    n_t[s, t] = previous.n_t[where[s], where[t]]
            if where[s] is not None:
                old_name = previous.names[where[s]]
                clean_acc[names[s]] = previous.clean_accuracy.get(old_name, float("nan"))
                src = next((d for d in previous.sources if d.get("name") == old_name), None)
                if src is not None:
                    sources[s] = {**src, "name": names[s], "reused": True}
        n_images = previous.attack.get("n_images")
    todo = [(s, [t for t in range(k) if n_c[s, t] < 0]) for s in range(k)]
    todo = [(s, ts) for s, ts in todo if ts]
    reused = int((n_c >= 0).sum())

    if todo:
        data_cache: dict = {}
        clean_cache: dict[tuple[int, str], np.ndarray] = {}
        for s, targets in todo:
            source = loaded[s]
            result = run_attack(
                source.meta.get("path") or source, method, params, split=split, limit=limit,
                batch_size=batch_size, device=device, store=store, force=force, data_dir=data_dir, progress=progress,
            )
            advset = result.advset
            data = _load_data(source.spec.dataset, split, data_dir, entries[s]["split_seed"], data_cache)
            evaluated = {i: loaded[i] for i in dict.fromkeys([s, *targets])}
            ev = evaluate_set(advset, evaluated, data, batch_size, clean_cache, progress, f"transfer from {names[s]}")
            counts = pair_counts(
                ev.clean_ok[s], ev.adv_ok[s],
                np.stack([ev.clean_ok[t] for t in targets]), np.stack([ev.adv_ok[t] for t in targets]),
            )
            n_c[s, targets], n_g[s, targets], n_t[s, targets] = counts.n_c, counts.n_g, counts.n_t
            for i in evaluated:
                clean_acc.setdefault(names[i], float(ev.clean_ok[i].mean()) if len(ev.labels) else float("nan"))
            if n_images is not None and n_images != len(ev.labels):
                raise TrendError(
                    f"the adversarial set of {names[s]} holds {len(ev.labels)} images, the others {n_images}; "
                    "rerun with --force"
                )
            n_images = len(ev.labels)
            sources[s] = {
                "name": names[s],
                "store_key": result.key,
                "store_path": str(getattr(advset, "path", "")) or None,
                "cached": bool(result.cached),
                "attack_seconds": round(float(result.seconds), 3),
                "eval_seconds": round(ev.seconds, 3),
                "success_rate": float(result.success_rate),
                "advset_spec": _jsonable(getattr(advset, "spec", None)),
            }
            progress.log(
                f"{names[s]}: {'cached' if result.cached else 'generated'} set ({result.key[:12]}), "
                f"{len(targets)} target(s) in {ev.seconds:.1f} s"
            )
    for s in range(k):
        if sources[s] is None:  # a source whose every pair was reused, from a matrix without source records
            sources[s] = {"name": names[s], "store_key": None, "reused": True}

    return TransferMatrix(
        names=names,
        model_dirs=[e["path"] for e in entries],
        n_c=n_c,
        n_g=n_g,
        n_t=n_t,
        clean_accuracy={n: clean_acc.get(n, float("nan")) for n in names},
        models=entries,
        attack={**settings, "n_images": n_images, "dataset": loaded[0].spec.dataset},
        sources=[s for s in sources if s is not None],
        computed_pairs=k * k - reused,
        reused_pairs=reused,
        seconds=time.perf_counter() - t_start,
    )


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return str(value)
