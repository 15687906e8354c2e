"""The run's findings for `trend report`: which numbers of which run file go into which rule.

The rules themselves are in trendcli.report.findings (transferability, export) and
trendcli.report.ensemble_findings (the ensemble claims, shared with `trend evaluate`).
"""

from __future__ import annotations

import json
from typing import Any

from trendcli.report import findings as claims
from trendcli.report.ensemble_findings import CLAIMS, ensemble_findings, paired_outcomes
from trendcli.report.findings import (
    Finding,
    asymmetry_finding,
    export_accuracy_finding,
    low_bit_input_finding,
    not_measured,
    seed_finding,
)
from trendcli.report.runs import EvaluationView, Run, checked_number
from trendcli.stats import fmt_rate
from trendcli.transfer.counts import per_image_arrays

__all__ = ["compute_findings", "evaluation_numbers"]


def _config_key(entry: dict[str, Any]) -> str:
    """A model's configuration without its seed (what differs between seeds of one config)."""
    train = {k: v for k, v in entry["train"].items() if k not in ("seed", "device", "data_dir")}
    return json.dumps({"spec": entry["spec"], "train": train}, sort_keys=True, default=str)


def _matrix_findings(run: Run) -> list[Finding]:
    if not run.matrices:
        why = "no transferability matrix in this run"
        return [not_measured("low_bit_input", claims.LOW_BIT_CLAIM, claims.LOW_BIT_PAPER, why),
                not_measured("asymmetry", claims.ASYMMETRY_CLAIM, claims.ASYMMETRY_PAPER, why),
                not_measured("seed", claims.SEED_CLAIM, claims.SEED_PAPER, why)]
    out = []
    several = len(run.matrices) > 1
    outcomes = {mx.path: per_image_arrays(mx.names, mx.data.get("per_image")) for mx in run.matrices}
    for kind in ("low_bit_input", "asymmetry", "seed"):
        for mx in run.matrices:
            src = str(mx.path.relative_to(run.path))
            oc = outcomes[mx.path]
            if kind == "low_bit_input":
                f = low_bit_input_finding(mx.names, mx.tm, [e["spec"] for e in mx.entries], source=src, outcomes=oc)
            elif kind == "asymmetry":
                f = asymmetry_finding(mx.names, mx.tm, mx.n_g, source=src, outcomes=oc)
            else:
                f = seed_finding(mx.names, mx.tm, [_config_key(e) for e in mx.entries],
                                 [e["train"].get("seed") for e in mx.entries], source=src, n_g=mx.n_g, outcomes=oc)
            out.append(f.tagged(mx.name if several else None))
    return out


def evaluation_numbers(ev: EvaluationView) -> tuple[dict, dict, dict, int | None]:
    """What ensemble_findings takes, read from evaluation.json's table and transfer (eps as floats):
    the vote's accuracy per rule and eps, each member's under the member attack (PGD) per eps, the
    transfer sets, n."""
    ensemble_adv: dict[str, dict[float, float | None]] = {}
    member_adv: dict[str, dict[float, float | None]] = {str(m): {} for m in ev.data["ensemble"]["members"]}
    for row in ev.data["table"]:
        e = float(row["eps"])
        ensemble_adv.setdefault(row["attack"], {})[e] = row.get("ensemble_accuracy")
        for m, acc in (row.get("member_pgd_accuracy") or {}).items():
            member_adv.setdefault(str(m), {})[e] = acc
    transfer = {float(e): t for e, t in (ev.data.get("transfer") or {}).items()}
    n = ev.data.get("n_images")
    return ensemble_adv, member_adv, transfer, n if isinstance(n, int) else None


def _evaluation_findings(run: Run) -> list[Finding]:
    """The ensemble findings of every evaluation, grouped by claim."""
    if not run.evaluations:
        why = "no ensemble evaluation in this run"
        return [not_measured(k, claim, paper, why) for k, (claim, paper) in CLAIMS.items()]
    several = len(run.evaluations) > 1
    per_eval = []
    for ev in run.evaluations:
        ensemble_adv, member_adv, transfer, n = evaluation_numbers(ev)
        src = str(ev.path.relative_to(run.path))
        found = ensemble_findings(ensemble_adv, member_adv, transfer, n=n, source=src,
                                  outcomes=paired_outcomes(ev.data.get("sets") or []),
                                  member_attack=str((ev.data.get("settings") or {}).get("member_attack") or "pgd"))
        per_eval.append([f.tagged(ev.name if several else None) for f in found])
    return [f for group in zip(*per_eval) for f in group]


def _form_note(run: Run, ev: EvaluationView) -> str:
    """Why torch and ONNX numbers may legitimately differ: the evaluation's Qb form."""
    per_image = ev.data["ensemble"].get("per_image")
    if per_image is True:
        return ""
    dirs = ev.data["ensemble"].get("model_dirs") or []
    batchwise = []
    for m, d in zip(ev.data["ensemble"]["members"], dirs):
        spec = (run.card_for(d) or {}).get("spec", {})
        q = str(spec.get("input_quant", ""))
        if q.startswith("q") and (per_image is False or not spec.get("per_image", False)):
            batchwise.append(str(m))
    return f"the evaluation used per-minibatch Qb for {', '.join(batchwise)}; the export is per image" if batchwise else ""


def _export_findings(run: Run) -> list[Finding]:
    found = []
    for ex in run.exports:
        record = ex.infer_path or ex.onnx
        src = str(record.relative_to(run.path)) if record is not None else None
        members = set((ex.infer or {}).get("member_accuracy", {}) or [m.get("id") for m in (ex.metadata or {}).get("members", [])])
        ev = next((e for e in run.evaluations if set(map(str, e.data["ensemble"]["members"])) == members), None)
        if ex.infer is None:
            f = export_accuracy_finding(None, None, None, None, source=src)
        elif ev is None:
            f = not_measured("export_accuracy", claims.EXPORT_CLAIM, claims.EXPORT_PAPER,
                             f"ONNX {fmt_rate(ex.infer['accuracy'])} on {ex.infer['n']} images; no torch evaluation of the same members",
                             {"onnx_accuracy": ex.infer["accuracy"], "onnx_images": ex.infer["n"]}, src)
        else:
            split_e = (ev.data.get("settings") or {}).get("split", "test")
            split_x = ex.infer.get("split", "test")
            note = _form_note(run, ev)
            if split_e != split_x:
                note = "; ".join(x for x in (note, f"different splits ({split_e} vs {split_x})") if x)
            # compare like with like: the torch vote under the tie-break the ONNX graph was exported with
            exported_tie = (ex.metadata or {}).get("tie_break")
            by_tie = ev.data["clean_accuracy"].get("by_tie_break") or {}
            torch_clean = by_tie.get(exported_tie, ev.data["clean_accuracy"].get("ensemble"))
            if exported_tie and exported_tie not in by_tie and ev.data["ensemble"].get("tie_break") != exported_tie:
                note = "; ".join(x for x in (note, f"the evaluation voted with {ev.data['ensemble'].get('tie_break')}, the export with {exported_tie}") if x)
            f = export_accuracy_finding(
                checked_number(torch_clean, ev.path, "clean_accuracy.ensemble"),
                ev.data.get("n_images") if split_e == split_x else None,
                ex.infer["accuracy"], ex.infer["n"], note=note, source=src,
            )
        found.append(f.tagged(ex.name if len(run.exports) > 1 else None))
    if not found:
        found.append(not_measured("export_accuracy", claims.EXPORT_CLAIM, claims.EXPORT_PAPER, "no export in this run"))
    return found


def compute_findings(run: Run) -> list[Finding]:
    """The run's findings in a fixed order: input quantization, asymmetry, seeds, A-GD vs D-AG,
    the ensemble against its members (under A-GD, the strongest attack, black-box transfer),
    export accuracy (trendcli.report.findings and .ensemble_findings state each rule)."""
    return _matrix_findings(run) + _evaluation_findings(run) + _export_findings(run)
