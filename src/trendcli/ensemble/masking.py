"""Gradient-masking flags (Carlini et al. 2019, "On Evaluating Adversarial Robustness",
arXiv:1902.06705, sec. 4-5 checklist), each with the numbers behind it.

A flag that fires says the white-box numbers are suspect (the attacks: docs/method.md,
"Adaptive attacks: APGD, APGD-T, MI-FGSM, Square"):

- ``gradient_free_stronger``: Square (score-based, no gradients) fools significantly more images
  than the strongest gradient attack: exact McNemar, p < 0.05, on the same images;
- ``transfer_stronger``: the transfer set fools significantly more than the strongest white-box
  attack (same test);
- ``large_eps_short``: at a large eps (default 0.5: half the [0, 1] range, enough to turn any
  image grey) the attack's success is below 100 %;
- ``not_monotone_eps`` / ``not_monotone_steps``: success falls by more than ``tolerance``
  (default 0.02) from one eps (or step count) to a larger one;
- ``flat_loss``: APGD's loss curve (the batch mean of the loss per iteration, stored with the
  set) rises by at most ``tolerance`` (default 1 %) of max(1, |f(x_0)|) above its start.

Each flag is a dict: ``flag``, ``check`` (what is tested), ``fired`` (True / False; None when
not measured, with ``reason``), ``numbers`` and a one-line ``text``. Inputs are per-image
outcomes (bool, True = classified correctly after the attack) or plain numbers, so every flag is
testable on constructed inputs; :func:`measure_masking` runs the probes and collects them.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from trendcli.stats import HOLDS, fmt_p, fmt_rate, jsonable, paired_claim, rate_record

__all__ = ["FLAGS", "flag_flat_loss", "flag_gradient_free_stronger", "flag_large_eps_short", "flag_not_monotone",
           "flag_transfer_stronger", "measure_masking"]

FLAGS = ("gradient_free_stronger", "transfer_stronger", "large_eps_short", "not_monotone_eps",
         "not_monotone_steps", "flat_loss")
CHECKS = {
    "gradient_free_stronger": "a gradient-free attack (Square) is stronger than the gradient attacks",
    "transfer_stronger": "a transfer attack is stronger than the white-box attacks",
    "large_eps_short": "success short of 100 % at a large eps",
    "not_monotone_eps": "success not monotone in eps",
    "not_monotone_steps": "success not monotone in the number of steps",
    "flat_loss": "APGD's loss curve flat from the start",
}


def _flag(key: str, fired: bool | None, numbers: Mapping[str, Any], text: str, reason: str | None = None) -> dict[str, Any]:
    out = {"flag": key, "check": CHECKS[key], "fired": fired, "numbers": dict(numbers), "text": text}
    if reason is not None:
        out["reason"] = reason
    return jsonable(out)


def not_measured(key: str, reason: str) -> dict[str, Any]:
    """A flag that could not be checked, saying why."""
    return _flag(key, None, {}, f"not measured: {reason}", reason)


def _stronger(key: str, what: str, candidate: Any, others: Mapping[str, Any], against: str) -> dict[str, Any]:
    """``candidate`` (correct per image) fools significantly more than the strongest of ``others``."""
    if not others:
        return not_measured(key, f"no {against} attack to compare with")
    cand = np.asarray(candidate, bool)
    arrays = {a: np.asarray(v, bool) for a, v in others.items()}
    best = min(arrays, key=lambda a: int(arrays[a].sum()))
    ref = arrays[best]
    # "the reference is right more often than the candidate" = the candidate is stronger
    test = paired_claim(ref, cand)
    beyond = int((~cand & np.logical_and.reduce(list(arrays.values()))).sum())
    numbers = {"success": 1 - float(cand.mean()), f"strongest_{against}": best,
               f"strongest_{against}_success": 1 - float(ref.mean()), "n": int(cand.size),
               "fooled_only_by_it": beyond, "test": test.to_dict()}
    fired = test.verdict == HOLDS
    text = (f"{what} success {fmt_rate(numbers['success'])} vs {best} {fmt_rate(numbers[f'strongest_{against}_success'])} "
            f"(exact McNemar p {fmt_p(test.p_value)}, n {cand.size}); {beyond} image(s) fooled by it and by no {against} attack")
    return _flag(key, fired, numbers, text)


def flag_gradient_free_stronger(square_ok: Any, gradient_ok: Mapping[str, Any]) -> dict[str, Any]:
    """Fires when Square fools significantly more images than the strongest gradient attack."""
    return _stronger("gradient_free_stronger", "Square", square_ok, gradient_ok, "gradient")


def flag_transfer_stronger(transfer_ok: Any, whitebox_ok: Mapping[str, Any]) -> dict[str, Any]:
    """Fires when the transfer set fools significantly more images than the strongest white-box attack."""
    return _stronger("transfer_stronger", "transfer", transfer_ok, whitebox_ok, "white-box")


def flag_large_eps_short(fooled: Any, eps: float, attack: str) -> dict[str, Any]:
    """Fires when ``attack`` at the large ``eps`` leaves any image unfooled (success < 100 %)."""
    f = np.asarray(fooled, bool)
    rec = rate_record(int(f.sum()), f.size)
    numbers = {"eps": eps, "attack": attack, "success": rec["rate"], "fooled": rec["k"], "n": rec["n"],
               "interval": rec["interval"]}
    fired = bool(f.size) and not bool(f.all())
    return _flag("large_eps_short", fired, numbers,
                 f"{attack} at eps {eps:g}: success {fmt_rate(rec['rate'])} ({rec['k']} of {rec['n']})")


def flag_not_monotone(key: str, points: Sequence[tuple[float, float]], what: str, tolerance: float = 0.02) -> dict[str, Any]:
    """Fires when success (``points``: (x, success) pairs) drops by more than ``tolerance`` as x grows.

    ``key``: not_monotone_eps or not_monotone_steps; ``what`` names the series.
    """
    pts = sorted((float(x), float(s)) for x, s in points)
    if len(pts) < 2:
        return not_measured(key, f"{what}: fewer than two points")
    drops = [(a[0], b[0], a[1] - b[1]) for a, b in zip(pts, pts[1:]) if a[1] - b[1] > tolerance]
    worst = max(drops, key=lambda d: d[2]) if drops else None
    numbers = {"series": what, "points": [list(p) for p in pts], "tolerance": tolerance,
               "largest_drop": None if worst is None else {"from": worst[0], "to": worst[1], "drop": worst[2]}}
    series = ", ".join(f"{x:g}: {fmt_rate(s)}" for x, s in pts)
    text = f"{what}: success {series}" + (f"; falls {worst[2]:.3f} from {worst[0]:g} to {worst[1]:g}" if worst else "")
    return _flag(key, bool(drops), numbers, text)


def flag_flat_loss(curve: Sequence[float] | None, what: str, tolerance: float = 0.01) -> dict[str, Any]:
    """Fires when max_k f(x_k) - f(x_0) <= tolerance * max(1, |f(x_0)|) (APGD's loss never rises)."""
    if curve is None or len(curve) < 2:
        return not_measured("flat_loss", f"{what}: no stored loss curve (a set written before curves were kept: "
                                         "rerun with force)")
    c = np.asarray(curve, dtype=np.float64)
    rise = float(np.nanmax(c[1:]) - c[0])
    bound = tolerance * max(1.0, abs(float(c[0])))
    numbers = {"series": what, "start": float(c[0]), "max": float(np.nanmax(c)), "end": float(c[-1]), "rise": rise,
               "threshold": bound, "iterations": len(c) - 1}
    return _flag("flat_loss", rise <= bound, numbers,
                 f"{what}: loss {c[0]:.4g} at the start, max {np.nanmax(c):.4g}, {c[-1]:.4g} at the end "
                 f"(rise {rise:.4g}; flat below {bound:.4g})")


# -- the probes on one evaluation ----------------------------------------------------------------


def _flags_for(ok: Mapping[str, Any], transfer: str | None, curve: Any, what: str) -> list[dict[str, Any]]:
    """The suite-based flags of one attacked target (the ensemble, or one member) from its outcomes."""
    gradient = {a: v for a, v in ok.items() if a != "square" and a != transfer}
    out = [flag_gradient_free_stronger(ok["square"], gradient) if "square" in ok
           else not_measured("gradient_free_stronger", "Square is not in the suite")]
    out.append(flag_transfer_stronger(ok[transfer], gradient) if transfer
               else not_measured("transfer_stronger", "no transfer set in the suite"))
    out.append(flag_flat_loss(curve, f"APGD-CE on {what}"))
    return out


def measure_masking(st: Any, worst: Mapping[str, Any], outcomes: Mapping[str, Any]) -> dict[str, Any]:
    """All flags for the ensemble and for each member; evaluation.json's ``masking``.

    Probes beyond the suite (first ``masking_images`` evaluated images, through the store):
    the size attack (A-GD) on the ensemble and the member attack (PGD) on each member at
    ``large_eps`` (a gradient attack with alpha = 2.5 * large_eps / steps, Madry et al.'s rule,
    so the steps can cross the ball; a gradient-free one with its own settings at that eps),
    and the size attack at the suite's eps with steps/4, steps/2 and steps. Success over eps
    comes from the evaluation's own sets. A probe that needs gradients of a black-box model is
    not measured, with the reason.
    """
    from trendcli.ensemble.worst_case import suite_set
    from trendcli.zoo.blackbox import gradient_block, needs_gradients

    cfg, wc = st.cfg, st.cfg.worst_case.validated(st.cfg.eps, st.spec.num_classes)
    n = min(wc.masking_images, st.n)
    transfer = next((a for a in outcomes["ensemble"] if a.startswith("transfer")), None)
    rule = cfg.size_attack
    big = {"eps": wc.large_eps, "alpha": 2.5 * wc.large_eps / cfg.steps, "steps": cfg.steps,
           "random_start": cfg.random_start, "seed": cfg.seed}
    st.progress.log(f"masking probes on {n} images: {rule} and {cfg.member_attack} at eps {wc.large_eps:g}; "
                    f"{rule} at 3 step counts")

    def large_eps(source: Any, attack: str, black_box: Sequence[str]) -> dict[str, Any]:
        why = gradient_block(attack, black_box)
        if why:
            return not_measured("large_eps_short", why)
        params = big if needs_gradients(attack) else cfg.attack_params(wc.large_eps, attack)
        return flag_large_eps_short(~suite_set(st, source, attack, params, n)["ok"], wc.large_eps, attack)

    curve_of = {s["attack"]: s.get("loss_curve") for s in worst["ensemble"]["sets"]}
    ens = _flags_for(outcomes["ensemble"], transfer, curve_of.get("apgd"), "the ensemble")
    ens.append(large_eps(st.models, rule, st.black_box))
    by_eps = [(s.eps, 1 - s.ensemble_accuracy) for s in st.sets if s.kind == "ensemble" and s.attack == rule]
    ens.append(flag_not_monotone("not_monotone_eps", by_eps, f"{rule} on the ensemble over eps"))
    steps = sorted({max(1, cfg.steps // 4), max(1, cfg.steps // 2), cfg.steps})
    ens.append(_steps_flag(st, rule, steps, wc.eps, n))
    members = {}
    for model, m in zip(st.models, st.ids):
        curves = {s["attack"]: s.get("loss_curve") for s in worst["members"][m]["sets"]}
        flags = _flags_for(outcomes["members"][m], transfer, curves.get("apgd"), m)
        flags.append(large_eps(model, cfg.member_attack, [m] if m in st.black_box else []))
        pts = [(s.eps, 1 - s.source_accuracy) for s in st.sets if s.kind == "member" and s.source == [m]]
        flags.append(flag_not_monotone("not_monotone_eps", pts, f"{cfg.member_attack} on {m} over eps"))
        members[m] = flags
    fired = [f"ensemble: {f['flag']}" for f in ens if f["fired"]]
    fired += [f"{m}: {f['flag']}" for m, fl in members.items() for f in fl if f["fired"]]
    return jsonable({"reference": "Carlini et al. 2019 (arXiv:1902.06705), checklist", "n_probe_images": n,
                     "large_eps_params": big, "steps_probed": steps, "ensemble": ens, "members": members,
                     "fired": fired})


def _steps_flag(st: Any, rule: str, steps: Sequence[int], eps: float, n: int) -> dict[str, Any]:
    """not_monotone_steps of the size attack ``rule`` on the ensemble at ``eps`` (a gradient attack's steps)."""
    from trendcli.ensemble.worst_case import suite_set
    from trendcli.zoo.blackbox import gradient_block, needs_gradients

    if not needs_gradients(rule):
        return not_measured("not_monotone_steps", f"{rule} has no steps (a query budget instead)")
    why = gradient_block(rule, st.black_box)
    if why:
        return not_measured("not_monotone_steps", why)
    by_steps = []
    for k in steps:
        got = suite_set(st, st.models, rule, {**st.cfg.attack_params(eps), "steps": k}, n)
        by_steps.append((k, 1 - float(np.mean(got["ok"]))))
    return flag_not_monotone("not_monotone_steps", by_steps, f"{rule} on the ensemble at eps {eps:g} over steps")
