"""The report's adaptive-robustness section: the worst-case table, the gradient-masking flags, and
the transfer matrices of different attack families side by side.

Reads outputs only: evaluation.json's ``worst_case`` and ``masking`` (trendcli.ensemble.worst_case,
trendcli.ensemble.masking) and the matrices' JSON. Matrices over the same models are compared
with, per matrix: the mean off-diagonal TM (pairs with N_g > 0) and the pooled TM = sum N_t /
sum N_g over the off-diagonal pairs with its Wilson 95 % interval; and per ordered pair, TM =
N_t / N_g with its Wilson interval under each attack (docs/method.md eq. 1).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from trendcli.stats import fmt_interval, fmt_rate, fmt_tm, wilson_interval

__all__ = ["SECTION_ID", "attack_family_rows", "section_html", "worst_case_rows"]

SECTION_ID = "adaptive"


def _rate_iv(rec: dict[str, Any] | None) -> str:
    if not rec:
        return "n/a"
    return f"{fmt_rate(rec.get('rate'))} {fmt_interval(rec.get('interval'))}"


def worst_case_rows(worst: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The worst-case table: one row per target (the ensemble, then each member alone), one
    column per attack of the suite (adv. accuracy [95 %]), then robust accuracy [95 %] and n."""
    attacks: list[str] = []
    for target in [worst["ensemble"], *worst["members"].values()]:
        attacks += [a for a in target["attacks"] if a not in attacks]
    # white-box PGD-type first (the rules; PGD for a member alone), then the adaptive attacks, then transfer
    attacks.sort(key=lambda a: 2 if a.startswith("transfer") else 1 if a in ("apgd", "apgd_t", "square") else 0)
    head = ["target", *attacks, "robust accuracy [95 %]", "n", "strongest"]
    rows = []
    for name, target in [("ensemble (vote)", worst["ensemble"]), *worst["members"].items()]:
        cells = [_rate_iv(target["attacks"].get(a)) if a in target["attacks"] else "-" for a in attacks]
        rows.append([name, *cells, _rate_iv(target["robust"]), str(target["robust"]["n"]), target["strongest"]])
    return head, rows


def attack_family_rows(matrices: Sequence[Any]) -> tuple[list[list[str]], list[str], list[list[str]]] | None:
    """Matrices over the same models (same names) side by side: summary rows, pair-table head and
    rows; None when fewer than two matrices share their models."""
    if len(matrices) < 2:
        return None
    first = list(matrices[0].data.get("names") or [])
    same = [m for m in matrices if list(m.data.get("names") or []) == first]
    if len(same) < 2:
        return None
    summary = []
    for mx in same:
        n_g, n_t = np.asarray(mx.data["n_g"], float), np.asarray(mx.data["n_t"], float)
        off = ~np.eye(len(first), dtype=bool) & (n_g > 0)
        mean_tm = float(np.mean(n_t[off] / n_g[off])) if off.any() else None
        k, n = int(n_t[off].sum()), int(n_g[off].sum())
        pooled = k / n if n else None
        summary.append([mx.name, _attack_label(mx.data), fmt_tm(mean_tm),
                        f"{fmt_tm(pooled)} {fmt_interval(list(wilson_interval(k, n)) if n else None)}", f"{k} / {n}"])
    head = ["source -> target", *(f"TM {mx.name} [95 %]" for mx in same)]
    rows = []
    for i, s in enumerate(first):
        for j, t in enumerate(first):
            if i == j:
                continue
            cells = []
            for mx in same:
                tm, iv = mx.data["tm"][i][j], (mx.data.get("tm_interval") or [[None] * len(first)] * len(first))[i][j]
                cells.append(f"{fmt_tm(tm)} {fmt_interval(iv)} ({mx.data['n_t'][i][j]}/{mx.data['n_g'][i][j]})")
            rows.append([f"{s} -> {t}", *cells])
    return summary, head, rows


def _attack_label(data: dict[str, Any]) -> str:
    atk = data.get("attack") or {}
    params = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in (atk.get("params") or {}).items())
    return f"{atk.get('method', '?')}({params})"


def section_html(run: Any) -> str:
    """The section: the worst case and masking flags of every evaluation that ran the worst-case
    protocol, then the attack-family comparison of the matrices."""
    from trendcli.report.html import _e, _table

    out = [f'<section id="{SECTION_ID}"><h2>Adaptive attacks</h2>']
    worst = [ev for ev in run.evaluations if ev.data.get("worst_case")]
    if not worst:
        out.append("<p class=muted>No evaluation ran the worst-case protocol (trend evaluate --protocol worst-case).</p>")
    for ev in worst:
        w, masking = ev.data["worst_case"], ev.data.get("masking") or {}
        s = w.get("settings") or {}
        sq = s.get("square") or {}
        out.append(f"<h3>{_e(ev.name)}: worst case at eps {_e(w['eps'])} on {_e(w['n_images'])} images</h3>"
                   f"<p class=muted>{_e(w.get('definition', ''))}. Suite: {_e(', '.join(s.get('suite') or []))}; "
                   f"Square budget {_e(sq.get('n_queries', 'n/a'))} queries per image; "
                   f"APGD {_e((s.get('apgd') or {}).get('n_iter', 'n/a'))} iterations.</p>")
        head, rows = worst_case_rows(w)
        out.append(_table(head, rows, num_from=1))
        for reason in (w.get("not_run") or {}).items():
            out.append(f"<p class=muted>not run: {_e(reason[0])} ({_e(reason[1])})</p>")
        claim = w.get("claim") or {}
        out.append(f"<p><b>{_e(claim.get('claim', ''))}</b>: {_e(claim.get('verdict', 'not measured'))} "
                   f"({_e(claim.get('test', ''))}); {_e(claim.get('this_run', ''))}.</p>")
        surv = w.get("claims_survival") or {}
        if surv:
            out.append(_table(["paper claim", "standard protocol", "worst case", "survives"],
                              [[k, v["standard"], v["worst_case"], {True: "yes", False: "no"}.get(v["survives"], "n/a")]
                               for k, v in surv.items()]))
        flags = [("ensemble", f) for f in masking.get("ensemble") or []]
        flags += [(m, f) for m, fl in (masking.get("members") or {}).items() for f in fl]
        if flags:
            out.append("<p>Gradient-masking flags (Carlini et al. 2019 checklist); <b>fired</b> = the white-box "
                       "numbers are suspect:</p>")
            out.append(_table(["target", "check", "fired", "numbers"],
                              [[t, f["check"], {True: "FIRED", False: "no"}.get(f["fired"], "not measured"), f["text"]]
                               for t, f in flags]))
    family = attack_family_rows(run.matrices)
    if family:
        summary, head, rows = family
        out.append("<h3>Transferability across attack families</h3><p class=muted>Same models, one matrix per "
                   "attack; mean TM over the off-diagonal pairs with N_g &gt; 0; pooled TM = sum N_t / sum N_g "
                   "with its Wilson 95 % interval.</p>")
        out.append(_table(["matrix", "attack", "mean TM", "pooled TM [95 %]", "N_t / N_g"], summary, num_from=2))
        out.append(f"<details><summary>per pair ({len(rows)} ordered pairs)</summary>{_table(head, rows, num_from=1)}</details>")
    return "".join(out) + "</section>"
