"""The results of an ensemble evaluation, without torch: SetResult (one adversarial set), the
Evaluation value behind evaluation.json, the robustness ratios and the claims.

trendcli.ensemble.evaluation runs the attacks and fills these. Every rate is stored with its
Wilson 95 % interval, and every set with its per-image outcomes (``per_image``: a string of 0
and 1 per image, trendcli.stats.encode_bits), so that the findings can compare two sets on the
same images (trendcli.report.ensemble_findings.paired_outcomes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from trendcli.report.ensemble_findings import eps_key, ensemble_findings, paired_outcomes, strongest_attack
from trendcli.stats import (
    NOT_MEASURED,
    decode_bits,
    fmt_rate,
    fmt_ratio,
    is_missing,
    jsonable,
    ratio,
    wilson_interval,
)

__all__ = ["CLAIM_KEYS", "FORMAT", "RATIO_DEFINITION", "Evaluation", "SetResult", "check_claims", "eps_key",
           "interval_of", "robustness_ratios"]

FORMAT = "trendcli-evaluation/1"
RATIO_DEFINITION = (
    "adversarial accuracy of the ensemble vote under the ensemble attack / adversarial accuracy of "
    "the member alone under the member attack (settings.member_attack: white-box PGD, or Square when a "
    "member is black-box), same eps, parameters, seed and images"
)


def interval_of(bits: str | None, rate: float | None = None, n: int | None = None) -> list[float | None]:
    """The Wilson 95 % interval of a rate from its per-image outcomes, or from rate x n images
    when the outcomes are missing; [None, None] when neither is known."""
    if bits:
        ok = decode_bits(bits)
        return jsonable(list(wilson_interval(int(ok.sum()), int(ok.size))))
    if rate is not None and not is_missing(rate) and n:
        return jsonable(list(wilson_interval(round(float(rate) * n), int(n))))
    return [None, None]


@dataclass
class SetResult:
    """One adversarial set and the accuracy of the vote and of every member on it."""

    kind: str  # ensemble | member | transfer | prefix
    source: list[str]  # ids of the attacked model(s)
    attack: str
    eps: float
    key: str
    cached: bool
    seconds: float
    source_accuracy: float  # the attacked source's own adversarial accuracy (a vote for several)
    ensemble_accuracy: float
    member_accuracy: dict[str, float]
    #: per-image correctness: {"source": bits, "ensemble": bits, "members": {member: bits}}
    per_image: dict[str, Any] = field(default_factory=dict)
    #: the vote's accuracy on these images with each tie-break (the ensemble's own is ensemble_accuracy)
    ensemble_accuracy_by_tie_break: dict[str, float] = field(default_factory=dict)

    def intervals(self, n: int | None = None) -> dict[str, Any]:
        """Wilson 95 % intervals of ``source_accuracy``, ``ensemble_accuracy`` and each member's
        (from the per-image outcomes; else from the rates on ``n`` images)."""
        bits = self.per_image or {}
        members = bits.get("members") or {}
        return {"source": interval_of(bits.get("source"), self.source_accuracy, n),
                "ensemble": interval_of(bits.get("ensemble"), self.ensemble_accuracy, n),
                "members": {m: interval_of(members.get(m), a, n) for m, a in self.member_accuracy.items()}}

    def to_dict(self, n: int | None = None) -> dict[str, Any]:
        return {**asdict(self), "intervals": self.intervals(n)}


# -- pure analysis -----------------------------------------------------------------------------

#: evaluation.json's claim keys and the findings (trendcli.report.ensemble_findings) behind them.
CLAIM_KEYS = {
    "agd_vs_dag": "agd_beats_dag_at_small_eps",
    "ensemble_robustness": "ensemble_beats_members",
    "ensemble_robustness_worst_case": "ensemble_beats_members_worst_case",
    "ensemble_robustness_black_box": "ensemble_beats_members_black_box",
}


def robustness_ratios(
    ensemble_adv: dict[str, dict[str, float]], member_adv: dict[str, dict[str, float]]
) -> dict[str, dict[str, dict[str, float]]]:
    """ratio[rule][eps][member] = ensemble_adv[rule][eps] / member_adv[member][eps] (module doc)."""
    return {
        rule: {e: {m: ratio(acc, member_adv[m].get(e)) for m in member_adv} for e, acc in by_eps.items()}
        for rule, by_eps in ensemble_adv.items()
    }


def check_claims(
    ensemble_adv: dict[str, dict[str, float]],
    member_adv: dict[str, dict[str, float]],
    transfer: dict[str, dict[str, Any]] | None = None,
    n: int | None = None,
    sets: list[dict[str, Any]] | None = None,
    member_attack: str = "pgd",
) -> dict[str, Any]:
    """The paper's claims, measured: evaluation.json's ``claims`` (keys: CLAIM_KEYS' values).

    The verdicts come from trendcli.report.ensemble_findings.ensemble_findings (its docstrings
    state each rule). Each entry holds the finding (claim, paper, this_run, verdict, holds,
    test, p_value, effect, interval, n), its numbers (``by_eps`` and the rest) and, when not
    measured, the ``reason``. ``sets``: evaluation.json's sets, whose per-image outcomes give
    the paired tests (trendcli.report.ensemble_findings.paired_outcomes).
    """

    found = ensemble_findings(ensemble_adv, member_adv, transfer, n=n, outcomes=paired_outcomes(sets) if sets else None,
                              member_attack=member_attack)
    claims: dict[str, Any] = {}
    for f in found:
        entry = {k: v for k, v in f.to_dict().items() if k not in ("values", "source")}
        entry.update(jsonable(f.values))
        if f.verdict == NOT_MEASURED:
            entry["reason"] = f.this_run
        claims[CLAIM_KEYS[f.key]] = entry
    return claims


# -- the evaluation --------------------------------------------------------------------------


@dataclass
class Evaluation:
    """Everything `trend evaluate` measured; ``to_dict()`` is the JSON written."""

    ensemble: dict[str, Any]
    settings: dict[str, Any]
    n_images: int
    clean: dict[str, Any]
    sets: list[SetResult]
    sizes: dict[str, Any] | None = None
    domination: dict[str, Any] | None = None
    plots: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    not_run: dict[str, str] = field(default_factory=dict)  # a step left out -> why (e.g. a black-box member)

    @property
    def member_attack(self) -> str:
        """The attack on each member alone (``pgd`` unless the settings say otherwise)."""
        return str(self.settings.get("member_attack") or "pgd")

    def ensemble_adv(self) -> dict[str, dict[str, float]]:
        """rule -> eps key -> adversarial accuracy of the vote under that ensemble attack."""
        out: dict[str, dict[str, float]] = {}
        for s in self.sets:
            if s.kind == "ensemble":
                out.setdefault(s.attack, {})[eps_key(s.eps)] = s.ensemble_accuracy
        return out

    def member_adv(self) -> dict[str, dict[str, float]]:
        """member -> eps key -> its adversarial accuracy under the member attack on itself."""
        out: dict[str, dict[str, float]] = {m: {} for m in self.ensemble["members"]}
        for s in self.sets:
            if s.kind == "member":
                out[s.source[0]][eps_key(s.eps)] = s.source_accuracy
        return out

    def transfer(self) -> dict[str, dict[str, Any]]:
        """eps key -> the vote's, the members' and the source's accuracy on the transfer set."""
        return {
            eps_key(s.eps): {"source": s.source[0], "source_accuracy": s.source_accuracy,
                             "ensemble_accuracy": s.ensemble_accuracy, "member_accuracy": s.member_accuracy}
            for s in self.sets
            if s.kind == "transfer"
        }

    def table(self) -> list[dict[str, Any]]:
        """One row per (ensemble attack, eps): the vote's adversarial accuracy, each member's
        under the member attack (``member_pgd_accuracy``, named for the paper's PGD; the row's
        ``member_attack`` says which), the ratios, and each member's accuracy on the ensemble's
        adversarial images."""
        member_adv = self.member_adv()
        member_iv = {(s.source[0], eps_key(s.eps)): s.intervals(self.n_images)["source"]
                     for s in self.sets if s.kind == "member"}
        rows = []
        for s in self.sets:
            if s.kind != "ensemble":
                continue
            e = eps_key(s.eps)
            rows.append({
                "attack": s.attack,
                "eps": s.eps,
                "ensemble_accuracy": s.ensemble_accuracy,
                "ensemble_accuracy_interval": s.intervals(self.n_images)["ensemble"],
                "ensemble_accuracy_by_tie_break": s.ensemble_accuracy_by_tie_break,
                "member_attack": self.member_attack,
                "member_pgd_accuracy": {m: member_adv[m].get(e) for m in member_adv},
                "member_pgd_accuracy_interval": {m: member_iv.get((m, e), [None, None]) for m in member_adv},
                "ratio": {m: ratio(s.ensemble_accuracy, member_adv[m].get(e)) for m in member_adv},
                "member_accuracy_on_ensemble_adv": s.member_accuracy,
            })
        return rows

    def clean_record(self) -> dict[str, Any]:
        """The clean accuracies with their Wilson 95 % intervals (``interval``, ``member_intervals``)."""
        bits = self.clean.get("per_image") or {}
        members = bits.get("members") or {}
        return {**self.clean,
                "interval": interval_of(bits.get("ensemble"), self.clean.get("ensemble"), self.n_images),
                "member_intervals": {m: interval_of(members.get(m), a, self.n_images)
                                     for m, a in (self.clean.get("members") or {}).items()}}

    def headline(self, eps: float = 0.01) -> list[str]:
        """Sentences like the paper's: "1.30x more robust than Q1 at eps 0.01" (A-GD, or the strongest rule)."""
        adv = self.ensemble_adv()
        keys = sorted({e for by in adv.values() for e in by}, key=lambda k: abs(float(k) - eps))
        if not keys:
            return []
        e = keys[0]
        rule = "agd" if e in adv.get("agd", {}) else strongest_attack(adv, e)
        ens = adv[rule][e]
        out = []
        for m, by in self.member_adv().items():
            r = ratio(ens, by.get(e))
            text = "n/a (member at 0)" if is_missing(r) else fmt_ratio(r)
            out.append(f"{text} more robust than {m} at eps {e} "
                       f"({rule}: {fmt_rate(ens)} vs {self.member_attack} {fmt_rate(by.get(e))})")
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON written as evaluation.json (undefined numbers as null)."""
        adv = self.ensemble_adv()
        sets = [s.to_dict(self.n_images) for s in self.sets]
        return jsonable({
            "format": FORMAT,
            "ensemble": self.ensemble,
            "settings": self.settings,
            "n_images": self.n_images,
            "clean_accuracy": self.clean_record(),
            "table": self.table(),
            "ratios": {"definition": RATIO_DEFINITION, "by_attack": robustness_ratios(adv, self.member_adv())},
            "headline": self.headline(),
            "transfer": self.transfer(),
            "sizes": self.sizes,
            "domination": self.domination,
            "claims": check_claims(adv, self.member_adv(), self.transfer() or None, self.n_images, sets,
                                   member_attack=self.member_attack),
            "sets": sets,
            "not_run": self.not_run,
            "plots": self.plots,
            "seconds": self.seconds,
        })
