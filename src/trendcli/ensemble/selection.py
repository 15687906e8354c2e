"""TREND design: the K models whose mean pairwise symmetrized transferability is lowest.

score(E) = mean over pairs {a, b} in E, a != b, of TM_sym(a, b),
TM_sym(a, b) = (TM(a->b) + TM(b->a)) / 2
(docs/method.md, "Ensemble prediction and TREND design"; paper section V-B).

Search: exhaustive over all subsets when there are at most ``exhaustive_limit`` of them, else
a multi-start greedy construction followed by swap local search. Both are deterministic.

Undefined entries (NaN: TM is undefined when a source generated no adversarial image, N_g = 0)
follow ``nan_policy``:
- ``worst`` (default): an undefined pair counts as TM_sym = 1.0, the maximum, so a set is never
  preferred because its transferability could not be measured;
- ``skip``: the mean runs over the defined pairs only (a set with none scores NaN, ranked last).
Each candidate reports how many of its pairs were undefined.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from trendcli.errors import TrendError, UsageError
from trendcli.stats import ratio
from trendcli.fsio import check_output, writable_dir

NAN_POLICIES = ("worst", "skip")
EXHAUSTIVE_LIMIT = 20000


@dataclass(frozen=True)
class Candidate:
    """One candidate ensemble: member names in design order, its score and undefined-pair count."""

    members: tuple[str, ...]
    indices: tuple[int, ...]
    score: float
    undefined_pairs: int
    mean_clean_accuracy: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "members": list(self.members),
            "score": None if math.isnan(self.score) else self.score,
            "undefined_pairs": self.undefined_pairs,
            "mean_clean_accuracy": self.mean_clean_accuracy,
        }


@dataclass
class DesignResult:
    """Ranked candidates (best first) and how they were found."""

    candidates: list[Candidate]
    method: str  # exhaustive | greedy
    size: int
    pool: list[str]
    required: list[str]
    subsets_total: int
    subsets_scored: int
    nan_policy: str
    clean_accuracy: dict[str, float] = field(default_factory=dict)
    model_dirs: dict[str, str] = field(default_factory=dict)
    matrix: str | None = None

    @property
    def best(self) -> Candidate:
        return self.candidates[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "size": self.size,
            "pool": self.pool,
            "required": self.required,
            "subsets_total": self.subsets_total,
            "subsets_scored": self.subsets_scored,
            "nan_policy": self.nan_policy,
            "matrix": self.matrix,
            "candidates": [c.to_dict() for c in self.candidates],
            "clean_accuracy": self.clean_accuracy,
        }


def _weights(tm_sym: np.ndarray, nan_policy: str) -> tuple[np.ndarray, np.ndarray]:
    """(W, D): W = TM_sym with NaN replaced per policy (0 under skip), D = 1 where defined."""
    defined = ~np.isnan(tm_sym)
    if nan_policy == "worst":
        return np.where(defined, tm_sym, 1.0), np.ones_like(tm_sym)
    return np.where(defined, tm_sym, 0.0), defined.astype(float)


def subset_scores(combos: np.ndarray, w: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores [M] and undefined-pair counts [M] of subsets given as index rows ``combos`` [M, K]."""
    k = combos.shape[1]
    total = np.zeros(len(combos))
    count = np.zeros(len(combos))
    for i, j in itertools.combinations(range(k), 2):
        a, b = combos[:, i], combos[:, j]
        total += w[a, b]
        count += d[a, b]
    return ratio(total, count), count


def score_subset(tm_sym: np.ndarray, indices: Sequence[int], nan_policy: str = "worst") -> float:
    """The mean pairwise TM_sym of one subset (NaN handled per ``nan_policy``)."""
    w, d = _weights(np.asarray(tm_sym, dtype=float), nan_policy)
    return float(subset_scores(np.asarray([list(indices)]), w, d)[0][0])


def _rank_key(score: float, undefined: int, acc: float | None, idx: tuple[int, ...]) -> tuple:
    # NaN last; equal scores: fewer undefined pairs, then higher mean clean accuracy, then order
    return (math.isnan(score), 0.0 if math.isnan(score) else score, undefined, -(acc or 0.0), idx)


def design_order(tm_sym: np.ndarray, indices: Sequence[int], required: Sequence[int], nan_policy: str) -> tuple[int, ...]:
    """The members ordered so that every prefix is the greedy choice within the set.

    Required members first (as given); then, from the lowest-TM_sym pair (if nothing is
    required), repeatedly the member that keeps the prefix's score lowest. Prefixes of this
    order are the sub-ensembles of `trend evaluate`'s accuracy-vs-size plot.
    """
    w, _ = _weights(tm_sym, nan_policy)
    order = [i for i in required if i in indices]
    rest = [i for i in indices if i not in order]
    if not order and len(rest) >= 2:
        pairs = sorted(itertools.combinations(sorted(rest), 2), key=lambda p: (w[p[0], p[1]], p))
        order = list(pairs[0])
        rest = [i for i in rest if i not in order]
    elif not order and rest:
        order, rest = [rest[0]], rest[1:]
    while rest:
        nxt = min(rest, key=lambda c: (sum(w[c, o] for o in order), c))
        order.append(nxt)
        rest.remove(nxt)
    return tuple(order)


def design(
    tm_sym: np.ndarray,
    names: Sequence[str],
    size: int,
    require: Sequence[str] = (),
    candidates: Sequence[str] | None = None,
    *,
    top: int = 5,
    method: str = "auto",
    exhaustive_limit: int = EXHAUSTIVE_LIMIT,
    nan_policy: str = "worst",
    clean_accuracy: dict[str, float] | None = None,
) -> DesignResult:
    """The ``top`` subsets of ``size`` models with the lowest mean pairwise TM_sym, best first.

    ``tm_sym`` [n, n] symmetric (diagonal ignored); ``require``: names forced in; ``candidates``:
    the pool (default all; required names are always in it); ``method``: auto (exhaustive when
    C(n - r, K - r) <= ``exhaustive_limit``), exhaustive or greedy.
    """
    tm = np.asarray(tm_sym, dtype=float)
    names = list(names)
    if tm.ndim != 2 or tm.shape != (len(names), len(names)):
        raise UsageError(f"TM_sym must be [n, n] for {len(names)} models, got shape {tm.shape}")
    if nan_policy not in NAN_POLICIES:
        raise UsageError(f"unknown NaN policy {nan_policy!r}; known: {', '.join(NAN_POLICIES)}")
    if method not in ("auto", "exhaustive", "greedy"):
        raise UsageError(f"unknown design method {method!r}; known: auto, exhaustive, greedy")
    if top < 1:
        raise UsageError(f"top must be at least 1, got {top}")
    index = {n: i for i, n in enumerate(names)}
    unknown = [n for n in list(require) + list(candidates or []) if n not in index]
    if unknown:
        raise UsageError(f"not in the matrix: {', '.join(unknown)}; models: {', '.join(names)}")
    required = list(dict.fromkeys(index[n] for n in require))
    pool = sorted(set(index[n] for n in (candidates if candidates is not None else names)) | set(required))
    if size < 2:
        raise UsageError(f"size must be at least 2 (an ensemble of one has no pairs), got {size}")
    if size > len(pool):
        raise UsageError(f"size {size} is more than the {len(pool)} candidate models")
    if len(required) > size:
        raise UsageError(f"{len(required)} required members do not fit an ensemble of {size}")
    free = [i for i in pool if i not in required]
    total = math.comb(len(free), size - len(required))
    if method == "auto":
        method = "exhaustive" if total <= exhaustive_limit else "greedy"
    w, d = _weights(tm, nan_policy)
    acc = {k: float(v) for k, v in (clean_accuracy or {}).items() if v is not None and math.isfinite(v)}

    if method == "exhaustive":
        rows = [sorted(required + list(c)) for c in itertools.combinations(free, size - len(required))]
        found = _score_rows(np.asarray(rows, dtype=int).reshape(len(rows), size), w, d)
    else:
        found = _greedy(w, d, required, free, size)
    scored = len(found)

    def mean_acc(idx: tuple[int, ...]) -> float | None:
        vals = [acc[names[i]] for i in idx if names[i] in acc]
        return float(np.mean(vals)) if vals and len(vals) == len(idx) else None

    ranked = sorted(found.items(), key=lambda kv: _rank_key(kv[1][0], kv[1][1], mean_acc(kv[0]), kv[0]))[:top]
    out = []
    for idx, (score, undefined) in ranked:
        ordered = design_order(tm, idx, required, nan_policy)
        out.append(Candidate(tuple(names[i] for i in ordered), ordered, score, undefined, mean_acc(idx)))
    return DesignResult(
        candidates=out,
        method=method,
        size=size,
        pool=[names[i] for i in pool],
        required=[names[i] for i in required],
        subsets_total=total,
        subsets_scored=scored,
        nan_policy=nan_policy,
        clean_accuracy=dict(acc),
    )


def _score_rows(rows: np.ndarray, w: np.ndarray, d: np.ndarray) -> dict[tuple[int, ...], tuple[float, int]]:
    """{sorted index tuple: (score, undefined pairs)} for each row."""
    if len(rows) == 0:
        return {}
    score, count = subset_scores(rows, w, d)
    k = rows.shape[1]
    pairs = k * (k - 1) // 2
    return {tuple(int(i) for i in r): (float(s), int(pairs - c)) for r, s, c in zip(rows, score, count)}


def _greedy(
    w: np.ndarray, d: np.ndarray, required: list[int], free: list[int], size: int
) -> dict[tuple[int, ...], tuple[float, int]]:
    """Multi-start greedy + best-improvement swap search; returns every subset it scored.

    Each start seeds the set with the required members plus one free model, grows it by the
    model with the smallest summed TM_sym to the set, then swaps one free member for one
    outside model while that lowers the score. The local optima's one-swap neighbours are
    scored too, so the runners-up are real alternatives.
    """
    seen: dict[tuple[int, ...], tuple[float, int]] = {}

    def score(members: Sequence[int]) -> float:
        key = tuple(sorted(members))
        if key not in seen:
            seen.update(_score_rows(np.asarray([key]), w, d))
        s = seen[key][0]
        return math.inf if math.isnan(s) else s

    need = size - len(required)
    starts = [[f] for f in free] if need > 0 else [[]]
    for start in starts:
        current = list(required) + start
        while len(current) < size:
            outside = [c for c in free if c not in current]
            current.append(min(outside, key=lambda c: (float(w[c, current].sum()), c)))
        best = score(current)
        while True:
            movable = [m for m in current if m not in required]
            outside = [c for c in free if c not in current]
            moves = [(score([x for x in current if x != m] + [c]), m, c) for m in movable for c in outside]
            if not moves:
                break
            s, m, c = min(moves)
            if s >= best:
                break
            current = [x for x in current if x != m] + [c]
            best = s
    return seen


def design_from_matrix(
    matrix_path: str | Path,
    size: int,
    require: Sequence[str] = (),
    candidates: Sequence[str] | None = None,
    **options: Any,
) -> DesignResult:
    """`design` over a saved transferability matrix (trendcli.transfer.matrix.TransferMatrix JSON).

    Uses TransferMatrix.symmetric() (TM_sym = (TM + TM.T) / 2, NaN stays NaN) and the matrix's
    clean accuracies; the result carries each name's model directory for writing the ensemble.
    """
    from trendcli.transfer.matrix import TransferMatrix

    matrix_path = Path(matrix_path)
    tmx = TransferMatrix.load(matrix_path)
    result = design(tmx.symmetric(), tmx.names, size, require, candidates, clean_accuracy=dict(tmx.clean_accuracy), **options)
    result.model_dirs = {n: _locate(d, matrix_path) for n, d in zip(tmx.names, tmx.model_dirs) if d}
    result.matrix = str(matrix_path)
    return result


def _locate(model_dir: str, matrix_path: Path) -> str:
    """A matrix's model path: as written when it exists from here, else beside the matrix file."""
    p = Path(model_dir)
    if p.is_absolute() or p.exists():
        return str(p)
    beside = matrix_path.parent / p
    return str(beside) if beside.exists() else str(p)


def ensemble_from_design(result: DesignResult, rank: int = 0, tie_break: str = "paper", seed: int = 0, per_image: bool | None = None):
    """The ensemble of the candidate at ``rank`` (0 = best), members in design order."""
    from trendcli.ensemble.members import Ensemble

    if not 0 <= rank < len(result.candidates):
        raise UsageError(f"rank {rank} out of range: {len(result.candidates)} candidates")
    cand = result.candidates[rank]
    missing = [m for m in cand.members if m not in result.model_dirs]
    if missing:
        raise UsageError(f"no model directory known for {missing}; design from a matrix file")
    provenance = {
        "method": "trend",
        "matrix": result.matrix,
        "score": None if math.isnan(cand.score) else cand.score,
        "undefined_pairs": cand.undefined_pairs,
        "search": result.method,
        "rank": rank,
        "nan_policy": result.nan_policy,
        "candidates": [c.to_dict() for c in result.candidates],
    }
    return Ensemble.from_dirs(
        [result.model_dirs[m] for m in cand.members], ids=list(cand.members), tie_break=tie_break, seed=seed,
        per_image=per_image, design=provenance,
    )


@dataclass
class DesignRun:
    """What the design stage did: the ranked candidates and the ensemble file written (or None)."""

    result: DesignResult
    ensemble: Path | None


def _is_ensemble(path: Path) -> bool:
    from trendcli.ensemble.members import Ensemble

    try:
        Ensemble.load(path, verify=False)
    except TrendError:
        return False
    return True


def check_ensemble_out(out: Path, force: bool = False) -> None:
    """Refuse ``out`` unless absent, or a trendcli ensemble file and ``force``."""
    check_output(out, "ensemble file", _is_ensemble, force=force)
    writable_dir(out.parent, "ensemble file")


def run_design(
    matrix: str | Path,
    size: int,
    out: str | Path | None = None,
    require: Sequence[str] = (),
    candidates: Sequence[str] | None = None,
    *,
    top: int = 5,
    method: str = "auto",
    nan_policy: str = "worst",
    tie_break: str = "paper",
    seed: int = 0,
    per_image: bool | None = None,
    force: bool = False,
) -> DesignRun:
    """The design stage: :func:`design_from_matrix` over the matrix JSON, and with ``out`` the best
    candidate written there as an ensemble JSON (its provenance records the ranked candidates).
    An existing ``out`` is refused before any work unless it is a trendcli ensemble and ``force``."""
    if out is not None:
        check_ensemble_out(Path(out), force)
    result = design_from_matrix(matrix, size, require, candidates, top=top, method=method, nan_policy=nan_policy)
    written = None
    if out is not None:
        written = ensemble_from_design(result, 0, tie_break=tie_break, seed=seed, per_image=per_image).save(out)
    return DesignRun(result, written)
