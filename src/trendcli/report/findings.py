"""This run's measurements set beside the paper's claims (sections IV-V of the paper).

Each function takes plain numbers (a TM matrix with NaN for undefined entries, accuracies,
success rates) and returns a :class:`Finding`: the claim, the paper's number, this run's
number(s) and the decision of the claim's one verdict rule (a trendcli.stats.ClaimResult:
verdict, test, p-value, effect, interval, n). The verdicts are holds, does not hold,
inconclusive, or not measured (the run lacks the models or the evaluation the claim needs).
Each rule is stated in its function's docstring; nothing here is tuned toward the paper's
numbers. This module holds the transferability and export claims; the ensemble claims
(A-GD vs D-AG, the ensemble against its members) are in trendcli.report.ensemble_findings,
which `trend evaluate` uses as well.

TM(s->t) = N_t / N_g, rows = source, columns = target (docs/method.md, "Transferability
metric (eq. 1)"); the diagonal is never part of a mean here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Hashable, Mapping, Sequence

import numpy as np

from trendcli.stats import (
    ALPHA,
    DOES_NOT_HOLD,
    HOLDS,
    INCONCLUSIVE,
    NOT_MEASURED,
    ClaimResult,
    all_of,
    bootstrap_claim,
    bootstrap_weights,
    fmt_interval,
    fmt_p,
    fmt_rate,
    fmt_tm,
    is_missing,
    jsonable,
    mcnemar_exact,
    paired_bootstrap,
    wilson_interval,
)

#: Per-image outcomes of a matrix: (clean_ok [k, N], adv_ok [k, k, N], known [k, k]),
#: trendcli.transfer.counts.per_image_arrays.
Outcomes = tuple[np.ndarray, np.ndarray, np.ndarray]
#: Bootstrap replicates behind the column-average and seed rules (seeded: same run, same numbers).
N_BOOT = 2000

__all__ = [
    "Finding",
    "LOW_BIT_INPUTS",
    "POINT_ESTIMATE",
    "asymmetry_finding",
    "decided",
    "export_accuracy_finding",
    "READING_NOTE",
    "evidence",
    "findings_markdown",
    "low_bit_input_finding",
    "not_measured",
    "quant_label",
    "seed_finding",
]

#: Input quantizers the paper calls low bit width (section IV-D1: "HT, Q1 and Q2").
LOW_BIT_INPUTS = ("q1", "q2", "ht", "ht_fs")
FULL_PRECISION = 32
#: The test name of a rule that compares measured numbers directly (no significance test yet).
POINT_ESTIMATE = "point estimate"


def decided(holds: bool | None, effect: float = float("nan"), n: int | None = None,
            test: str = POINT_ESTIMATE) -> ClaimResult:
    """The ClaimResult of a point-estimate rule: holds / does not hold, or not measured for None."""
    verdict = NOT_MEASURED if holds is None else HOLDS if holds else DOES_NOT_HOLD
    return ClaimResult(verdict, test, effect=float(effect), n=n)


@dataclass(frozen=True)
class Finding:
    """One claim of the paper, what this run measured for it, and the verdict rule's result."""

    key: str
    claim: str
    paper: str
    this_run: str
    result: ClaimResult
    values: dict[str, Any] = field(default_factory=dict)  # JSON-ready numbers behind ``this_run``
    source: str | None = None  # the run file the numbers come from

    @property
    def verdict(self) -> str:
        """``holds``, ``does not hold``, ``inconclusive`` or ``not measured``."""
        return self.result.verdict

    @property
    def holds(self) -> bool | None:
        """True / False for holds / does not hold; None otherwise."""
        return self.result.holds

    def tagged(self, label: str | None) -> "Finding":
        """The same finding with ``[label]`` before this run's text (several matrices or evaluations)."""
        if not label:
            return self
        return Finding(self.key, self.claim, self.paper, f"[{label}] {self.this_run}", self.result, self.values,
                       self.source)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (non-finite numbers as null)."""
        return {
            "key": self.key,
            "claim": self.claim,
            "paper": self.paper,
            "this_run": self.this_run,
            **self.result.to_dict(),
            "values": jsonable(self.values),
            "source": self.source,
        }


def not_measured(key: str, claim: str, paper: str, why: str, values: dict[str, Any] | None = None,
                 source: str | None = None) -> Finding:
    """A finding the run lacks the numbers for; ``why`` says what is missing."""
    return Finding(key, claim, paper, why, decided(None), values or {}, source)


def quant_label(input_quant: str) -> str:
    """``q1`` -> ``Q1``, ``ht_fs`` -> ``HT-FS``, ``fp`` -> ``FP``."""
    return str(input_quant).upper().replace("_", "-")


def _matrix(tm: Any) -> np.ndarray:
    m = np.array(tm, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"TM must be a square matrix, got shape {m.shape}")
    return m


def _tm_replicates(outcomes: Outcomes, tm: np.ndarray, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """[B, k, k] TM on bootstrap resamples of the images (trendcli.transfer.counts.tm_bootstrap),
    NaN where the pair's outcomes are missing or the measured TM is undefined."""
    from trendcli.transfer.counts import tm_bootstrap

    clean, adv, known = outcomes
    reps = tm_bootstrap(clean, adv, bootstrap_weights(clean.shape[1], n_boot, seed))
    reps[:, ~(known & np.isfinite(tm))] = np.nan
    return reps


def _column_means(m: np.ndarray) -> np.ndarray:
    """Column (target) averages of [..., k, k] over the sources, diagonal and NaN left out."""
    k = m.shape[-1]
    m = np.where(np.eye(k, dtype=bool), np.nan, m)
    ok = np.isfinite(m)
    count = ok.sum(-2)
    total = np.where(ok, m, 0.0).sum(-2)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _mean_over(m: np.ndarray, mask: np.ndarray) -> tuple[float, int]:
    """Mean of the defined entries of ``m`` under ``mask`` (diagonal excluded) and their count."""
    mask = mask & ~np.eye(len(m), dtype=bool) & np.isfinite(m)
    n = int(mask.sum())
    return (float(m[mask].mean()) if n else float("nan")), n


# -- 1. input quantization --------------------------------------------------------------------------

LOW_BIT_CLAIM = "Low-bit input quantization (Q1, Q2, HT) lowers transferability"
LOW_BIT_PAPER = (
    "HT, Q1 and Q2 \"have very low transferability\" and the lowest column averages "
    "(sec. IV-D1, fig. 2; CIFAR-10 ResNet18, PGD)"
)


def low_bit_input_finding(
    names: Sequence[str],
    tm: Any,
    specs: Sequence[Mapping[str, Any]],
    source: str | None = None,
    outcomes: Outcomes | None = None,
) -> Finding:
    """Q1, Q2 and HT each ranked by column average (mean TM into the model) among all models.

    Column average of t: mean of TM(s->t) over the sources s != t with TM defined. Low-bit:
    ``input_quant`` in LOW_BIT_INPUTS. Rule, per low-bit model m: margin(m) = (lowest column
    average of the models that are not low-bit) - (m's column average) > 0, tested with a
    paired bootstrap over images (N_BOOT resamples of the test images, every TM recomputed as
    N_t / N_g on each; trendcli.stats.bootstrap_claim). The claim holds when it holds for every
    low-bit model, does not hold when one is significantly above a higher-precision model, and
    is inconclusive otherwise (trendcli.stats.all_of). Without per-image outcomes the point
    estimates decide (test ``point estimate``). Beside it: the pooled means of the earlier rule
    (pairs with a low-bit model vs pairs among FP models). Not measured without a low-bit model
    and another model with defined column averages.
    """
    m = _matrix(tm)
    iq = [str(s.get("input_quant", "fp")) for s in specs]
    low = np.array([q in LOW_BIT_INPUTS for q in iq])
    fp = np.array(
        [
            q == "fp" and int(s.get("weight_bits", FULL_PRECISION)) == FULL_PRECISION
            and int(s.get("act_bits", FULL_PRECISION)) == FULL_PRECISION
            for q, s in zip(iq, specs)
        ]
    )
    cols = _column_means(m)
    order = sorted((i for i in range(len(m)) if math.isfinite(cols[i])), key=lambda i: (cols[i], i))
    rank = {names[i]: r + 1 for r, i in enumerate(order)}
    mean_low, n_low = _mean_over(m, low[:, None] | low[None, :])
    mean_fp, n_fp = _mean_over(m, fp[:, None] & fp[None, :])
    values: dict[str, Any] = {
        "low_bit_models": [n for n, lo in zip(names, low) if lo],
        "other_models": [n for n, lo in zip(names, low) if not lo],
        "column_average": dict(zip(names, cols.tolist())),
        "rank_by_column_average": rank,
        "mean_tm_pairs_with_low_bit": mean_low,
        "pairs_with_low_bit": n_low,
        "mean_tm_among_fp": mean_fp,
        "pairs_among_fp": n_fp,
    }
    lows = [i for i in range(len(m)) if low[i] and math.isfinite(cols[i])]
    others = [i for i in range(len(m)) if not low[i] and math.isfinite(cols[i])]
    if not lows or not others:
        why = "no Q1/Q2/HT model with a defined column average" if not lows else \
            "no model other than Q1/Q2/HT with a defined column average"
        return not_measured("low_bit_input", LOW_BIT_CLAIM, LOW_BIT_PAPER, why, values, source)
    best_other = min(others, key=lambda i: (cols[i], i))
    margins = {names[i]: float(cols[best_other] - cols[i]) for i in lows}
    if outcomes is not None:
        rep_cols = _column_means(_tm_replicates(outcomes, m))
        values["column_average_interval"] = {
            names[i]: [float(v) for v in np.nanquantile(rep_cols[:, i], [0.025, 0.975])] if np.isfinite(rep_cols[:, i]).any()
            else [None, None] for i in range(len(m))}
        n = int(outcomes[0].shape[1])
        test = f"paired bootstrap over images ({N_BOOT} resamples) of column averages"
        rep_other = np.nanmin(np.where(np.isfinite(rep_cols[:, others]), rep_cols[:, others], np.inf), axis=1)
        results = {names[i]: bootstrap_claim(margins[names[i]], rep_other - rep_cols[:, i], n, test) for i in lows}
        result, deciding = all_of(results, test + "; each of " + "/".join(quant_label(iq[i]) for i in lows))
        values["per_model"] = {k: r.to_dict() for k, r in results.items()}
    else:
        result = decided(all(v > 0 for v in margins.values()), effect=min(margins.values()))
        deciding = min(margins, key=margins.get)
    iv = values.get("column_average_interval", {})
    each = "; ".join(f"{names[i]} ({quant_label(iq[i])}) {fmt_tm(cols[i])} {fmt_interval(iv.get(names[i]), fmt_tm)}"
                     f" rank {rank[names[i]]} of {len(order)}" for i in lows)
    text = (f"column averages (mean TM into the model): {each}; lowest other model {names[best_other]} "
            f"{fmt_tm(cols[best_other])}; deciding: {deciding}")
    return Finding("low_bit_input", LOW_BIT_CLAIM, LOW_BIT_PAPER, text, result, values, source)


# -- 2. asymmetry --------------------------------------------------------------------------------------

ASYMMETRY_CLAIM = "Transferability is asymmetric: TM(a->b) need not equal TM(b->a)"
ASYMMETRY_PAPER = (
    "\"the matrices are considerably asymmetric\" (sec. IV-C); e.g. VGG11 SGD->Adam 77.5% vs "
    "Adam->SGD 64.5% (table III, CIFAR-10 PGD)"
)


def _shared_subset_test(outcomes: Outcomes, a: int, b: int) -> dict[str, Any] | None:
    """Exact McNemar of TM(a->b) vs TM(b->a) on the images both attacks generated on.

    Shared subset S = G(a->b) & G(b->a): both models clean-correct on the image and each
    fooled by its own attack. On S each image has two paired outcomes, "a's adversarial image
    fools b" and "b's fools a"; McNemar counts the discordant images. Effect: the difference
    of the two transfer rates on S, with its paired bootstrap interval. None without outcomes.
    """
    clean, adv, known = outcomes
    if not (known[a, b] and known[b, a]):
        return None
    fooled_a, fooled_b = ~adv[a, a], ~adv[b, b]
    shared = clean[a] & clean[b] & fooled_a & fooled_b
    t_ab, t_ba = ~adv[a, b][shared], ~adv[b, a][shared]
    n_s = int(shared.sum())
    p = mcnemar_exact(int((t_ab & ~t_ba).sum()), int((~t_ab & t_ba).sum()))
    diff, interval = paired_bootstrap(t_ab, t_ba) if n_s else (float("nan"), (float("nan"), float("nan")))
    return {"shared_images": n_s, "discordant": [int((t_ab & ~t_ba).sum()), int((~t_ab & t_ba).sum())],
            "p_value": p, "difference": diff, "interval": list(interval)}


def asymmetry_finding(
    names: Sequence[str], tm: Any, n_g: Any, z: float = 3.0, source: str | None = None,
    outcomes: Outcomes | None = None,
) -> Finding:
    """Mean |TM(a->b) - TM(b->a)| over unordered pairs, and whether any pair is asymmetric.

    With per-image outcomes, each pair is tested by exact McNemar on the shared subset of
    images (:func:`_shared_subset_test`); the claim holds when the smallest p-value, times the
    number of pairs tested (Bonferroni), is below ALPHA, and is inconclusive otherwise: "need
    not be equal" cannot be contradicted by pairs that look symmetric. Without outcomes, a
    pair counts as asymmetric when the difference exceeds ``z`` binomial standard errors,
    SE = sqrt(p_ab (1 - p_ab) / N_g(a) + p_ba (1 - p_ba) / N_g(b)), and the claim holds when
    one pair is. Not measured without a pair defined both ways.
    """
    m = _matrix(tm)
    g = np.array(n_g, dtype=np.float64)
    if g.shape != m.shape:
        raise ValueError(f"N_g must have the shape of TM {m.shape}, got {g.shape}")
    pairs = []
    for a in range(len(m)):
        for b in range(a + 1, len(m)):
            p, q = m[a, b], m[b, a]
            if not (math.isfinite(p) and math.isfinite(q)) or g[a, b] <= 0 or g[b, a] <= 0:
                continue
            diff = abs(p - q)
            se = math.sqrt(p * (1 - p) / g[a, b] + q * (1 - q) / g[b, a])
            test = _shared_subset_test(outcomes, a, b) if outcomes is not None else None
            pairs.append({"diff": diff, "a": a, "b": b, "se": se, "z_asymmetric": bool(diff > z * se), "test": test})
    values: dict[str, Any] = {"pairs": len(pairs), "z": z}
    if not pairs:
        return not_measured("asymmetry", ASYMMETRY_CLAIM, ASYMMETRY_PAPER, "no pair with TM defined in both directions",
                            values, source)
    mean = float(np.mean([p["diff"] for p in pairs]))
    tested = [p for p in pairs if p["test"] is not None and p["test"]["shared_images"] > 0]
    if tested:
        top = min(tested, key=lambda p: (p["test"]["p_value"], -p["diff"]))
        p_adj = min(1.0, top["test"]["p_value"] * len(tested))
        a, b = (top["a"], top["b"]) if top["test"]["difference"] >= 0 else (top["b"], top["a"])
        sign = 1 if (a, b) == (top["a"], top["b"]) else -1
        lo, hi = (sign * v for v in top["test"]["interval"])
        effect = abs(top["test"]["difference"])
        verdict = HOLDS if p_adj < ALPHA else INCONCLUSIVE
        result = ClaimResult(verdict, f"exact McNemar per pair on the shared images, Bonferroni over {len(tested)} pairs",
                             p_adj, effect, (min(lo, hi), max(lo, hi)), top["test"]["shared_images"])
        significant = sum(1 for p in tested if p["test"]["p_value"] * len(tested) < ALPHA)
        how = (f"on its {top['test']['shared_images']} shared images the two transfer rates differ by "
               f"{fmt_tm(effect)}; {significant} of {len(tested)} pairs asymmetric at {ALPHA:g} (exact McNemar on shared "
               "images, Bonferroni)")
        values["per_pair"] = [{"pair": [names[p["a"]], names[p["b"]]], "tm": [float(m[p["a"], p["b"]]), float(m[p["b"], p["a"]])],
                               **p["test"]} for p in tested]
    else:
        top = max(pairs, key=lambda p: (p["diff"], -p["a"], -p["b"]))
        a, b = (top["a"], top["b"]) if m[top["a"], top["b"]] >= m[top["b"], top["a"]] else (top["b"], top["a"])
        significant = int(sum(p["z_asymmetric"] for p in pairs))
        result = ClaimResult(HOLDS if significant else INCONCLUSIVE,
                             f"per-pair |difference| > {z:g} binomial standard errors", effect=top["diff"])
        how = f"{significant} of {len(pairs)} pairs differ by more than {z:g} standard errors"
    values.update({
        "mean_abs_difference": mean,
        "max_pair": [names[a], names[b]],
        "max_tm_forward": float(m[a, b]),
        "max_tm_backward": float(m[b, a]),
        "max_abs_difference": top["diff"],
        "max_standard_error": top["se"],
        "asymmetric_pairs": significant,
    })
    text = (
        f"mean |TM(a->b) - TM(b->a)| = {fmt_tm(mean)} over {len(pairs)} pairs; most asymmetric"
        f"{' (smallest p)' if tested else ''}: {names[a]} -> {names[b]} {fmt_tm(m[a, b])} vs back {fmt_tm(m[b, a])}; {how}"
    )
    return Finding("asymmetry", ASYMMETRY_CLAIM, ASYMMETRY_PAPER, text, result, values, source)


# -- 3. initialization ---------------------------------------------------------------------------------

SEED_CLAIM = "Initialization (seed) matters little: models that differ only in seed transfer highly"
SEED_PAPER = "seed to seed 89.89% +- 1.14 (ResNet18 SGD, CIFAR-10, PGD; table II, 90 ordered pairs)"


def seed_finding(
    names: Sequence[str],
    tm: Any,
    configs: Sequence[Hashable],
    seeds: Sequence[Any],
    source: str | None = None,
    n_g: Any = None,
    outcomes: Outcomes | None = None,
    ddof: int = 0,
) -> Finding:
    """Mean +- std of TM over ordered pairs of models with one config and different seeds.

    ``configs[i]``: model i's training configuration without the seed (equal = same config).
    std: ``ddof`` 0 divides by the number of pairs (the authors' table II), 1 is the sample
    std. With ``n_g``: the pooled TM (sum N_t / sum N_g) and its Wilson 95 % interval beside.
    Rule: effect = (mean TM of the seed pairs) - (mean TM over pairs of different configs);
    changing only the seed should lower transfer no more than changing the configuration, so
    the claim holds when effect > 0 by a paired bootstrap over images (with per-image
    outcomes, trendcli.stats.bootstrap_claim), does not hold when it is significantly < 0,
    inconclusive otherwise; without outcomes the point estimate decides (effect >= 0). Not
    measured without two seeds of one config, or without a pair of different configs.
    """
    m = _matrix(tm)
    k = len(m)
    same = np.array([[configs[i] == configs[j] and seeds[i] != seeds[j] for j in range(k)] for i in range(k)])
    other = np.array([[configs[i] != configs[j] for j in range(k)] for i in range(k)])
    mask = same & ~np.eye(k, dtype=bool) & np.isfinite(m)
    vals = m[mask]
    mean_other, n_other = _mean_over(m, other)
    groups = sorted({names[i] for i in range(k) for j in range(k) if mask[i, j]})
    values: dict[str, Any] = {"pairs": int(mask.sum()), "models": groups, "mean_tm_other_configs": mean_other,
                              "pairs_other_configs": n_other}
    if len(vals) == 0:
        return not_measured("seed", SEED_CLAIM, SEED_PAPER, "no two seeds of one configuration with a defined TM",
                            values, source)
    mean = float(vals.mean())
    std = float(vals.std(ddof=ddof)) if len(vals) > ddof else float("nan")
    values.update({"mean_tm_same_config": mean, "std_tm_same_config": std, "ddof": ddof})
    text = f"seed to seed {fmt_tm(mean)} +- {fmt_tm(std)} (std ddof={ddof}, {len(vals)} ordered pairs"
    if n_g is not None:
        g = np.array(n_g, dtype=np.float64)
        sum_g = int(g[mask].sum())
        sum_t = int(np.rint((m * g)[mask]).sum())
        if sum_g > 0:
            iv = wilson_interval(sum_t, sum_g)
            values.update({"pooled_tm_same_config": sum_t / sum_g, "pooled_interval": list(iv)})
            text += f"; pooled {fmt_tm(sum_t / sum_g)} {fmt_interval(iv, fmt_tm)}"
    text += ")"
    if n_other == 0:
        return not_measured("seed", SEED_CLAIM, SEED_PAPER, text + "; no pair of different configurations to compare with",
                            values, source)
    text += f" vs {fmt_tm(mean_other)} between different configurations ({n_other} pairs)"
    effect = mean - mean_other
    if outcomes is not None:
        reps = _tm_replicates(outcomes, m)
        other_mask = other & ~np.eye(k, dtype=bool) & np.isfinite(m)
        diff = np.nanmean(reps[:, mask], axis=1) - np.nanmean(reps[:, other_mask], axis=1)
        result = bootstrap_claim(effect, diff, int(outcomes[0].shape[1]),
                                 f"paired bootstrap over images ({N_BOOT} resamples)")
        text += f"; difference {fmt_tm(effect)} {fmt_interval(result.interval, fmt_tm)}, p {fmt_p(result.p_value)}"
    else:
        result = decided(bool(mean >= mean_other), effect=effect)
    return Finding("seed", SEED_CLAIM, SEED_PAPER, text, result, values, source)


# -- 6. export -----------------------------------------------------------------------------------------

EXPORT_CLAIM = "The exported ONNX ensemble is as accurate as the evaluated torch ensemble"
EXPORT_PAPER = "not in the paper (trendcli's deployment check)"


def export_accuracy_finding(
    torch_accuracy: float | None,
    torch_images: int | None,
    onnx_accuracy: float | None,
    onnx_images: int | None,
    note: str = "",
    source: str | None = None,
) -> Finding:
    """Clean accuracy of the ONNX export vs the torch evaluation's on the same number of images.

    Holds when both counted the same number of images and the numbers of correct images agree
    (round(acc * n) equal); not measured when either is missing or the image counts differ.
    """
    values = {"torch_accuracy": torch_accuracy, "torch_images": torch_images,
              "onnx_accuracy": onnx_accuracy, "onnx_images": onnx_images}
    if torch_accuracy is None or onnx_accuracy is None:
        what = "no torch evaluation" if torch_accuracy is None else "no ONNX inference record"
        return not_measured("export_accuracy", EXPORT_CLAIM, EXPORT_PAPER, what, values, source)
    text = f"ONNX {fmt_rate(onnx_accuracy)} on {onnx_images or '?'} images vs torch {fmt_rate(torch_accuracy)} on {torch_images or '?'}"
    if note:
        text += f" ({note})"
    if not torch_images or not onnx_images or torch_images != onnx_images:
        return not_measured("export_accuracy", EXPORT_CLAIM, EXPORT_PAPER, text + "; different image counts, not comparable",
                            values, source)
    correct_torch = round(torch_accuracy * torch_images)
    correct_onnx = round(onnx_accuracy * onnx_images)
    values.update({"torch_correct": correct_torch, "onnx_correct": correct_onnx})
    result = decided(bool(correct_torch == correct_onnx), effect=onnx_accuracy - torch_accuracy, n=int(onnx_images))
    return Finding("export_accuracy", EXPORT_CLAIM, EXPORT_PAPER, text, result, values, source)


# -- output --------------------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


#: How to read a verdict, printed under every findings table (markdown, HTML, README).
READING_NOTE = (
    f"How to read: each claim is decided by one rule at alpha = {ALPHA:g}. \"holds\" = the test rejects \"no "
    "difference\" in the claimed direction; \"does not hold\" = it rejects it in the other direction; "
    "\"inconclusive\" = the difference is within the noise of this many images (more images may decide it); "
    "\"not measured\" = the run lacks the numbers. effect = the claimed difference (> 0 favours the claim: a rate "
    "or TM difference), with its 95 % interval; n = the images the test rests on. A rule that must hold for "
    "several models or eps reports the one that decided it. \"point estimate\" = no per-image outcomes were "
    "stored, so no test was possible."
)


def evidence(f: Finding) -> dict[str, str]:
    """The formatted evidence of a finding: test, p, effect [95 % interval], n."""
    r = f.result
    effect = "n/a" if is_missing(r.effect) else f"{r.effect:+.3f}"
    interval = fmt_interval(r.interval, lambda v: f"{v:+.3f}")
    return {"test": r.test, "p": fmt_p(r.p_value), "effect": effect if interval == "n/a" else f"{effect} {interval}",
            "n": "n/a" if r.n is None else str(r.n)}


def findings_markdown(findings: Sequence[Finding], heading: str | None = None) -> str:
    """A markdown table: claim | paper | this run | verdict | test | p | effect [95 % interval] | n,
    one row per finding, and READING_NOTE under it."""
    lines = [heading, ""] if heading else []
    lines += ["| claim | paper | this run | verdict | test | p | effect [95 % interval] | n |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for f in findings:
        e = evidence(f)
        lines.append(f"| {_md_cell(f.claim)} | {_md_cell(f.paper)} | {_md_cell(f.this_run)} | {f.verdict} | "
                     f"{_md_cell(e['test'])} | {e['p']} | {e['effect']} | {e['n']} |")
    lines += ["", READING_NOTE]
    return "\n".join(lines) + "\n"
