"""Transferability heatmaps in the paper's style: rows = source, columns = target, the value
written in every cell, row averages in a column on the right and column averages in a row
below (docs/method.md eq. 1, "Layout"). Undefined cells are grey and read "n/a".
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["plot_heatmap", "short_labels"]

NA_COLOR = "#d0d0d0"


def short_labels(names: Sequence[str]) -> list[str]:
    """Drop the id parts every name shares (``smallcnn.fp-w32-a32.sgd.s0`` -> ``fp.s0``).

    Falls back to the full names when what is left would be empty or ambiguous.
    """
    names = list(names)
    if len(names) < 2:
        return names
    tokens = [re.split(r"[.\-@]", n) for n in names]
    shared = set(tokens[0]).intersection(*map(set, tokens[1:]))
    short = [".".join(t for t in toks if t not in shared) for toks in tokens]
    if any(not s for s in short) or len(set(short)) != len(short):
        return names
    return short


def _cell_text(value: float, fmt: str) -> str:
    return "n/a" if not np.isfinite(value) else format(value, fmt)


def _draw(ax, values: np.ndarray, cmap, vmin: float, vmax: float, fmt: str, fontsize: float,
          marked: np.ndarray | None = None):
    """One block of cells: colours, grey for undefined, the value written in each cell (with a
    ``*`` where ``marked``)."""
    masked = np.ma.masked_invalid(values)
    image = ax.imshow(masked, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    span = (vmax - vmin) or 1.0
    for (i, j), v in np.ndenumerate(values):
        dark = np.isfinite(v) and (v - vmin) / span > 0.6
        star = "*" if marked is not None and marked[i, j] else ""
        ax.text(j, i, _cell_text(v, fmt) + star, ha="center", va="center", fontsize=fontsize,
                color="white" if dark else ("#555555" if not np.isfinite(v) else "black"))
    ax.set_xticks(np.arange(values.shape[1] + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(values.shape[0] + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=1.0)
    ax.tick_params(which="minor", length=0)
    return image


def plot_heatmap(
    values: np.ndarray,
    path: Path | str,
    row_labels: Sequence[str],
    col_labels: Sequence[str] | None = None,
    *,
    row_avg: np.ndarray | None = None,
    col_avg: np.ndarray | None = None,
    title: str | None = None,
    fmt: str = ".2f",
    cmap: str = "Blues",
    vmin: float = 0.0,
    vmax: float | None = None,
    colorbar_label: str = "TM(source -> target)",
    dpi: int = 150,
    marked: np.ndarray | None = None,
    marked_note: str | None = None,
) -> Path:
    """Write a PNG heatmap of ``values`` [S, T] (NaN = undefined) with averages beside it.

    ``marked`` (bool [S, T]): cells written with a ``*`` (e.g. a 95 % interval wider than a
    threshold); ``marked_note`` is added to the title to say what the ``*`` means.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib import colormaps

    values = np.asarray(values, dtype=np.float64)
    col_labels = list(col_labels) if col_labels is not None else list(row_labels)
    s, t = values.shape
    if len(row_labels) != s or len(col_labels) != t:
        raise ValueError(f"{len(row_labels)} row / {len(col_labels)} column labels for a {s}x{t} matrix")
    if marked is not None:
        marked = np.asarray(marked, dtype=bool)
        if marked.shape != values.shape:
            raise ValueError(f"marked must have the matrix's shape {values.shape}, got {marked.shape}")
        if marked_note and marked.any():
            title = f"{title}; {marked_note}" if title else marked_note
    finite = values[np.isfinite(values)]
    if vmax is None:
        vmax = max(1.0, float(finite.max())) if finite.size else 1.0
    colours = colormaps[cmap].with_extremes(bad=NA_COLOR)

    cell = 0.62 if max(s, t) <= 12 else 0.42
    fontsize = 8 if max(s, t) <= 12 else 6
    label_room = 0.09 * max(len(x) for x in list(row_labels) + col_labels) + 0.6
    width = label_room + cell * (t + 1.6) + 1.2
    if title:  # wrap to the figure's width (about 0.6 em per character)
        title = textwrap.fill(title, width=max(20, int(width * 72 / ((fontsize + 3) * 0.6))))
    top_room = 0.35 + (0.25 * (title.count("\n") + 1) + 0.15 if title else 0)
    height = label_room + cell * (s + 1.6) + top_room
    fig = plt.figure(figsize=(width, height))
    grid = fig.add_gridspec(
        2, 3, width_ratios=[t, 1, 0.35], height_ratios=[s, 1], wspace=0.06, hspace=0.06,
        left=label_room / width, right=1 - 0.9 / width, bottom=label_room / height,
        top=1 - top_room / height,
    )
    ax = fig.add_subplot(grid[0, 0])
    image = _draw(ax, values, colours, vmin, vmax, fmt, fontsize, marked)
    ax.tick_params(axis="x", bottom=False, labelbottom=False)
    ax.set_yticks(range(s), labels=row_labels, fontsize=fontsize + 1)
    ax.set_ylabel("source")
    if title:
        fig.suptitle(title, fontsize=fontsize + 3, y=1 - 0.12 / height, va="top")

    ax_row = fig.add_subplot(grid[0, 1])
    if row_avg is not None:
        _draw(ax_row, np.asarray(row_avg, dtype=np.float64).reshape(s, 1), colours, vmin, vmax, fmt, fontsize)
    ax_row.set_xticks([0], labels=["avg"], fontsize=fontsize + 1)
    ax_row.xaxis.tick_top()
    ax_row.tick_params(axis="y", labelleft=False, length=0)
    if row_avg is None:
        ax_row.set_visible(False)

    ax_col = fig.add_subplot(grid[1, 0])
    if col_avg is not None:
        _draw(ax_col, np.asarray(col_avg, dtype=np.float64).reshape(1, t), colours, vmin, vmax, fmt, fontsize)
        ax_col.set_yticks([0], labels=["avg"], fontsize=fontsize + 1)
        ax_col.set_xticks(range(t), labels=col_labels, rotation=45, ha="right", fontsize=fontsize + 1)
        ax_col.set_xlabel("target")
    else:
        ax_col.set_visible(False)
        ax.set_xticks(range(t), labels=col_labels, rotation=45, ha="right", fontsize=fontsize + 1)
        ax.set_xlabel("target")

    cax = fig.add_subplot(grid[0, 2])
    fig.colorbar(image, cax=cax, label=colorbar_label)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    plt.close(fig)
    return path
