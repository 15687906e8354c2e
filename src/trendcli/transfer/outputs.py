"""The files of a transfer matrix: PREFIX.json, PREFIX.csv, PREFIX.png, and with seed groups
PREFIX.groups.csv and PREFIX.groups.png (docs/formats.md). One place names them: :func:`matrix_paths`.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import TYPE_CHECKING, Hashable, Sequence

import numpy as np

from trendcli.fsio import check_output, writable_dir, write_json_atomic
from trendcli.transfer.counts import averages, figure_normalization

if TYPE_CHECKING:
    from trendcli.transfer.matrix import TransferMatrix

__all__ = [
    "check_matrix_out",
    "matrix_paths",
    "matrix_prefix",
    "plot_matrix",
    "write_matrix_csv",
    "write_matrix_files",
    "write_matrix_json",
    "write_pairs_csv",
    "write_table_csv",
    "wide_intervals",
]


def _fmt(value: float, fmt: str = ".4f") -> str:
    return "n/a" if not math.isfinite(value) else format(value, fmt)


def matrix_prefix(out: Path | str) -> Path:
    """OUT without a .json/.csv/.png suffix: ``runs/mx/pgd.json`` and ``runs/mx/pgd`` name one matrix."""
    out = Path(out)
    return out.with_suffix("") if out.suffix in (".json", ".csv", ".png") else out


def matrix_paths(prefix: Path | str, group_by: Sequence[str] | None = None) -> dict[str, Path]:
    """The files a matrix stage writes under ``prefix``, by kind."""
    prefix = matrix_prefix(prefix)
    kinds = {"json": ".json", "csv": ".csv", "pairs_csv": ".pairs.csv", "png": ".png"}
    if group_by:
        kinds.update({"groups_csv": ".groups.csv", "groups_stats_csv": ".groups.stats.csv", "groups_png": ".groups.png"})
    return {kind: prefix.with_name(prefix.name + ext) for kind, ext in kinds.items()}


def _is_matrix(path: Path) -> bool:
    from trendcli.errors import TrendError
    from trendcli.transfer.matrix import TransferMatrix

    try:
        TransferMatrix.load(path)
    except TrendError:
        return False
    return True


def check_matrix_out(prefix: Path | str, group_by: Sequence[str] | None = None) -> dict[str, Path]:
    """Refuse the matrix files under ``prefix`` before any work when trendcli did not write them.

    PREFIX.json may be absent or a trendcli matrix (the stage extends it; no force needed). The
    other files are trendcli's only beside a trendcli PREFIX.json (it is written first); a
    directory in any place, or one of them without that JSON, is OutputExistsError.
    """
    paths = matrix_paths(prefix, group_by)
    ours = check_output(paths["json"], "matrix JSON", _is_matrix, force=True)
    for kind, path in paths.items():
        if kind != "json":
            check_output(path, f"matrix {kind.replace('_', ' ')} file", lambda _p: ours, force=True)
    writable_dir(paths["json"].parent, "matrix files")
    return paths


def write_table_csv(path: Path | str, labels: Sequence[str], values: np.ndarray, include_diagonal: bool = False) -> Path:
    """A matrix with its row and column averages as CSV: rows source, columns target, "n/a" undefined."""
    rows, cols = averages(values, include_diagonal)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source \\ target", *labels, "avg"])
        for name, row, avg in zip(labels, values, rows):
            w.writerow([name, *(_fmt(v) for v in row), _fmt(avg)])
        w.writerow(["avg", *(_fmt(v) for v in cols), ""])
    tmp.replace(path)
    return path


def write_matrix_json(mx: "TransferMatrix", path: Path | str, include_diagonal: bool = False, normalize: str = "eq1",
                      group_by: Sequence[str] | None = None) -> Path:
    """The matrix as JSON (atomically), with seed groups when ``group_by`` is given."""
    path = Path(path)
    write_json_atomic(path, mx.to_dict(include_diagonal, normalize, group_by))
    return path


def write_matrix_csv(mx: "TransferMatrix", path: Path | str, include_diagonal: bool = False, normalize: str = "eq1",
                     groups: Sequence[Hashable] | None = None, labels: Sequence[str] | None = None) -> Path:
    """The displayed matrix (TM or the figure normalization) with its averages as CSV."""
    labels = list(labels) if labels is not None else list(mx.names)
    return write_table_csv(path, labels, mx.values(normalize, groups), include_diagonal)


def wide_intervals(mx: "TransferMatrix", threshold: float) -> np.ndarray:
    """bool [k, k]: TM entries whose Wilson 95 % interval (N_t of N_g) is wider than ``threshold``
    (undefined entries are not marked)."""
    from trendcli.stats import wilson_intervals

    if not 0 < threshold <= 1:
        raise ValueError(f"wide_interval must lie in (0, 1], got {threshold}")
    iv = wilson_intervals(mx.n_t, mx.n_g)
    width = iv[..., 1] - iv[..., 0]
    return np.isfinite(width) & (width > threshold)


def plot_matrix(mx: "TransferMatrix", path: Path | str, include_diagonal: bool = False, normalize: str = "eq1",
                groups: Sequence[Hashable] | None = None, labels: Sequence[str] | None = None,
                title: str | None = None, wide_interval: float | None = None) -> Path:
    """A paper-style heatmap PNG of TM (or the figure normalization) with averages beside.

    ``wide_interval``: mark (``*``) the TM entries whose 95 % interval is wider than this.
    """
    from trendcli.transfer.heatmap import plot_heatmap, short_labels

    values = mx.values(normalize, groups)
    rows, cols = averages(values, include_diagonal)
    labels = list(labels) if labels is not None else short_labels(mx.names)
    what = "TM(source -> target)" if normalize == "eq1" else "N_t(s->t) / N_t(s->s)"
    marked = None
    if wide_interval is not None and values.shape == mx.n_g.shape:
        marked = wide_intervals(mx, wide_interval)
    return plot_heatmap(values, path, labels, row_avg=rows, col_avg=cols, title=title or mx.title(), colorbar_label=what,
                        marked=marked,
                        marked_note=None if wide_interval is None else f"* = 95 % interval of TM wider than {wide_interval:g}")


def write_pairs_csv(mx: "TransferMatrix", path: Path | str) -> Path:
    """One row per ordered pair: counts of eq. 1, TM and its Wilson 95 % interval in their own columns."""
    from trendcli.stats import wilson_intervals

    iv = wilson_intervals(mx.n_t, mx.n_g)
    tm = mx.tm
    rows = [["source", "target", "n_c", "n_g", "n_t", "tm", "tm_lo", "tm_hi"]]
    for s, src in enumerate(mx.names):
        for t, tgt in enumerate(mx.names):
            rows.append([src, tgt, int(mx.n_c[s, t]), int(mx.n_g[s, t]), int(mx.n_t[s, t]),
                         _fmt(tm[s, t]), _fmt(iv[s, t, 0]), _fmt(iv[s, t, 1])])
    return _write_rows(path, rows)


def _write_rows(path: Path | str, rows: list[list]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    tmp.replace(path)
    return path


def _write_groups(mx: "TransferMatrix", paths: dict[str, Path], include_diagonal: bool, normalize: str,
                  group_by: Sequence[str]) -> None:
    """PREFIX.groups.csv and PREFIX.groups.png: the matrix between seed groups."""
    from trendcli.transfer.heatmap import plot_heatmap

    keys = mx.group_keys(group_by)
    distinct = list(dict.fromkeys(keys))
    values = mx.group_stats(group_by).tm_mean if normalize == "eq1" else figure_normalization(mx.n_t, keys)
    write_table_csv(paths["groups_csv"], distinct, values, include_diagonal)
    st = mx.group_stats(group_by)
    rows = [["source_group", "target_group", "pairs", "tm_mean", f"tm_std_ddof{st.ddof}", "tm_pooled", "tm_lo", "tm_hi"]]
    for a, ga in enumerate(st.groups):
        for b, gb in enumerate(st.groups):
            rows.append([ga, gb, int(st.pairs[a, b]), _fmt(st.tm_mean[a, b]), _fmt(st.tm_std[a, b]),
                         _fmt(st.tm_pooled[a, b]), _fmt(st.tm_interval[a, b, 0]), _fmt(st.tm_interval[a, b, 1])])
    _write_rows(paths["groups_stats_csv"], rows)
    rows, cols = averages(values, include_diagonal)
    what = "mean TM over seeds" if normalize == "eq1" else "seed-mean N_t(s->t) / N_t(s->s)"
    plot_heatmap(values, paths["groups_png"], distinct, row_avg=rows, col_avg=cols,
                 title=f"{mx.title()}, by {','.join(group_by)}", colorbar_label=what)


def write_matrix_files(mx: "TransferMatrix", prefix: Path | str, include_diagonal: bool = False, normalize: str = "eq1",
                       group_by: Sequence[str] | None = None, wide_interval: float | None = None) -> dict[str, Path]:
    """Every file of :func:`matrix_paths`; an unknown ``group_by`` field fails before any is written.
    ``wide_interval``: see :func:`plot_matrix`."""
    if group_by:
        mx.group_keys(group_by)
    paths = matrix_paths(prefix, group_by)
    write_matrix_json(mx, paths["json"], include_diagonal, normalize, group_by)
    write_matrix_csv(mx, paths["csv"], include_diagonal, normalize)
    write_pairs_csv(mx, paths["pairs_csv"])
    plot_matrix(mx, paths["png"], include_diagonal, normalize, wide_interval=wide_interval)
    if group_by:
        _write_groups(mx, paths, include_diagonal, normalize, group_by)
    return paths

