"""This run's measurements set beside the paper's claims (sections IV-V of the paper).

Each function takes plain numbers (a TM matrix with NaN for undefined entries, accuracies,
success rates) and returns a :class:`Finding`: the claim, the paper's number, this run's
number(s) and a verdict -- holds, does not hold, or not measured (the run lacks the models or
the evaluation the claim needs). The verdicts are fixed rules stated in each docstring; nothing
here is tuned toward the paper's numbers.

TM(s->t) = N_t / N_g, rows = source, columns = target (docs/method.md, "Transferability
metric (eq. 1)"); the diagonal is never part of a mean here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Hashable, Mapping, Sequence

import numpy as np

__all__ = [
    "Finding",
    "LOW_BIT_INPUTS",
    "agd_vs_dag_finding",
    "asymmetry_finding",
    "ensemble_robustness_finding",
    "export_accuracy_finding",
    "findings_markdown",
    "fmt",
    "fmt_ratio",
    "low_bit_input_finding",
    "quant_label",
    "seed_finding",
]

#: Input quantizers the paper calls low bit width (section IV-D1: "HT, Q1 and Q2").
LOW_BIT_INPUTS = ("q1", "q2", "ht", "ht_fs")
FULL_PRECISION = 32
VERDICTS = {True: "holds", False: "does not hold", None: "not measured"}


@dataclass(frozen=True)
class Finding:
    """One claim of the paper and what this run measured for it."""

    key: str
    claim: str
    paper: str
    this_run: str
    holds: bool | None  # None: not measured
    values: dict[str, Any] = field(default_factory=dict)  # JSON-ready numbers behind ``this_run``
    source: str | None = None  # the run file the numbers come from

    @property
    def verdict(self) -> str:
        """``holds``, ``does not hold`` or ``not measured``."""
        return VERDICTS[self.holds]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (non-finite numbers as null)."""
        return {
            "key": self.key,
            "claim": self.claim,
            "paper": self.paper,
            "this_run": self.this_run,
            "holds": self.holds,
            "verdict": self.verdict,
            "values": _jsonable(self.values),
            "source": self.source,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for a table cell; ``n/a`` for None or NaN, ``inf`` for infinity."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


def fmt_ratio(value: float | None) -> str:
    """A ratio as ``1.30x``."""
    text = fmt(value, 2)
    return text if text == "n/a" else f"{text}x"


def quant_label(input_quant: str) -> str:
    """``q1`` -> ``Q1``, ``ht_fs`` -> ``HT-FS``, ``fp`` -> ``FP``."""
    return str(input_quant).upper().replace("_", "-")


def _matrix(tm: Any) -> np.ndarray:
    m = np.array(tm, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"TM must be a square matrix, got shape {m.shape}")
    return m


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
) -> Finding:
    """Mean TM of the ordered pairs that involve a Q1/Q2/HT model vs the pairs among FP models.

    Low-bit: ``input_quant`` in LOW_BIT_INPUTS. FP: input ``fp`` with weights and activations
    at full precision (32 bits). Means run over defined off-diagonal entries. Holds when the
    mean over pairs involving a low-bit model is below the mean among FP models; not measured
    without at least one low-bit model and two FP models with a defined pair each.
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
    mean_low, n_low = _mean_over(m, low[:, None] | low[None, :])
    mean_fp, n_fp = _mean_over(m, fp[:, None] & fp[None, :])
    into_low, n_into = _mean_over(m, np.ones_like(m, dtype=bool) & low[None, :])
    from_low, n_from = _mean_over(m, low[:, None] & np.ones_like(m, dtype=bool))
    kinds = sorted({quant_label(q) for q, lo in zip(iq, low) if lo})
    values = {
        "low_bit_models": [n for n, lo in zip(names, low) if lo],
        "fp_models": [n for n, f in zip(names, fp) if f],
        "mean_tm_pairs_with_low_bit": mean_low,
        "pairs_with_low_bit": n_low,
        "mean_tm_among_fp": mean_fp,
        "pairs_among_fp": n_fp,
        "mean_tm_into_low_bit": into_low,
        "mean_tm_from_low_bit": from_low,
    }
    if n_low == 0 or n_fp == 0:
        missing = []
        if not low.any():
            missing.append("no Q1/Q2/HT model")
        elif n_low == 0:
            missing.append("no defined pair with a Q1/Q2/HT model")
        if fp.sum() < 2:
            missing.append("fewer than two full-precision models")
        elif n_fp == 0:
            missing.append("no defined pair among full-precision models")
        return Finding("low_bit_input", LOW_BIT_CLAIM, LOW_BIT_PAPER, "; ".join(missing), None, values, source)
    label = "/".join(kinds)
    text = (
        f"mean TM of pairs with {label}: {fmt(mean_low)} ({n_low} pairs; into {label} {fmt(into_low)}, "
        f"from {label} {fmt(from_low)}) vs among FP models: {fmt(mean_fp)} ({n_fp} pairs)"
    )
    return Finding("low_bit_input", LOW_BIT_CLAIM, LOW_BIT_PAPER, text, bool(mean_low < mean_fp), values, source)


# -- 2. asymmetry --------------------------------------------------------------------------------------

ASYMMETRY_CLAIM = "Transferability is asymmetric: TM(a->b) need not equal TM(b->a)"
ASYMMETRY_PAPER = (
    "\"the matrices are considerably asymmetric\" (sec. IV-C); e.g. VGG11 SGD->Adam 77.5% vs "
    "Adam->SGD 64.5% (table III, CIFAR-10 PGD)"
)


def asymmetry_finding(
    names: Sequence[str], tm: Any, n_g: Any, z: float = 3.0, source: str | None = None
) -> Finding:
    """Mean |TM(a->b) - TM(b->a)| over unordered pairs, and the most asymmetric pair.

    A pair counts as asymmetric when the difference exceeds ``z`` binomial standard errors,
    SE = sqrt(p_ab (1 - p_ab) / N_g(a) + p_ba (1 - p_ba) / N_g(b)) with p = TM and N_g the
    generated counts of eq. 1 (a difference of 0 with SE 0 is not asymmetric). Holds when at
    least one pair is; not measured without a pair defined both ways.
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
            pairs.append((diff, a, b, se, bool(diff > z * se)))
    values: dict[str, Any] = {"pairs": len(pairs), "z": z}
    if not pairs:
        return Finding("asymmetry", ASYMMETRY_CLAIM, ASYMMETRY_PAPER, "no pair with TM defined in both directions",
                       None, values, source)
    mean = float(np.mean([p[0] for p in pairs]))
    diff, a, b, se, _ = max(pairs, key=lambda p: (p[0], -p[1], -p[2]))
    if m[b, a] > m[a, b]:
        a, b = b, a
    significant = int(sum(p[4] for p in pairs))
    values.update({
        "mean_abs_difference": mean,
        "max_pair": [names[a], names[b]],
        "max_tm_forward": float(m[a, b]),
        "max_tm_backward": float(m[b, a]),
        "max_abs_difference": diff,
        "max_standard_error": se,
        "asymmetric_pairs": significant,
    })
    text = (
        f"mean |TM(a->b) - TM(b->a)| = {fmt(mean)} over {len(pairs)} pairs; most asymmetric: "
        f"{names[a]} -> {names[b]} {fmt(m[a, b])} vs back {fmt(m[b, a])}; "
        f"{significant} of {len(pairs)} pairs differ by more than {z:g} standard errors"
    )
    return Finding("asymmetry", ASYMMETRY_CLAIM, ASYMMETRY_PAPER, text, significant > 0, values, source)


# -- 3. initialization ---------------------------------------------------------------------------------

SEED_CLAIM = "Initialization (seed) matters little: models that differ only in seed transfer highly"
SEED_PAPER = "seed to seed 89.89% +- 1.14 (ResNet18 SGD, CIFAR-10, PGD; table II, 90 ordered pairs)"


def seed_finding(
    names: Sequence[str],
    tm: Any,
    configs: Sequence[Hashable],
    seeds: Sequence[Any],
    source: str | None = None,
) -> Finding:
    """Mean +- std of TM over ordered pairs of models with one config and different seeds.

    ``configs[i]``: model i's training configuration without the seed (equal = same config).
    Holds when that mean is at least the mean TM over pairs of different configs (changing only
    the seed lowers transfer no more than changing the configuration); not measured without two
    seeds of one config, or without a pair of different configs to compare with.
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
        return Finding("seed", SEED_CLAIM, SEED_PAPER, "no two seeds of one configuration with a defined TM",
                       None, values, source)
    mean = float(vals.mean())
    std = float(vals.std(ddof=1)) if len(vals) > 1 else float("nan")
    values.update({"mean_tm_same_config": mean, "std_tm_same_config": std})
    text = f"seed to seed {fmt(mean)} +- {fmt(std)} ({len(vals)} ordered pairs)"
    if n_other == 0:
        return Finding("seed", SEED_CLAIM, SEED_PAPER, text + "; no pair of different configurations to compare with",
                       None, values, source)
    text += f" vs {fmt(mean_other)} between different configurations ({n_other} pairs)"
    return Finding("seed", SEED_CLAIM, SEED_PAPER, text, bool(mean >= mean_other), values, source)


# -- 4. A-GD vs D-AG -----------------------------------------------------------------------------------

AGD_CLAIM = "A-GD beats D-AG at small eps"
AGD_PAPER = "A-GD up to 1.56x the attack success rate of D-AG at small eps (sec. V-A2, fig. 6)"


def _ratio(num: float | None, den: float | None) -> float | None:
    """num / den; inf for x / 0 with x > 0; None when undefined (0 / 0 or a missing value)."""
    if num is None or den is None or not (math.isfinite(num) and math.isfinite(den)):
        return None
    if den == 0:
        return math.inf if num > 0 else None
    return num / den


def agd_vs_dag_finding(
    eps: Sequence[float],
    agd_success: Sequence[float | None],
    dag_success: Sequence[float | None],
    source: str | None = None,
) -> Finding:
    """Ratio of the ensemble attack success rates A-GD / D-AG at each eps.

    Success rate = share of the attacked images whose vote on x_adv is wrong (docs/method.md,
    "Attacks on an ensemble"). Holds when the ratio at the smallest eps where it is defined
    exceeds 1; not measured without both attacks at a common eps.
    """
    if not (len(eps) == len(agd_success) == len(dag_success)):
        raise ValueError("eps, A-GD and D-AG success rates must have one value per eps")
    order = sorted(range(len(eps)), key=lambda i: eps[i])
    ratios = {float(eps[i]): _ratio(agd_success[i], dag_success[i]) for i in order}
    values: dict[str, Any] = {
        "eps": [float(eps[i]) for i in order],
        "agd_success": [agd_success[i] for i in order],
        "dag_success": [dag_success[i] for i in order],
        "ratio": [ratios[float(eps[i])] for i in order],
    }
    defined = [(e, r) for e, r in ratios.items() if r is not None]
    if not defined:
        return Finding("agd_vs_dag", AGD_CLAIM, AGD_PAPER, "no eps with both A-GD and D-AG success measured (and non-zero)",
                       None, values, source)
    e0, r0 = defined[0]
    i0 = next(i for i in order if float(eps[i]) == e0)
    best_e, best_r = max(defined, key=lambda er: (er[1], -er[0]))
    values.update({"smallest_eps": e0, "ratio_at_smallest_eps": r0, "max_ratio": best_r, "eps_of_max_ratio": best_e})
    each = ", ".join(f"{e:g}: {fmt_ratio(r)}" for e, r in ratios.items())
    text = (
        f"A-GD / D-AG success at eps {e0:g}: {fmt(agd_success[i0])} / {fmt(dag_success[i0])} = {fmt_ratio(r0)} "
        f"(max {fmt_ratio(best_r)} at {best_e:g}; each eps: {each})"
    )
    return Finding("agd_vs_dag", AGD_CLAIM, AGD_PAPER, text, bool(r0 > 1), values, source)


# -- 5. ensemble robustness ----------------------------------------------------------------------------

ENSEMBLE_CLAIM = "The TREND ensemble is more robust than each of its members"
ENSEMBLE_PAPER = "FP-Q1-Q2 is 1.30x, 1.36x and 8.43x more robust than Q1, Q2 and FP (A-GD, eps 0.01, CIFAR-10)"
PAPER_EPS = 0.01


def ensemble_robustness_finding(
    attack: str,
    eps: Sequence[float],
    ensemble_adv: Sequence[float | None],
    members_adv: Mapping[str, Sequence[float | None]],
    paper_eps: float = PAPER_EPS,
    source: str | None = None,
) -> Finding:
    """Adversarial accuracy of the ensemble over each member's, under one attack.

    Ratio = adv. accuracy(ensemble) / adv. accuracy(member), read at the evaluated eps nearest
    the paper's 0.01 (ties: the smaller eps). Holds when the ensemble's adversarial accuracy
    exceeds every member's there (every ratio > 1); not measured without the numbers.
    """
    if len(eps) != len(ensemble_adv) or any(len(v) != len(eps) for v in members_adv.values()):
        raise ValueError("the ensemble and every member need one adversarial accuracy per eps")
    usable = [i for i in range(len(eps)) if ensemble_adv[i] is not None
              and all(v[i] is not None for v in members_adv.values())]
    values: dict[str, Any] = {"attack": attack, "eps": [float(e) for e in eps]}
    if not usable or not members_adv:
        return Finding("ensemble_robustness", ENSEMBLE_CLAIM, ENSEMBLE_PAPER,
                       f"no eps with the ensemble's and every member's {attack} accuracy", None, values, source)
    i = min(usable, key=lambda j: (abs(eps[j] - paper_eps), eps[j]))
    ens = float(ensemble_adv[i])
    ratios = {name: _ratio(ens, float(v[i])) for name, v in members_adv.items()}
    per_eps = {
        float(eps[j]): {name: _ratio(float(ensemble_adv[j]), float(v[j])) for name, v in members_adv.items()}
        for j in usable
    }
    holds = bool(all(ens > float(v[i]) for v in members_adv.values()))
    values.update({
        "eps_used": float(eps[i]),
        "ensemble_adv_accuracy": ens,
        "members_adv_accuracy": {n: float(v[i]) for n, v in members_adv.items()},
        "ratios": ratios,
        "ratios_per_eps": per_eps,
    })
    parts = ", ".join(f"{fmt_ratio(r)} vs {n} ({fmt(float(members_adv[n][i]))})" for n, r in ratios.items())
    text = f"{attack} at eps {eps[i]:g}: ensemble adv. accuracy {fmt(ens)}; {parts}"
    return Finding("ensemble_robustness", ENSEMBLE_CLAIM, ENSEMBLE_PAPER, text, holds, values, source)


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
        return Finding("export_accuracy", EXPORT_CLAIM, EXPORT_PAPER, what, None, values, source)
    text = f"ONNX {fmt(onnx_accuracy, 4)} on {onnx_images or '?'} images vs torch {fmt(torch_accuracy, 4)} on {torch_images or '?'}"
    if note:
        text += f" ({note})"
    if not torch_images or not onnx_images or torch_images != onnx_images:
        return Finding("export_accuracy", EXPORT_CLAIM, EXPORT_PAPER, text + "; different image counts, not comparable",
                       None, values, source)
    correct_torch = round(torch_accuracy * torch_images)
    correct_onnx = round(onnx_accuracy * onnx_images)
    values.update({"torch_correct": correct_torch, "onnx_correct": correct_onnx})
    return Finding("export_accuracy", EXPORT_CLAIM, EXPORT_PAPER, text, bool(correct_torch == correct_onnx), values, source)


# -- output --------------------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def findings_markdown(findings: Sequence[Finding], heading: str | None = None) -> str:
    """A markdown table: claim | paper | this run | holds? (one row per finding)."""
    lines = [heading, ""] if heading else []
    lines += ["| claim | paper | this run | holds? |", "| --- | --- | --- | --- |"]
    for f in findings:
        lines.append(f"| {_md_cell(f.claim)} | {_md_cell(f.paper)} | {_md_cell(f.this_run)} | {f.verdict} |")
    return "\n".join(lines) + "\n"
