"""Transferability counting: C, N_g, N_t and TM from predictions; averages, symmetrization,
the authors' figure normalization and seed statistics. Pure numpy, no I/O.

All formulas: docs/method.md, "Transferability metric (eq. 1)".
Undefined values (N_g = 0, an empty group) are NaN here; the writers turn them into
null (JSON) or "n/a" (CSV, PNG).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Sequence

import numpy as np

from trendcli.errors import UsageError
from trendcli.stats import ratio

__all__ = [
    "GroupStats",
    "TransferCounts",
    "averages",
    "figure_normalization",
    "group_stats",
    "pair_counts",
    "per_image_arrays",
    "symmetrize",
    "tm_bootstrap",
    "tm_from_counts",
    "transfer_counts",
]


@dataclass(frozen=True)
class TransferCounts:
    """The counts of eq. 1 for one (source, target) pair, or arrays of them."""

    n_c: np.ndarray | int
    n_g: np.ndarray | int
    n_t: np.ndarray | int

    @property
    def tm(self) -> np.ndarray | float:
        """TM = N_t / N_g, NaN where N_g = 0 (docs/method.md eq. 1)."""
        out = ratio(self.n_t, self.n_g)
        return float(out) if np.ndim(out) == 0 else out


def pair_counts(
    src_clean_ok: np.ndarray, src_adv_ok: np.ndarray, tgt_clean_ok: np.ndarray, tgt_adv_ok: np.ndarray
) -> TransferCounts:
    """C, N_g, N_t from per-image correctness (bool [N], or [T, N] for several targets).

    C = src_clean_ok & tgt_clean_ok;  N_g = |C & ~src_adv_ok|;  N_t = |C & ~src_adv_ok & ~tgt_adv_ok|
    (docs/method.md eq. 1). The source arrays broadcast against stacked targets.
    """
    src_clean_ok, src_adv_ok = np.asarray(src_clean_ok, bool), np.asarray(src_adv_ok, bool)
    tgt_clean_ok, tgt_adv_ok = np.asarray(tgt_clean_ok, bool), np.asarray(tgt_adv_ok, bool)
    n = src_clean_ok.shape[-1]
    for name, arr in (("source adv", src_adv_ok), ("target clean", tgt_clean_ok), ("target adv", tgt_adv_ok)):
        if arr.shape[-1] != n:
            raise UsageError(f"{name} predictions cover {arr.shape[-1]} images, the source's clean ones {n}")
    common = src_clean_ok & tgt_clean_ok
    generated = common & ~src_adv_ok
    transferred = generated & ~tgt_adv_ok
    return TransferCounts(
        n_c=common.sum(-1).astype(np.int64),
        n_g=generated.sum(-1).astype(np.int64),
        n_t=transferred.sum(-1).astype(np.int64),
    )


def transfer_counts(
    labels: np.ndarray, src_clean: np.ndarray, src_adv: np.ndarray, tgt_clean: np.ndarray, tgt_adv: np.ndarray
) -> TransferCounts:
    """C, N_g, N_t from predicted labels (int [N], targets may be [T, N]) and true labels [N]."""
    labels = np.asarray(labels)
    return pair_counts(
        np.asarray(src_clean) == labels,
        np.asarray(src_adv) == labels,
        np.asarray(tgt_clean) == labels,
        np.asarray(tgt_adv) == labels,
    )


def tm_from_counts(n_g: np.ndarray, n_t: np.ndarray, square: bool = True) -> np.ndarray:
    """TM[s, t] = N_t / N_g (NaN where N_g = 0); on a square matrix TM(s->s) = 1 where defined.

    The diagonal is 1 by definition (docs/method.md eq. 1), but a source that was never fooled
    (N_g(s->s) = 0) keeps an undefined diagonal: 1 would claim a transfer that never happened.
    """
    tm = ratio(n_t, n_g)
    if square and tm.ndim == 2 and tm.shape[0] == tm.shape[1]:
        diag = np.diagonal(tm).copy()
        np.fill_diagonal(tm, np.where(np.isnan(diag), np.nan, 1.0))
    return tm


def _nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    """Mean over ``axis`` skipping NaN; NaN (no warning) where nothing is left."""
    ok = ~np.isnan(values)
    total = np.where(ok, values, 0.0).sum(axis)
    return ratio(total, ok.sum(axis))


def averages(matrix: np.ndarray, include_diagonal: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Row (per source) and column (per target) averages, skipping undefined entries.

    The diagonal is left out unless ``include_diagonal`` (the authors' printed averages
    include it; docs/method.md eq. 1, "Layout"). A row with nothing defined averages to NaN.
    """
    m = np.array(matrix, dtype=np.float64)
    if m.ndim != 2:
        raise UsageError(f"averages need a 2-d matrix, got shape {m.shape}")
    if not include_diagonal:
        k = min(m.shape)
        m[np.arange(k), np.arange(k)] = np.nan
    return _nanmean(m, 1), _nanmean(m, 0)


def symmetrize(tm: np.ndarray) -> np.ndarray:
    """TM_sym(a, b) = (TM(a->b) + TM(b->a)) / 2; undefined if either direction is (docs/method.md eq. 1)."""
    tm = np.asarray(tm, dtype=np.float64)
    if tm.ndim != 2 or tm.shape[0] != tm.shape[1]:
        raise UsageError(f"symmetrization needs a square matrix, got shape {tm.shape}")
    return (tm + tm.T) / 2


def _group_index(groups: Sequence[Hashable]) -> tuple[list[Hashable], np.ndarray]:
    """Distinct group keys in first-seen order, and each member's group number."""
    keys: list[Hashable] = []
    where: dict[Hashable, int] = {}
    idx = []
    for g in groups:
        if g not in where:
            where[g] = len(keys)
            keys.append(g)
        idx.append(where[g])
    return keys, np.asarray(idx, dtype=np.int64)


def _pair_mask(idx: np.ndarray, gs: int, gt: int) -> np.ndarray:
    """Ordered pairs (s, t) with s in group gs, t in group gt, s != t.

    Within one group that is "each seed as source against every other seed" (table II); a
    one-member group falls back to its self pair, so that a plain model keeps its diagonal.
    """
    mask = (idx[:, None] == gs) & (idx[None, :] == gt)
    if gs == gt:
        off = mask & ~np.eye(len(idx), dtype=bool)
        if off.any():
            return off
    return mask


def figure_normalization(n_t: np.ndarray, groups: Sequence[Hashable] | None = None) -> np.ndarray:
    """The authors' heatmap values: seed-mean N_t(s->t) / seed-mean N_t(s->s).

    N_t(s->s) counts the source-correct images that fool s (C of a self pair is the
    source-correct set). Without ``groups`` every model is its own group:
    F[s, t] = N_t(s->t) / N_t(s->s). With groups (e.g. seeds of one configuration):
    F[G, H] = mean_{s in G, t in H, s != t} N_t(s->t) / mean_{s in G} N_t(s->s)
    (docs/method.md eq. 1, last items). NaN where the denominator is 0.
    """
    n_t = np.asarray(n_t, dtype=np.float64)
    if n_t.ndim != 2 or n_t.shape[0] != n_t.shape[1]:
        raise UsageError(f"figure normalization needs a square count matrix, got shape {n_t.shape}")
    if groups is None:
        groups = list(range(len(n_t)))
    keys, idx = _group_index(groups)
    self_nt = np.diagonal(n_t)
    out = np.full((len(keys), len(keys)), np.nan)
    for a in range(len(keys)):
        den = self_nt[idx == a].mean()
        for b in range(len(keys)):
            num = n_t[_pair_mask(idx, a, b)].mean()
            out[a, b] = ratio(num, den)
    return out


@dataclass(frozen=True)
class GroupStats:
    """Mean and std over the ordered model pairs of each (source group, target group).

    Arrays are [G, G]. ``ddof`` 0 (the default) divides by the number of pairs, as the
    authors' table II does; ddof 1 is the sample std (NaN with one pair). ``tm_pooled`` is
    sum N_t / sum N_g over the pairs, ``tm_interval`` [G, G, 2] its Wilson 95 % interval
    (docs/method.md, "Seed statistics").
    """

    groups: list[Hashable]
    members: list[list[int]]
    pairs: np.ndarray
    n_g_mean: np.ndarray
    n_g_std: np.ndarray
    n_t_mean: np.ndarray
    n_t_std: np.ndarray
    tm_mean: np.ndarray
    tm_std: np.ndarray
    tm_pooled: np.ndarray | None = None
    tm_interval: np.ndarray | None = None
    ddof: int = 0


def _mean_std(values: np.ndarray, ddof: int = 0) -> tuple[float, float]:
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    std = float(values.std(ddof=ddof)) if len(values) > ddof else float("nan")
    return float(values.mean()), std


def group_stats(n_g: np.ndarray, n_t: np.ndarray, tm: np.ndarray, groups: Sequence[Hashable],
                ddof: int = 0) -> GroupStats:
    """Seed statistics (table II): mean +- std of N_g, N_t and TM over ordered pairs.

    For a group with itself: each member as source against every other member as target
    (10 seeds -> 90 pairs; docs/method.md eq. 1, "Seed statistics"). Between two groups: every
    source of one against every target of the other (the authors' table III). Undefined TM
    values are skipped. ``ddof``: 0 = the authors' std (divide by the number of pairs), 1 = sample.
    """
    from trendcli.stats import wilson_interval

    if ddof not in (0, 1):
        raise UsageError(f"ddof must be 0 (the authors' std) or 1 (sample std), got {ddof}")
    n_g, n_t, tm = (np.asarray(a, dtype=np.float64) for a in (n_g, n_t, tm))
    if not (n_g.shape == n_t.shape == tm.shape) or n_g.ndim != 2 or n_g.shape[0] != n_g.shape[1]:
        raise UsageError(f"group statistics need square matrices of one shape, got {n_g.shape}, {n_t.shape}, {tm.shape}")
    if len(groups) != len(n_g):
        raise UsageError(f"{len(groups)} group keys for {len(n_g)} models")
    keys, idx = _group_index(groups)
    k = len(keys)
    arrays = {name: np.full((k, k), np.nan) for name in ("n_g_mean", "n_g_std", "n_t_mean", "n_t_std", "tm_mean", "tm_std")}
    pairs = np.zeros((k, k), dtype=np.int64)
    pooled = np.full((k, k), np.nan)
    interval = np.full((k, k, 2), np.nan)
    for a in range(k):
        for b in range(k):
            mask = _pair_mask(idx, a, b)
            pairs[a, b] = int(mask.sum())
            for name, values in (("n_g", n_g), ("n_t", n_t), ("tm", tm)):
                mean, std = _mean_std(values[mask], ddof)
                arrays[f"{name}_mean"][a, b] = mean
                arrays[f"{name}_std"][a, b] = std
            sum_g, sum_t = int(n_g[mask].sum()), int(n_t[mask].sum())
            if sum_g > 0:
                pooled[a, b] = sum_t / sum_g
                interval[a, b] = wilson_interval(sum_t, sum_g)
    members = [np.flatnonzero(idx == a).tolist() for a in range(k)]
    return GroupStats(groups=keys, members=members, pairs=pairs, **arrays, tm_pooled=pooled, tm_interval=interval,
                      ddof=ddof)


def tm_bootstrap(clean_ok: np.ndarray, adv_ok: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """TM matrices [B, k, k] recomputed on bootstrap resamples of the images.

    ``clean_ok`` [k, N]: each model's per-image clean correctness; ``adv_ok`` [k, k, N]:
    adv_ok[s, t] = target t correct on source s's adversarial image (adv_ok[s, s]: the source
    itself); ``weights`` [B, N] from trendcli.stats.bootstrap_weights. Per replicate, N_g and
    N_t of eq. 1 are weighted sums over images; TM = N_t / N_g (NaN where N_g = 0). Rows
    whose outcomes are missing may be NaN-free False: mask them out before.
    """
    clean_ok = np.asarray(clean_ok, dtype=bool)
    adv_ok = np.asarray(adv_ok, dtype=bool)
    k, n = clean_ok.shape
    if adv_ok.shape != (k, k, n) or np.shape(weights)[-1] != n:
        raise UsageError(f"per-image outcomes must be [k, N] and [k, k, N] with one weight per image, got "
                         f"{clean_ok.shape}, {adv_ok.shape}, {np.shape(weights)}")
    fooled = ~adv_ok[np.arange(k), np.arange(k)]  # [k, N]: the source's own attack succeeded
    generated = clean_ok[:, None, :] & clean_ok[None, :, :] & fooled[:, None, :]
    transferred = generated & ~adv_ok
    w = np.asarray(weights, dtype=np.float64)
    n_g = w @ generated.reshape(k * k, n).T.astype(np.float64)
    n_t = w @ transferred.reshape(k * k, n).T.astype(np.float64)
    return ratio(n_t, n_g).reshape(-1, k, k)


def per_image_arrays(names: Sequence[str], per_image: dict | None) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(clean_ok [k, N], adv_ok [k, k, N], known [k, k]) from a matrix's ``per_image`` record.

    ``per_image``: ``{"clean_ok": {model: bits}, "adv_ok": {source: {target: bits}}}``
    (trendcli.stats.encode_bits strings). ``known[s, t]`` is False where the pair's outcomes (or
    the source's own) are missing; those adv_ok rows are all True (nothing counted). None when
    a model's clean outcomes are missing.
    """
    from trendcli.stats import decode_bits

    clean = (per_image or {}).get("clean_ok") or {}
    adv = (per_image or {}).get("adv_ok") or {}
    if not clean or not all(n in clean for n in names):
        return None
    c = np.stack([decode_bits(clean[n]) for n in names])
    k, n = c.shape
    a = np.ones((k, k, n), dtype=bool)
    known = np.zeros((k, k), dtype=bool)
    for s, src in enumerate(names):
        row = adv.get(src) or {}
        if row.get(src) is None or len(row[src]) != n:
            continue
        for t, tgt in enumerate(names):
            bits = row.get(tgt)
            if bits is not None and len(bits) == n:
                a[s, t] = decode_bits(bits)
                known[s, t] = True
    return c, a, known
