"""PNG plots of ensemble evaluations, after the paper's figures 6, 8 and 9 (matplotlib, Agg).

Each function takes plain numbers (None = not measured) and writes one PNG; none computes.
``intervals`` (optional, same keys and lengths as the values): each value's 95 % interval as
(lo, hi), drawn as an error bar; None (or a missing key) draws none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

__all__ = ["plot_accuracy_bars", "plot_accuracy_vs_size", "plot_attack_success"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path, dpi: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    _pyplot().close(fig)
    return path


def _nan(values: Sequence[float | None]) -> list[float]:
    return [float("nan") if v is None else float(v) for v in values]


Intervals = Mapping[str, Sequence[Sequence[float | None] | None]]


def _yerr(values: Sequence[float | None], intervals: Sequence[Sequence[float | None] | None] | None):
    """matplotlib's asymmetric yerr [[below], [above]] from (lo, hi) per value; None without intervals."""
    if intervals is None:
        return None
    if len(intervals) != len(values):
        raise ValueError(f"{len(intervals)} intervals for {len(values)} values")
    below, above = [], []
    for v, iv in zip(_nan(values), intervals):
        lo, hi = (iv if iv is not None else (None, None))
        below.append(float("nan") if lo is None or v != v else max(0.0, v - float(lo)))
        above.append(float("nan") if hi is None or v != v else max(0.0, float(hi) - v))
    return [below, above]


def plot_attack_success(
    eps: Sequence[float],
    success: Mapping[str, Sequence[float | None]],
    path: str | Path,
    title: str = "ensemble attack success vs eps (cf. paper fig. 6)",
    dpi: int = 130,
    intervals: Intervals | None = None,
) -> Path:
    """Success rate (1 - adversarial accuracy of the vote) against eps, one line per attack,
    with 95 % error bars from ``intervals``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    markers = "osD^vx*+"
    for i, (label, values) in enumerate(success.items()):
        ax.errorbar(list(eps), _nan(values), yerr=_yerr(values, (intervals or {}).get(label)),
                    marker=markers[i % len(markers)], label=label, capsize=3)
    ax.set_xlabel("eps (L-inf, [0, 1] pixel scale)")
    ax.set_ylabel("attack success (1 - adversarial accuracy)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    return _save(fig, path, dpi)


def plot_accuracy_bars(
    panels: Sequence[tuple[str, Sequence[str], Mapping[str, Sequence[float | None]]]],
    path: str | Path,
    title: str = "accuracy of the ensemble and its members (cf. paper fig. 8)",
    dpi: int = 130,
    intervals: Sequence[Intervals | None] | None = None,
) -> Path:
    """Grouped bars, one panel per (panel title, group labels, {series: value per group});
    ``intervals[panel]``: that panel's 95 % error bars by series."""
    import numpy as np

    plt = _pyplot()
    n = max(len(panels), 1)
    groups = max((len(g) for _, g, _ in panels), default=1)
    fig, axes = plt.subplots(1, n, figsize=(max(3.2, 0.9 * groups + 1.2) * n, 3.8), squeeze=False, sharey=True)
    for p, (ax, (panel_title, labels, series)) in enumerate(zip(axes[0], panels)):
        x = np.arange(len(labels))
        width = 0.8 / max(len(series), 1)
        errs = (intervals[p] if intervals is not None and p < len(intervals) else None) or {}
        for i, (name, values) in enumerate(series.items()):
            ax.bar(x + (i - (len(series) - 1) / 2) * width, _nan(values), width, label=name,
                   yerr=_yerr(values, errs.get(name)), capsize=2, error_kw={"elinewidth": 0.8})
        ax.set_xticks(x, list(labels), rotation=30, ha="right", fontsize=7)
        ax.set_ylim(0, 1.0)
        ax.set_title(panel_title, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("accuracy")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return _save(fig, path, dpi)


def plot_accuracy_vs_size(
    sizes: Sequence[int],
    series: Mapping[str, Sequence[float | None]],
    path: str | Path,
    tick_labels: Sequence[str] | None = None,
    title: str = "accuracy vs ensemble size (cf. paper fig. 9)",
    dpi: int = 130,
    intervals: Intervals | None = None,
) -> Path:
    """Clean and adversarial accuracy against the number of members, one line per series,
    with 95 % error bars from ``intervals``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    for label, values in series.items():
        ax.errorbar(list(sizes), _nan(values), yerr=_yerr(values, (intervals or {}).get(label)), marker="o", label=label,
                    linestyle="--" if label == "clean" else "-", capsize=3)
    ax.set_xticks(list(sizes), list(tick_labels) if tick_labels is not None else [str(s) for s in sizes], fontsize=7)
    ax.set_xlabel("ensemble members (prefixes of the design order)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    return _save(fig, path, dpi)
