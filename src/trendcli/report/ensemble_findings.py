"""The paper's claims on ensemble attacks and robustness (section V): one verdict rule each.

`trend evaluate` (the ``claims`` of evaluation.json), `trend report` (findings.md,
findings.json, the HTML page) and the README findings table (`trend report --readme`) all
call :func:`ensemble_findings`, so the three cannot disagree. Each rule is stated in its
function's docstring:

- A-GD beats D-AG at small eps: A-GD's attack success rate exceeds D-AG's at EVERY evaluated
  eps below SMALL_EPS = 0.03 (paper sec. V-A: "Other attacks get close to A-GD performance
  around attack strength of about 0.03 and higher", so the claim is about the range below).
  Each eps is an exact McNemar test on the same images (A-GD's and D-AG's sets are made from
  the same images); the claim holds when every eps holds (trendcli.stats.all_of).
- The ensemble against its members (under A-GD; under the strongest ensemble attack; under
  black-box transfer): decided at the evaluated eps nearest the paper's 0.01 (ties: the
  smaller eps), where the vote's adversarial accuracy must exceed every member's, each an
  exact McNemar test on the same images: the vote on the ensemble attack's images against the
  member on its own PGD images (same image i in both). The other eps are listed beside it,
  each with its verdict.

Per-image outcomes (``outcomes``, from the sets of evaluation.json: :func:`paired_outcomes`)
make the tests possible; without them (an evaluation written before they were stored) a rule
compares the point estimates and says so in its ``test``.

Success rate = 1 - adversarial accuracy over all evaluated images (docs/method.md, "Attacks on
an ensemble"). Robustness ratio = adv. accuracy of the vote / adv. accuracy of the member
(trendcli.stats.ratio: NaN when the member is at 0, shown as n/a).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from trendcli.report.findings import Finding, decided, not_measured
from trendcli.stats import ClaimResult, all_of, decode_bits, fmt_rate, fmt_ratio, is_missing, paired_claim, ratio

__all__ = [
    "AGD_CLAIM",
    "BLACK_BOX_CLAIM",
    "CLAIMS",
    "ENSEMBLE_CLAIM",
    "PAPER_EPS",
    "SMALL_EPS",
    "WORST_CASE_CLAIM",
    "agd_vs_dag_finding",
    "black_box_finding",
    "ensemble_findings",
    "ensemble_robustness_finding",
    "paired_outcomes",
    "strongest_attack",
    "worst_case_finding",
]

#: "small eps" = eps below this (paper sec. V-A).
SMALL_EPS = 0.03
#: The eps of the paper's robustness numbers (sec. V-B: "at eps of 0.01").
PAPER_EPS = 0.01

AGD_CLAIM = "A-GD beats D-AG at small eps"
AGD_PAPER = "A-GD up to 1.56x the attack success rate of D-AG at small eps (sec. V-A2, fig. 6)"
ENSEMBLE_CLAIM = "The TREND ensemble is more robust than each of its members"
ENSEMBLE_PAPER = "FP-Q1-Q2 is 1.30x, 1.36x and 8.43x more robust than Q1, Q2 and FP (A-GD, eps 0.01, CIFAR-10)"
WORST_CASE_CLAIM = "The ensemble stays more robust than each member under the strongest ensemble attack"
WORST_CASE_PAPER = "fig. 9 reads robustness \"under the strongest attack\" (sec. V-B); here the rule leaving the vote least accurate"
BLACK_BOX_CLAIM = "The ensemble is more robust than each member against black-box transfer"
BLACK_BOX_PAPER = "not measured in the paper (trendcli's check: PGD on an outside model, evaluated on the vote and each member)"

#: finding key -> (claim, paper), in the order ensemble_findings returns them.
CLAIMS = {
    "agd_vs_dag": (AGD_CLAIM, AGD_PAPER),
    "ensemble_robustness": (ENSEMBLE_CLAIM, ENSEMBLE_PAPER),
    "ensemble_robustness_worst_case": (WORST_CASE_CLAIM, WORST_CASE_PAPER),
    "ensemble_robustness_black_box": (BLACK_BOX_CLAIM, BLACK_BOX_PAPER),
}


#: Outcomes per eps: eps -> bool [N] (True = correct on that eps's adversarial image).
PerEps = Mapping[float, Any]


def paired_outcomes(sets: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The per-image outcomes of evaluation.json's ``sets``, as ensemble_findings takes them.

    ``{"ensemble": {rule: {eps: vote correct}}, "member": {member: {eps: member correct under
    PGD on itself}}, "transfer": {eps: {"ensemble": ..., "members": {member: ...}}}}``; bool
    arrays. Sets without ``per_image`` (older files) are left out.
    """
    out: dict[str, Any] = {"ensemble": {}, "member": {}, "transfer": {}}
    for st in sets:
        bits = st.get("per_image")
        if not bits:
            continue
        e = float(st["eps"])
        if st["kind"] == "ensemble":
            out["ensemble"].setdefault(st["attack"], {})[e] = decode_bits(bits["ensemble"])
        elif st["kind"] == "member":
            out["member"].setdefault(str(st["source"][0]), {})[e] = decode_bits(bits["source"])
        elif st["kind"] == "transfer":
            out["transfer"][e] = {"ensemble": decode_bits(bits["ensemble"]),
                                  "members": {m: decode_bits(b) for m, b in bits["members"].items()}}
    return out


def _pointwise(holds: bool, effect: float, n: int | None) -> ClaimResult:
    """Without per-image outcomes: the point estimates decide (test ``point estimate``)."""
    return decided(holds, effect=effect, n=n)


def strongest_attack(ensemble_adv: Mapping[str, Mapping[Any, float | None]], eps: Any) -> str | None:
    """The rule leaving the vote the lowest adversarial accuracy at ``eps`` (first on ties)."""
    rules = [r for r in ensemble_adv if not is_missing(ensemble_adv[r].get(eps))]
    return min(rules, key=lambda r: ensemble_adv[r][eps]) if rules else None


# -- A-GD vs D-AG ------------------------------------------------------------------------------------


def agd_vs_dag_finding(
    eps: Sequence[float],
    agd_success: Sequence[float | None],
    dag_success: Sequence[float | None],
    small_eps: float = SMALL_EPS,
    n: int | None = None,
    source: str | None = None,
    agd_ok: PerEps | None = None,
    dag_ok: PerEps | None = None,
) -> Finding:
    """A-GD's and D-AG's ensemble attack success rates, compared over the small eps.

    Rule: at each evaluated eps < ``small_eps`` with both measured, an exact McNemar test of
    success(A-GD) > success(D-AG) on the same images (``agd_ok[eps]``, ``dag_ok[eps]``: the
    vote correct on each image of that set; success = not correct). The claim holds when it
    holds at every such eps, does not hold when A-GD is significantly behind at one, and is
    inconclusive otherwise (trendcli.stats.all_of; the reported p, effect = success(A-GD) -
    success(D-AG) and its interval are the deciding eps's). Without per-image outcomes: holds
    when A-GD's point estimate is ahead at every such eps. Not measured without such an eps.
    The ratio A-GD / D-AG at each eps (any eps) and its maximum (the paper's "up to 1.56x")
    are reported beside it.
    """
    if not (len(eps) == len(agd_success) == len(dag_success)):
        raise ValueError("eps, A-GD and D-AG success rates must have one value per eps")
    order = sorted(range(len(eps)), key=lambda i: eps[i])
    ratios = [ratio(agd_success[i], dag_success[i]) for i in order]
    values: dict[str, Any] = {
        "small_eps": f"eps < {small_eps:g}",
        "eps": [float(eps[i]) for i in order],
        "agd_success": [agd_success[i] for i in order],
        "dag_success": [dag_success[i] for i in order],
        "ratio": ratios,
    }
    rows = [
        {"eps": float(eps[i]), "success_agd": float(agd_success[i]), "success_dag": float(dag_success[i]),
         "success_ratio": r, "agd_beats_dag": bool(agd_success[i] > dag_success[i])}
        for i, r in zip(order, ratios)
        if eps[i] < small_eps and not is_missing(agd_success[i]) and not is_missing(dag_success[i])
    ]
    values["by_eps"] = rows
    defined = [(float(eps[i]), r) for i, r in zip(order, ratios) if not is_missing(r)]
    if defined:
        best_e, best_r = max(defined, key=lambda er: (er[1], -er[0]))
        values.update({"max_ratio": best_r, "eps_of_max_ratio": best_e})
    if not rows:
        return not_measured("agd_vs_dag", AGD_CLAIM, AGD_PAPER,
                            f"no eps < {small_eps:g} with both A-GD and D-AG measured", values, source)
    wins = [r for r in rows if r["agd_beats_dag"]]
    margin = min(r["success_agd"] - r["success_dag"] for r in rows)
    paired = agd_ok is not None and dag_ok is not None and all(r["eps"] in agd_ok and r["eps"] in dag_ok for r in rows)
    if paired:
        tests = {f"{r['eps']:g}": paired_claim(~np.asarray(agd_ok[r["eps"]], bool), ~np.asarray(dag_ok[r["eps"]], bool))
                 for r in rows}
        for r in rows:
            r["test"] = tests[f"{r['eps']:g}"].to_dict()
        result, deciding = all_of(tests, f"exact McNemar at each eps < {small_eps:g} (all must hold)")
        values["deciding_eps"] = float(deciding) if deciding is not None else None
    else:
        result = _pointwise(len(wins) == len(rows), margin, n)
    each = ", ".join(f"{r['eps']:g}: {fmt_rate(r['success_agd'])} / {fmt_rate(r['success_dag'])} = "
                     f"{fmt_ratio(r['success_ratio'])}" + (f" ({r['test']['verdict']})" if "test" in r else "")
                     for r in rows)
    text = f"A-GD's success rate above D-AG's at {len(wins)} of {len(rows)} eps < {small_eps:g} (A-GD / D-AG: {each})"
    if defined:
        text += f"; max ratio {fmt_ratio(best_r)} at eps {best_e:g}"
    return Finding("agd_vs_dag", AGD_CLAIM, AGD_PAPER, text, result, values, source)


# -- the ensemble against its members ----------------------------------------------------------------


def _beats_members(
    key: str,
    claim: str,
    paper: str,
    eps: Sequence[float],
    attacks: Sequence[str | None],
    ensemble_adv: Sequence[float | None],
    members_adv: Mapping[str, Sequence[float | None]],
    paper_eps: float,
    n: int | None,
    source: str | None,
    what: str,
    ensemble_ok: PerEps | None = None,
    members_ok: Mapping[str, PerEps] | None = None,
) -> Finding:
    """The shared rule of the three ensemble-vs-members claims (module doc)."""
    if len(eps) != len(ensemble_adv) or len(attacks) != len(eps) or any(len(v) != len(eps) for v in members_adv.values()):
        raise ValueError("the ensemble and every member need one adversarial accuracy (and attack) per eps")
    rows = []
    for i in sorted(range(len(eps)), key=lambda j: eps[j]):
        ens = ensemble_adv[i]
        if is_missing(ens) or not members_adv or any(is_missing(v[i]) for v in members_adv.values()):
            continue
        e = float(eps[i])
        members = {m: {"accuracy": float(v[i]), "ratio": ratio(ens, v[i]), "ensemble_beats": bool(ens > v[i])}
                   for m, v in members_adv.items()}
        row = {"eps": e, "attack": attacks[i], "ensemble_accuracy": float(ens), "members": members,
               "beats_all": all(v["ensemble_beats"] for v in members.values())}
        ens_ok = None if ensemble_ok is None else ensemble_ok.get(e)
        if ens_ok is not None and members_ok and all(e in (members_ok.get(m) or {}) for m in members):
            tests = {m: paired_claim(ens_ok, members_ok[m][e]) for m in members}
            for m, t in tests.items():
                members[m]["test"] = t.to_dict()
            row["result"] = all_of(tests, "exact McNemar against each member (all must hold)")[0]
            row["verdict"] = row["result"].verdict
        rows.append(row)
    values: dict[str, Any] = {"paper_eps": paper_eps, "by_eps": rows}
    if not rows:
        return not_measured(key, claim, paper, f"no eps with the ensemble's and every member's accuracy ({what})",
                            values, source)
    row = min(rows, key=lambda r: (abs(r["eps"] - paper_eps), r["eps"]))
    values.update({"eps_used": row["eps"], "attack": row["attack"], "ensemble_adv_accuracy": row["ensemble_accuracy"],
                   "members_adv_accuracy": {m: v["accuracy"] for m, v in row["members"].items()},
                   "ratios": {m: v["ratio"] for m, v in row["members"].items()}})
    parts = ", ".join(f"{fmt_ratio(v['ratio'])} vs {m} ({fmt_rate(v['accuracy'])})" for m, v in row["members"].items())
    others = [r for r in rows if r is not row]
    text = f"{what}, {row['attack']} at eps {row['eps']:g}: ensemble adv. accuracy {fmt_rate(row['ensemble_accuracy'])}; {parts}"
    if others:
        ahead = [f"{r['eps']:g}" for r in others if r["beats_all"]]
        text += f"; ahead of every member at {len(ahead)} of the {len(others)} other eps" + (f" ({', '.join(ahead)})" if ahead else "")
    margin = min(row["ensemble_accuracy"] - v["accuracy"] for v in row["members"].values())
    result = row["result"] if "result" in row else _pointwise(row["beats_all"], margin, n)
    if others and any("verdict" in r for r in others):
        text += "; verdict by eps: " + ", ".join(f"{r['eps']:g} {r.get('verdict', 'n/a')}" for r in rows)
    for r in rows:
        r.pop("result", None)
    return Finding(key, claim, paper, text, result, values, source)


def _shown(attack: str) -> str:
    """An attack's name as the findings write it (the papers' PGD, Square)."""
    return {"pgd": "PGD", "square": "Square"}.get(attack, attack)


def ensemble_robustness_finding(
    attack: str,
    eps: Sequence[float],
    ensemble_adv: Sequence[float | None],
    members_adv: Mapping[str, Sequence[float | None]],
    paper_eps: float = PAPER_EPS,
    n: int | None = None,
    source: str | None = None,
    ensemble_ok: PerEps | None = None,
    members_ok: Mapping[str, PerEps] | None = None,
    member_attack: str = "pgd",
) -> Finding:
    """The vote's adversarial accuracy under the ensemble attack ``attack`` (A-GD, as the paper)
    against each member's under white-box PGD on that member alone (``member_attack``: the
    attack on each member, named in the text; Square when a member is black-box).

    Rule: at the evaluated eps nearest ``paper_eps`` (ties: the smaller), an exact McNemar test
    per member of "the vote is correct more often than the member" on the same images
    (``ensemble_ok[eps]``: the vote on the ensemble attack's images; ``members_ok[m][eps]``:
    member m on its own PGD images); holds when it holds against every member, does not hold
    when one member is significantly ahead, inconclusive otherwise (trendcli.stats.all_of;
    effect = accuracy(vote) - accuracy(member) of the deciding member, with its interval).
    Without per-image outcomes: holds when every point-estimate ratio is > 1. Not measured
    without the numbers.
    """
    return _beats_members("ensemble_robustness", ENSEMBLE_CLAIM, ENSEMBLE_PAPER, eps, [attack] * len(eps),
                          ensemble_adv, members_adv, paper_eps, n, source,
                          f"ensemble attack vs {_shown(member_attack)} on each member", ensemble_ok, members_ok)


def worst_case_finding(
    eps: Sequence[float],
    attacks: Sequence[str | None],
    ensemble_adv: Sequence[float | None],
    members_adv: Mapping[str, Sequence[float | None]],
    paper_eps: float = PAPER_EPS,
    n: int | None = None,
    source: str | None = None,
    ensemble_ok: PerEps | None = None,
    members_ok: Mapping[str, PerEps] | None = None,
    member_attack: str = "pgd",
) -> Finding:
    """As ensemble_robustness_finding, with the vote under ``attacks[i]``: the ensemble attack
    that leaves it least accurate at eps[i] (strongest_attack; ``ensemble_ok[eps]`` its
    outcomes). Same rule."""
    return _beats_members("ensemble_robustness_worst_case", WORST_CASE_CLAIM, WORST_CASE_PAPER, eps, attacks,
                          ensemble_adv, members_adv, paper_eps, n, source,
                          f"strongest ensemble attack vs {_shown(member_attack)} on each member", ensemble_ok, members_ok)


def black_box_finding(
    source_model: str,
    eps: Sequence[float],
    ensemble_acc: Sequence[float | None],
    members_acc: Mapping[str, Sequence[float | None]],
    paper_eps: float = PAPER_EPS,
    n: int | None = None,
    source: str | None = None,
    ensemble_ok: PerEps | None = None,
    members_ok: Mapping[str, PerEps] | None = None,
) -> Finding:
    """The vote's and each member's accuracy on PGD sets made on the outside model
    ``source_model`` (black-box transfer; here vote and members see the same images). Same
    rule as ensemble_robustness_finding."""
    return _beats_members("ensemble_robustness_black_box", BLACK_BOX_CLAIM, BLACK_BOX_PAPER, eps,
                          [f"pgd on {source_model}"] * len(eps), ensemble_acc, members_acc, paper_eps, n, source,
                          "black-box transfer", ensemble_ok, members_ok)


# -- all of them from one evaluation -----------------------------------------------------------------


def eps_key(eps: float) -> str:
    """The JSON key of an eps value (``0.01`` -> ``"0.01"``, 8/255 -> ``"0.0313725"``)."""
    return f"{float(eps):g}"


def _by_eps(by: Mapping[Any, Any]) -> dict[float, Any]:
    """``by`` keyed by float(eps_key(eps)), so that 8/255 from a set and "0.0313725" from a key meet."""
    return {float(eps_key(e)): v for e, v in by.items()}


def ensemble_findings(
    ensemble_adv: Mapping[str, Mapping[float, float | None]],
    member_adv: Mapping[str, Mapping[float, float | None]],
    transfer: Mapping[float, Mapping[str, Any]] | None = None,
    n: int | None = None,
    source: str | None = None,
    outcomes: Mapping[str, Any] | None = None,
    member_attack: str = "pgd",
) -> list[Finding]:
    """The four ensemble findings of one evaluation, in a fixed order.

    ``ensemble_adv[rule][eps]``: the vote's adversarial accuracy under that ensemble attack;
    ``member_adv[member][eps]``: the member's under white-box PGD on itself; ``transfer[eps]``:
    ``{"source": id, "ensemble_accuracy": a, "member_accuracy": {member: a}}``. Eps keys are
    floats or evaluation.json's eps keys; all meet as float(eps_key(eps)).
    ``outcomes``: the per-image outcomes (:func:`paired_outcomes`), for the paired tests.
    ``member_attack``: the attack behind ``member_adv`` (settings.member_attack), named in the texts.
    Returns A-GD vs D-AG, ensemble vs members under A-GD, under the strongest attack, and under
    black-box transfer.
    """
    # one key per eps everywhere: evaluation.json writes eps keys with %g, its sets and table full floats
    ensemble_adv = {r: _by_eps(by) for r, by in ensemble_adv.items()}
    member_adv = {m: _by_eps(by) for m, by in member_adv.items()}
    transfer = _by_eps(transfer or {})
    oc = dict(outcomes or {})
    for kind in ("ensemble", "member"):
        oc[kind] = {name: _by_eps(by) for name, by in (oc.get(kind) or {}).items()}
    oc["transfer"] = _by_eps(oc.get("transfer") or {})
    eps = sorted({e for by in ensemble_adv.values() for e in by})
    members = list(member_adv)
    ens_ok, mem_ok = oc.get("ensemble") or {}, oc.get("member") or None
    if "agd" in ensemble_adv and "dag" in ensemble_adv:
        agd, dag = ensemble_adv["agd"], ensemble_adv["dag"]
        common = [e for e in eps if e in agd and e in dag]
        succ = [(None if is_missing(agd[e]) else 1 - agd[e], None if is_missing(dag[e]) else 1 - dag[e]) for e in common]
        out = [agd_vs_dag_finding(common, [s[0] for s in succ], [s[1] for s in succ], n=n, source=source,
                                  agd_ok=ens_ok.get("agd"), dag_ok=ens_ok.get("dag"))]
    else:
        out = [not_measured("agd_vs_dag", AGD_CLAIM, AGD_PAPER, "the evaluation did not run both agd and dag", source=source)]

    def member_rows(keys: Sequence[float]) -> dict[str, list[float | None]]:
        return {m: [member_adv[m].get(e) for e in keys] for m in members}

    if "agd" in ensemble_adv:
        keys = sorted(ensemble_adv["agd"])
        out.append(ensemble_robustness_finding("agd", keys, [ensemble_adv["agd"][e] for e in keys], member_rows(keys),
                                               n=n, source=source, ensemble_ok=ens_ok.get("agd"), members_ok=mem_ok,
                                               member_attack=member_attack))
    else:
        out.append(not_measured("ensemble_robustness", ENSEMBLE_CLAIM, ENSEMBLE_PAPER, "the evaluation did not run agd",
                                source=source))
    strongest = [strongest_attack(ensemble_adv, e) for e in eps]
    worst_ok = {e: ens_ok[r][e] for r, e in zip(strongest, eps) if r and e in (ens_ok.get(r) or {})}
    out.append(worst_case_finding(eps, strongest, [ensemble_adv[r][e] if r else None for r, e in zip(strongest, eps)],
                                  member_rows(eps), n=n, source=source, ensemble_ok=worst_ok or None, members_ok=mem_ok,
                                  member_attack=member_attack))
    if transfer:
        keys = sorted(transfer)
        src = str(transfer[keys[0]].get("source", "?"))
        accs = {m: [(transfer[e].get("member_accuracy") or {}).get(m) for e in keys] for m in members}
        tr = oc.get("transfer") or {}
        tr_ens = {e: tr[e]["ensemble"] for e in keys if e in tr}
        tr_mem = {m: {e: tr[e]["members"][m] for e in keys if e in tr and m in tr[e]["members"]} for m in members}
        out.append(black_box_finding(src, keys, [transfer[e].get("ensemble_accuracy") for e in keys], accs,
                                     n=n, source=source, ensemble_ok=tr_ens or None, members_ok=tr_mem if tr_ens else None))
    else:
        out.append(not_measured("ensemble_robustness_black_box", BLACK_BOX_CLAIM, BLACK_BOX_PAPER,
                                "no black-box transfer source in the evaluation", source=source))
    return out
