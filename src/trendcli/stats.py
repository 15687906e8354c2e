"""Statistics shared by every stage: the one ratio helper, intervals, paired tests, verdicts, formatters.

Conventions (docs/method.md, "Results a reviewer can trust"):

- ``ratio(num, den)`` is the only division of two measured numbers in trendcli. x / 0 is NaN
  (undefined, whatever x is), and so is anything with a missing (None) or NaN operand. NaN is
  stored in JSON as null and shown as ``n/a`` by every formatter here.
- Rates are shares of images: k of n. Their interval is Wilson's score interval.
- Two rates on the same images are compared paired: exact McNemar on the discordant images,
  or a seeded paired bootstrap of the difference.
- A claim's verdict is one of ``holds``, ``does not hold``, ``inconclusive`` (``verdict``), or
  ``not measured`` when the run lacks the numbers the claim needs.

No torch here: the report and the CLI import this without loading a model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

__all__ = [
    "ALPHA",
    "HOLDS",
    "DOES_NOT_HOLD",
    "INCONCLUSIVE",
    "NOT_MEASURED",
    "VERDICTS",
    "ClaimResult",
    "all_of",
    "bootstrap_claim",
    "bootstrap_weights",
    "decode_bits",
    "encode_bits",
    "fmt_interval",
    "fmt_number",
    "fmt_p",
    "fmt_rate",
    "fmt_ratio",
    "fmt_tm",
    "is_missing",
    "jsonable",
    "mcnemar_exact",
    "paired_bootstrap",
    "paired_claim",
    "rate_record",
    "ratio",
    "verdict",
    "wilson_interval",
    "wilson_intervals",
]

ALPHA = 0.05
HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
INCONCLUSIVE = "inconclusive"
NOT_MEASURED = "not measured"
VERDICTS = (HOLDS, DOES_NOT_HOLD, INCONCLUSIVE, NOT_MEASURED)
NAN = float("nan")


def is_missing(value: Any) -> bool:
    """True for None and for a float NaN (the two spellings of "no number")."""
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))


def jsonable(value: Any) -> Any:
    """``value`` with NaN and infinities as None and numpy scalars and arrays as Python values.

    JSON has no NaN; trendcli writes an undefined number as null (and reads null back as NaN).
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


# -- ratio ------------------------------------------------------------------------------------------


def ratio(num: Any, den: Any) -> Any:
    """num / den as float64; NaN where den == 0 or either operand is None or NaN.

    Scalars give a Python float; arrays (or array-likes) broadcast and give an ndarray. No
    warnings are raised: 1 / 0, 0 / 0 and NaN / 1 are all NaN. (One meaning of x / 0 for every
    ratio in trendcli: TM = N_t / N_g, robustness ratios, success-rate ratios.)
    """
    if np.ndim(num) == 0 and np.ndim(den) == 0:
        if is_missing(num) or is_missing(den):
            return NAN
        n, d = float(num), float(den)
        return n / d if d != 0 else NAN
    # dtype float64 turns None into NaN.
    n, d = np.broadcast_arrays(np.array(num, dtype=np.float64), np.array(den, dtype=np.float64))
    out = np.full(n.shape, np.nan)
    np.divide(n, d, out=out, where=(d != 0) & ~np.isnan(d))
    return out


# -- intervals and tests ----------------------------------------------------------------------------


def _z(level: float) -> float:
    from scipy.stats import norm

    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    return float(norm.ppf(0.5 + level / 2))


def wilson_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials; (nan, nan) for n = 0.

    With p = k / n and z the two-sided normal quantile of ``level``:
        centre = (p + z^2 / 2n) / (1 + z^2 / n)
        half   = z sqrt(p (1 - p) / n + z^2 / 4n^2) / (1 + z^2 / n)
    (Wilson 1927; Brown, Cai & DasGupta 2001). Clipped to [0, 1] against rounding.
    """
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return NAN, NAN
    z = _z(level)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def wilson_intervals(k: Any, n: Any, level: float = 0.95) -> np.ndarray:
    """``wilson_interval`` of every entry of the arrays k and n: shape k.shape + (2,), NaN where n = 0
    or either is negative (the -1 of a count still to compute)."""
    kk, nn = np.broadcast_arrays(np.asarray(k, dtype=np.int64), np.asarray(n, dtype=np.int64))
    out = np.full(kk.shape + (2,), np.nan)
    for idx in np.ndindex(kk.shape):
        if nn[idx] > 0 and 0 <= kk[idx] <= nn[idx]:
            out[idx] = wilson_interval(int(kk[idx]), int(nn[idx]), level)
    return out


def rate_record(k: int, n: int) -> dict[str, Any]:
    """A rate as JSON records it: ``{"rate": k / n, "k": k, "n": n, "interval": [lo, hi]}`` (Wilson 95 %)."""
    return jsonable({"rate": ratio(k, n), "k": int(k), "n": int(n), "interval": list(wilson_interval(int(k), int(n)))})


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts b and c; 1.0 when b + c = 0.

    Under H0 each discordant image is equally likely to go either way, so min(b, c) ~
    Binomial(b + c, 1/2) and p = min(1, 2 sum_{i <= min(b, c)} C(b + c, i) / 2^(b + c)).
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be non-negative, got b={b}, c={c}")
    n = int(b) + int(c)
    if n == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(min(1.0, binomtest(int(min(b, c)), n, 0.5, alternative="two-sided").pvalue))


def paired_bootstrap(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    n_boot: int = 10_000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, tuple[float, float]]:
    """mean(a) - mean(b) over the same images, and its percentile bootstrap interval.

    ``a[i]`` and ``b[i]`` are image i's outcomes (e.g. 1 = attack succeeded) under two
    conditions. Each replicate resamples images with replacement (keeping the pairs) from
    ``np.random.default_rng(seed)``; the interval is the (1 - level) / 2 and (1 + level) / 2
    quantiles of the replicates. Same inputs and seed, same numbers. Empty inputs give
    (nan, (nan, nan)).
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired outcomes need one value per image in both, got {x.size} and {y.size}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    n = x.size
    if n == 0:
        return NAN, (NAN, NAN)
    d = x - y
    # Resampling n images = drawing multinomial counts over the distinct differences: exact,
    # and memory n_boot x (distinct values) instead of n_boot x n.
    values, counts = np.unique(d, return_counts=True)
    rng = np.random.default_rng(seed)
    reps = rng.multinomial(n, counts / n, size=n_boot) @ values / n
    lo, hi = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])
    return float(d.mean()), (float(lo), float(hi))


def bootstrap_weights(n: int, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """[n_boot, n] resampling counts: replicate r takes image i ``w[r, i]`` times (sum n).

    A statistic that is a function of per-image sums (N_g, N_t, correct counts) is recomputed
    on replicate r as ``w[r] @ x``. Seeded: same n, n_boot and seed, same weights.
    """
    if n < 1 or n_boot < 1:
        raise ValueError(f"need n >= 1 and n_boot >= 1, got n={n}, n_boot={n_boot}")
    return np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=n_boot)


def bootstrap_claim(effect: float, replicates: Any, n: int, test: str, level: float = 0.95) -> "ClaimResult":
    """The verdict on "effect > 0" from bootstrap replicates of the effect.

    Interval: the percentile interval of the finite replicates. p-value: the two-sided
    bootstrap p = min(1, 2 min(P*(rep <= 0), P*(rep >= 0))), so p < 0.05 exactly when the 95 %
    percentile interval excludes 0 (up to ties at 0). No finite replicate: inconclusive.
    """
    reps = np.asarray(replicates, dtype=np.float64).ravel()
    reps = reps[np.isfinite(reps)]
    if reps.size == 0 or is_missing(effect):
        return ClaimResult(INCONCLUSIVE, test, effect=NAN if is_missing(effect) else float(effect), n=n)
    lo, hi = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])
    p = float(min(1.0, 2 * min(np.mean(reps <= 0), np.mean(reps >= 0))))
    return ClaimResult(verdict(effect, p), test, p, float(effect), (float(lo), float(hi)), n)


def paired_claim(a_ok: Any, b_ok: Any, seed: int = 0) -> "ClaimResult":
    """The verdict on "rate(a) > rate(b)" from two outcomes (bool) on the same images.

    Test: exact McNemar on the discordant images (b = a and not b, c = b and not a). Effect:
    rate(a) - rate(b), with its paired bootstrap interval (``paired_bootstrap``, seeded).
    """
    a = np.asarray(a_ok, dtype=bool).ravel()
    b = np.asarray(b_ok, dtype=bool).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes need one value per image in both, got {a.size} and {b.size}")
    if a.size == 0:
        return ClaimResult(INCONCLUSIVE, "exact McNemar", n=0)
    p = mcnemar_exact(int((a & ~b).sum()), int((~a & b).sum()))
    effect, interval = paired_bootstrap(a, b, seed=seed)
    return ClaimResult(verdict(effect, p), "exact McNemar", p, effect, interval, int(a.size))


def all_of(results: dict[str, "ClaimResult"], test: str | None = None) -> tuple["ClaimResult", str | None]:
    """One verdict for "the claim holds for each of ``results``" (e.g. each member, each eps).

    ``does not hold`` when one of them does not hold (the most significant is reported);
    ``holds`` when all hold (the weakest, largest p, is reported: an intersection-union test,
    whose p is the largest p); ``inconclusive`` otherwise (the weakest inconclusive one is
    reported). Returns the reported result under ``test`` and its label; (not measured, None)
    for no results.
    """
    if not results:
        return ClaimResult(NOT_MEASURED, test or "none"), None
    def p_of(r: "ClaimResult") -> float:
        return 1.0 if is_missing(r.p_value) else float(r.p_value)

    against = {k: r for k, r in results.items() if r.verdict == DOES_NOT_HOLD}
    if against:
        label = min(against, key=lambda k: p_of(against[k]))
    elif all(r.verdict == HOLDS for r in results.values()):
        label = max(results, key=lambda k: p_of(results[k]))
    else:
        pending = {k: r for k, r in results.items() if r.verdict != HOLDS}
        label = max(pending, key=lambda k: p_of(pending[k]))
    r = results[label]
    verdict_all = DOES_NOT_HOLD if against else HOLDS if all(x.verdict == HOLDS for x in results.values()) else INCONCLUSIVE
    return ClaimResult(verdict_all, test or r.test, r.p_value, r.effect, r.interval, r.n), label


# -- per-image outcomes as text -----------------------------------------------------------------


def encode_bits(values: Any) -> str:
    """Per-image outcomes (bool [N]) as a JSON-friendly string of ``0`` and ``1``, image order kept."""
    arr = np.asarray(values, dtype=bool).ravel()
    return arr.astype(np.uint8).tobytes().translate(bytes.maketrans(b"\x00\x01", b"01")).decode("ascii")


def decode_bits(text: str) -> np.ndarray:
    """The bool [N] array of ``encode_bits``; raises ValueError on any character but 0 and 1."""
    raw = np.frombuffer(str(text).encode("ascii"), dtype=np.uint8) - ord("0")
    if raw.size and raw.max() > 1:
        raise ValueError("per-image outcomes must be a string of 0 and 1")
    return raw.astype(bool)


# -- verdicts ---------------------------------------------------------------------------------------


def verdict(effect: float | None, p_value: float | None, alpha: float = ALPHA) -> str:
    """Three-way verdict on a directional claim "effect > 0".

    ``holds`` when p < alpha and effect > 0; ``does not hold`` when p < alpha and effect <= 0
    (the data contradict the claim); ``inconclusive`` otherwise, including a missing effect or
    p-value.
    """
    if is_missing(effect) or is_missing(p_value):
        return INCONCLUSIVE
    if p_value < alpha:
        return HOLDS if effect > 0 else DOES_NOT_HOLD
    return INCONCLUSIVE


@dataclass(frozen=True)
class ClaimResult:
    """What one verdict rule decided, with what it rests on.

    ``verdict``: one of VERDICTS. ``test``: the rule or test that decided it (e.g. "point
    estimate", "exact McNemar"). ``p_value``, ``effect`` (signed, > 0 = the claimed direction),
    ``interval`` (of the effect) and ``n`` (images) are NaN / None where the rule has none.
    """

    verdict: str
    test: str
    p_value: float = NAN
    effect: float = NAN
    interval: tuple[float, float] = (NAN, NAN)
    n: int | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, got {self.verdict!r}")

    @property
    def holds(self) -> bool | None:
        """True / False for holds / does not hold; None for inconclusive and not measured."""
        return {HOLDS: True, DOES_NOT_HOLD: False}.get(self.verdict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; NaN as null."""

        return jsonable({"verdict": self.verdict, "holds": self.holds, "test": self.test, "p_value": self.p_value,
                         "effect": self.effect, "interval": list(self.interval), "n": self.n})


# -- formatters: one per kind of number -------------------------------------------------------------


def fmt_number(value: Any, digits: int = 3) -> str:
    """A plain number with ``digits`` decimals; ``n/a`` for None or NaN, ``inf`` / ``-inf``."""
    if is_missing(value):
        return "n/a"
    v = float(value)
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.{digits}f}"


def fmt_rate(value: Any) -> str:
    """An accuracy or success rate in [0, 1]: four decimals (``0.8125``); ``n/a`` when missing."""
    return fmt_number(value, 4)


def fmt_tm(value: Any) -> str:
    """A transferability TM = N_t / N_g: three decimals (``0.775``); ``n/a`` when undefined."""
    return fmt_number(value, 3)


def fmt_ratio(value: Any) -> str:
    """A ratio of two rates as ``1.30x``; ``n/a`` when undefined (x / 0, see ``ratio``)."""
    text = fmt_number(value, 2)
    return text if text == "n/a" else f"{text}x"


def fmt_interval(interval: Any, fmt: Any = None) -> str:
    """A 95 % interval as ``[0.712, 0.768]`` with the formatter ``fmt`` (default fmt_number);
    ``n/a`` when missing."""
    fmt = fmt or fmt_number
    if interval is None or len(interval) != 2 or any(is_missing(v) for v in interval):
        return "n/a"
    return f"[{fmt(interval[0])}, {fmt(interval[1])}]"


def fmt_p(value: Any) -> str:
    """A p-value: ``<0.001`` below 0.001, else three decimals; ``n/a`` when no test was run."""
    if is_missing(value):
        return "n/a"
    return "<0.001" if float(value) < 0.001 else f"{float(value):.3f}"
