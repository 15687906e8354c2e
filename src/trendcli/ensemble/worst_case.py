"""The worst-case protocol: per image, the worst outcome over a suite of attacks.

`trend evaluate --protocol worst-case` adds, at one eps (default: the evaluated eps nearest the
paper's 0.01) and on the first ``limit`` evaluated images, the suite (the attacks: docs/method.md,
"Adaptive attacks on an ensemble"):

- ensemble: every direction rule of the evaluation (agd, ugd, dag, empir; their sets are the
  evaluation's own, read per image), APGD-CE and targeted APGD-DLR (apgd_t) on the members'
  mean loss, Square on the vote score with a stated query budget, and transfer from the
  outside source (the evaluation's ``transfer_from``: PGD on that model; in a study without
  one, the non-member of the design matrix with the highest mean TM into the members,
  :func:`strongest_outside_source`);
- each member alone: the single-model versions: PGD (the evaluation's member sets), APGD-CE,
  APGD-T and Square on that member, and the same transfer set.

An image survives when it is classified correctly clean and after every attack of the suite:
    robust accuracy = |{i : clean_i correct and correct_i(a) for every attack a}| / n,
reported with its Wilson 95 % interval and n, beside the per-attack accuracies (each on the
same n images), so robust accuracy <= min over the suite. The paper's ensemble-vs-members
claims are re-checked on these outcomes: exact McNemar of the vote's robust outcomes against
each member's on the same images (:func:`worst_case_claim`). Every set comes from the store
through trendcli.adversarial.generate.attack (content key, resumable).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np

from trendcli.ensemble.results import Evaluation
from trendcli.errors import UsageError
from trendcli.stats import (
    HOLDS,
    NOT_MEASURED,
    all_of,
    decode_bits,
    encode_bits,
    fmt_rate,
    jsonable,
    paired_claim,
    rate_record,
)

__all__ = ["ADAPTIVE", "PROTOCOLS", "SUITE", "WorstCaseConfig", "WorstCaseEvaluation", "claim_survival", "run_worst_case",
           "strongest_outside_source", "worst_case_claim", "worst_case_outcomes"]

#: Evaluation protocols: the paper's (rules, member PGD, transfer) and the worst case over a suite.
PROTOCOLS = ("standard", "worst-case")
#: The default suite: "rules" = every direction rule of the evaluation; "transfer" = the outside source.
SUITE = ("rules", "apgd", "apgd_t", "square", "transfer")
#: The suite's adaptive attacks (run on the ensemble and on each member alone).
ADAPTIVE = ("apgd", "apgd_t", "square")
WORST_CASE_CLAIM = "The ensemble is more robust than each member under the worst case over the suite"


@dataclass(frozen=True)
class WorstCaseConfig:
    """The suite's settings. Pixel units on the [0, 1] scale."""

    eps: float | None = None  # None: the evaluated eps nearest 0.01 (the paper's robustness eps)
    limit: int | None = None  # the first N evaluated images; None: all of them
    suite: tuple[str, ...] = SUITE
    apgd_iter: int = 100  # APGD and APGD-T iterations per run (the authors' 100)
    apgd_targets: int = 9  # APGD-T target classes (the authors' 9)
    square_queries: int = 1000  # Square's query budget per image (one query = one forward of each model)
    masking_images: int = 100  # images of the masking probes (large eps, steps)
    large_eps: float = 0.5  # the masking probe's large eps

    def validated(self, eval_eps: Sequence[float], n_classes: int | None = None) -> "WorstCaseConfig":
        """Checked numbers and suite names; ``eps`` resolved against the evaluated ``eval_eps``."""
        suite = tuple(dict.fromkeys(str(a).strip().lower() for a in self.suite))
        bad = [a for a in suite if a not in SUITE]
        if bad or not suite:
            raise UsageError(f"unknown worst-case suite attack {bad[0] if bad else ''!r}; known: {', '.join(SUITE)}")
        for name in ("apgd_iter", "apgd_targets", "square_queries", "masking_images"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                what = " (the query budget per image)" if name == "square_queries" else ""
                raise UsageError(f"{name}{what} must be an integer >= 1, got {value!r}")
        if self.limit is not None and (isinstance(self.limit, bool) or self.limit < 1):
            raise UsageError(f"worst_case_limit must be at least 1, got {self.limit!r}")
        if not (0 < self.large_eps <= 1 and math.isfinite(self.large_eps)):
            raise UsageError(f"large_eps must lie in (0, 1], got {self.large_eps}")
        if n_classes is not None and "apgd_t" in suite and self.apgd_targets >= n_classes:
            raise UsageError(f"apgd_targets must be below the number of classes ({n_classes}), got {self.apgd_targets}")
        if self.eps is None:
            eps = min(eval_eps, key=lambda e: (abs(e - 0.01), e))
        else:
            eps = next((e for e in eval_eps if math.isclose(e, float(self.eps), rel_tol=1e-9)), None)
            if eps is None:
                raise UsageError(f"worst_case_eps {self.eps:g} is not among the evaluated eps "
                                 f"{', '.join(f'{e:g}' for e in eval_eps)}; add it to eps")
        return replace(self, eps=float(eps), suite=suite)

    def params(self, attack: str) -> dict[str, Any]:
        """The parameters of one adaptive attack of the suite at ``eps``."""
        if attack == "apgd":
            return {"eps": self.eps, "n_iter": self.apgd_iter, "loss": "ce"}
        if attack == "apgd_t":
            return {"eps": self.eps, "n_iter": self.apgd_iter, "n_target_classes": self.apgd_targets}
        if attack == "square":
            return {"eps": self.eps, "n_queries": self.square_queries}
        raise UsageError(f"{attack!r} is not an adaptive attack of the suite; known: {', '.join(ADAPTIVE)}")


# -- pure: per-image logic --------------------------------------------------------------------


def worst_case_outcomes(correct: Mapping[str, Any], clean: Any = None) -> dict[str, Any]:
    """Per image, the worst outcome over ``correct`` (attack -> bool [n]: right after that attack).

    robust_i = clean_i and AND_a correct_i(a). Returns ``robust`` (rate, k, n, Wilson interval),
    ``per_image`` (robust bits), ``attacks`` (each attack's rate record and ``only_fooled``:
    the images it alone turned wrong among those right clean), and ``strongest`` (the attack of
    lowest accuracy, first on ties). Raises ValueError on unequal lengths or no attack.
    """
    if not correct:
        raise ValueError("the worst case needs at least one attack's outcomes")
    arrays = {a: np.asarray(v, dtype=bool).ravel() for a, v in correct.items()}
    n = next(iter(arrays.values())).size
    base = np.ones(n, bool) if clean is None else np.asarray(clean, dtype=bool).ravel()
    if any(v.size != n for v in arrays.values()) or base.size != n:
        raise ValueError("every attack's outcomes (and clean's) need one value per image, the same images")
    stack = np.stack(list(arrays.values()))
    robust = base & stack.all(0)
    wrong = base & ~stack  # [attacks, n]: right clean, turned wrong by that attack
    only = wrong & (wrong.sum(0) == 1)
    attacks = {a: {**rate_record(int(v.sum()), n), "only_fooled": int(only[i].sum())}
               for i, (a, v) in enumerate(arrays.items())}
    strongest = min(arrays, key=lambda a: int(arrays[a].sum()))
    return {"n": n, "robust": rate_record(int(robust.sum()), n), "per_image": encode_bits(robust),
            "attacks": attacks, "strongest": strongest}


def worst_case_claim(ensemble_ok: Any, members_ok: Mapping[str, Any]) -> dict[str, Any]:
    """"The vote survives the suite more often than each member survives its own suite".

    Exact McNemar per member on the same images (trendcli.stats.paired_claim); holds when it
    holds against every member (trendcli.stats.all_of), with each member's test beside it.
    """
    ens = np.asarray(ensemble_ok, dtype=bool)
    tests = {m: paired_claim(ens, np.asarray(ok, dtype=bool)) for m, ok in members_ok.items()}
    result, deciding = all_of(tests, "exact McNemar against each member (all must hold)")
    rates = {m: float(np.mean(ok)) for m, ok in members_ok.items()}
    text = (f"worst case: ensemble robust accuracy {fmt_rate(float(ens.mean()))}; "
            + ", ".join(f"{m} {fmt_rate(r)}" for m, r in rates.items()))
    return jsonable({"claim": WORST_CASE_CLAIM, "this_run": text, **result.to_dict(), "deciding_member": deciding,
                     "by_member": {m: t.to_dict() for m, t in tests.items()}})


def claim_survival(standard: Mapping[str, Any], worst: Mapping[str, Any]) -> dict[str, Any]:
    """Does each standard-protocol claim of the ensemble against its members survive the worst case?

    ``survives``: True when the claim holds under the standard protocol and under the worst case;
    False when it holds under the standard protocol but not under the worst case (does not hold
    or inconclusive); None when it did not hold to begin with (nothing to survive).
    """
    out = {}
    for key in ("ensemble_beats_members", "ensemble_beats_members_worst_case"):
        before = (standard.get(key) or {}).get("verdict", NOT_MEASURED)
        after = worst.get("verdict", NOT_MEASURED)
        survives = None if before != HOLDS else after == HOLDS
        word = {True: "survives", False: "does not survive", None: "nothing to survive"}[survives]
        out[key] = {"standard": before, "worst_case": after, "survives": survives,
                    "text": f"{word} (standard protocol: {before}; worst case: {after})"}
    return out


def strongest_outside_source(matrix: Mapping[str, Any], members: Sequence[str]) -> str | None:
    """The non-member of a matrix (its JSON dict) with the highest mean TM into the members.

    Mean over the member targets with a defined TM (N_g > 0); a source with none is skipped;
    ties go to the first in the matrix's order. None when the matrix has no such source.
    """
    names = list(matrix.get("names") or [])
    tm = matrix.get("tm") or []
    cols = [names.index(m) for m in members if m in names]
    best, best_v = None, -1.0
    for i, name in enumerate(names):
        if name in members:
            continue
        vals = [tm[i][j] for j in cols if tm[i][j] is not None and not math.isnan(tm[i][j])]
        if vals and float(np.mean(vals)) > best_v:
            best, best_v = name, float(np.mean(vals))
    return best


# -- running the suite ------------------------------------------------------------------------


def _sliced(st: Any, kind: str, attack: str, eps: float, n: int) -> dict[str, Any] | None:
    """The per-image outcomes of one of the evaluation's own sets, on its first n images."""
    for s in st.sets:
        if s.kind == kind and s.attack == attack and math.isclose(s.eps, eps) and s.per_image:
            bits = s.per_image
            return {"key": s.key, "cached": s.cached, "source": decode_bits(bits["source"])[:n],
                    "ensemble": decode_bits(bits["ensemble"])[:n],
                    "members": {m: decode_bits(b)[:n] for m, b in bits["members"].items()}}
    return None


def suite_set(st: Any, source: Any, method: str, params: dict[str, Any], n: int) -> dict[str, Any]:
    """Attack ``source`` (a member, or every member) on the first n evaluated images through the
    store; the attacked model's (the vote's) per-image correctness and the set's loss curve."""
    from trendcli.adversarial.generate import attack
    from trendcli.ensemble.evaluation import _stream_logits
    from trendcli.errors import StoreError

    cfg = st.cfg
    result = attack(source, method, params, split=cfg.split, limit=n, batch_size=cfg.batch_size, device=str(st.device),
                    store=cfg.store, force=cfg.force, data_dir=st.data_dir, tie_break=st.tie, layout=cfg.layout,
                    progress=st.progress)
    advset = result.advset
    if not np.array_equal(np.asarray(advset.indices), st.indices[:n].numpy()):
        raise StoreError(f"adversarial set {result.key} holds other images than the first {n} evaluated")
    models = list(source) if isinstance(source, (list, tuple)) else [source]
    logits, labels = _stream_logits(models, ((x, y) for _, _, x, y, _ in advset.iter_chunks()))
    pred = st.vote(logits) if len(models) > 1 else logits[0].argmax(1)
    curves = advset.loss_curves
    if hasattr(advset, "close"):
        advset.close()
    curve = None
    if curves is not None and np.isfinite(curves).any():
        curve = [round(float(v), 6) for v in np.nanmean(curves, axis=0)]  # mean over chunks (each a batch mean)
    return {"key": result.key, "cached": bool(result.cached), "seconds": float(result.seconds),
            "ok": (pred == labels).numpy(), "loss_curve": curve}


def _record(name: str, got: Mapping[str, Any]) -> dict[str, Any]:
    """Where one suite attack's set is (store key, cache hit) and, for APGD, its loss curve."""
    rec = {"attack": name, "key": got.get("key"), "cached": got.get("cached")}
    if got.get("loss_curve") is not None:
        rec["loss_curve"] = got["loss_curve"]
    return rec


def run_worst_case(st: Any, clean: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The suite on the ensemble and on each member alone (module doc).

    ``st``: the evaluation's setup (trendcli.ensemble.evaluation._Setup) after its sets ran;
    ``clean``: its clean record (per-image bits). Returns evaluation.json's ``worst_case`` and
    the per-image outcomes ``{"ensemble": {attack: ok}, "members": {member: {attack: ok}}}``
    (bool arrays, for the masking flags).
    """
    from trendcli.zoo.blackbox import gradient_block

    wc: WorstCaseConfig = st.cfg.worst_case.validated(st.cfg.eps, st.spec.num_classes)
    n = min(wc.limit or st.n, st.n)
    eps = wc.eps
    ens_ok: dict[str, np.ndarray] = {}
    mem_ok: dict[str, dict[str, np.ndarray]] = {m: {} for m in st.ids}
    sets: dict[str, Any] = {"ensemble": [], "members": {m: [] for m in st.ids}}
    not_run: dict[str, str] = {}
    if "rules" in wc.suite:
        for rule in st.cfg.attacks:
            got = _sliced(st, "ensemble", rule, eps, n)
            ens_ok[rule] = got["ensemble"]
            sets["ensemble"].append(_record(rule, {**got, "ok": got["ensemble"]}))
    member_attack = st.cfg.member_attack  # PGD on each member alone (Square with a black-box member)
    for m in st.ids:
        got = _sliced_member(st, m, eps, n)
        mem_ok[m][member_attack] = got["source"]
        sets["members"][m].append(_record(member_attack, {**got, "ok": got["source"]}))
    for name in (a for a in ADAPTIVE if a in wc.suite):
        params = st.cfg.attack_params(eps, name)
        st.progress.log(f"worst case: {name} ({', '.join(f'{k}={v:g}' if isinstance(v, float) else f'{k}={v}' for k, v in params.items())})")
        why = gradient_block(name, st.black_box)
        if why:
            not_run[f"{name} on the ensemble"] = why
        elif name not in ens_ok:  # not already one of the evaluation's ensemble attacks
            got = suite_set(st, st.models, name, params, n)
            ens_ok[name] = got["ok"]
            sets["ensemble"].append(_record(name, got))
        for model, m in zip(st.models, st.ids):
            why = gradient_block(name, [m] if m in st.black_box else [])
            if why:
                not_run[f"{name} on {m}"] = why
            elif name not in mem_ok[m]:
                got = suite_set(st, model, name, params, n)
                mem_ok[m][name] = got["ok"]
                sets["members"][m].append(_record(name, got))
    if "transfer" in wc.suite:
        got = _sliced(st, "transfer", "pgd", eps, n)
        if got is None:
            not_run["transfer"] = "no outside source (transfer_from) in the evaluation"
        else:
            label = f"transfer (pgd on {_transfer_source(st)})"
            ens_ok[label] = got["ensemble"]
            sets["ensemble"].append(_record(label, {**got, "ok": got["ensemble"]}))
            for m in st.ids:
                mem_ok[m][label] = got["members"][m]
                sets["members"][m].append(_record(label, {**got, "ok": got["members"][m]}))
    clean_bits = clean.get("per_image") or {}
    ens_clean = decode_bits(clean_bits["ensemble"])[:n]
    ensemble = {**worst_case_outcomes(ens_ok, ens_clean), "sets": sets["ensemble"]}
    members = {m: {**worst_case_outcomes(mem_ok[m], decode_bits(clean_bits["members"][m])[:n]), "sets": sets["members"][m]}
               for m in st.ids}
    claim = worst_case_claim(decode_bits(ensemble["per_image"]), {m: decode_bits(v["per_image"]) for m, v in members.items()})
    st.progress.log(f"worst case on {n} images at eps {eps:g}: ensemble robust accuracy "
                    f"{fmt_rate(ensemble['robust']['rate'])} (strongest: {ensemble['strongest']}); "
                    + ", ".join(f"{m} {fmt_rate(v['robust']['rate'])}" for m, v in members.items()))
    return jsonable({"protocol": "worst-case", "eps": eps, "n_images": n, "settings": _settings(wc),
                     "definition": "robust accuracy = share of the images right clean and after every attack of the suite",
                     "not_run": not_run, "ensemble": ensemble, "members": members, "claim": claim}), \
        {"ensemble": ens_ok, "members": mem_ok}


def _sliced_member(st: Any, member: str, eps: float, n: int) -> dict[str, Any]:
    for s in st.sets:
        if s.kind == "member" and s.source == [member] and math.isclose(s.eps, eps) and s.per_image:
            return {"key": s.key, "cached": s.cached, "source": decode_bits(s.per_image["source"])[:n]}
    raise UsageError(f"no {st.cfg.member_attack} set on member {member!r} at eps {eps:g} in the evaluation")


def _transfer_source(st: Any) -> str:
    return next((s.source[0] for s in st.sets if s.kind == "transfer"), "?")


def _settings(wc: WorstCaseConfig) -> dict[str, Any]:
    return {"suite": list(wc.suite), "apgd": wc.params("apgd") if "apgd" in wc.suite else None,
            "apgd_t": wc.params("apgd_t") if "apgd_t" in wc.suite else None,
            "square": {**wc.params("square"), "query": "one forward of every attacked model"} if "square" in wc.suite else None,
            "limit": wc.limit, "masking_images": wc.masking_images, "large_eps": wc.large_eps}


@dataclass
class WorstCaseEvaluation(Evaluation):
    """An Evaluation under the worst-case protocol: evaluation.json gains ``worst_case`` (this
    module's record, with ``claims_survival``: :func:`claim_survival` of the standard claims)
    and ``masking`` (trendcli.ensemble.masking.measure_masking)."""

    worst_case: dict[str, Any] | None = None
    masking: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        worst = dict(self.worst_case or {})
        if worst.get("claim"):
            worst["claims_survival"] = claim_survival(out.get("claims") or {}, worst["claim"])
        return jsonable({**out, "worst_case": worst, "masking": self.masking})
