"""Evaluate an ensemble: clean and adversarial accuracy of its vote and of each member.

What is measured (docs/method.md, "Attacks on an ensemble" and "Ensemble
prediction and TREND design"; paper section V):

- clean accuracy of the vote and of each member on the evaluated images;
- white-box ensemble attacks: PGD with each direction rule (agd, ugd, dag, empir, ...) on all
  members at once, at each eps; the vote and every member are evaluated on the same
  adversarial images;
- each member's own robustness: white-box PGD on that member alone at the same eps, alpha,
  steps, seed and images;
- black-box transfer (optional): PGD on an outside source model, evaluated on the vote and on
  every member;
- accuracy vs ensemble size (figure 9): the prefixes of the members' order (the design order:
  most diverse pair first, then the member that keeps the mean TM_sym lowest) under one rule;
  size 1 is the first member under PGD (for K = 1 the mask-free rules are PGD);
- gradient domination (figure 7) on the evaluated images (trendcli.ensemble.domination).

Adversarial accuracy = share of ALL evaluated images whose prediction on x_adv equals y (the
authors' count), with clean accuracy beside it; success rate = 1 - adversarial accuracy.
Predictions are recomputed here, once per stored chunk and member, under inference mode, and
the vote is taken over the whole set in one call (so the seeded ``paper`` tie-break does not
depend on the batch size). Adversarial images are evaluated in the store's chunks, i.e. with
the batch-mates they were attacked with, which matters for members with per-minibatch Qb
(docs/method.md "Input quantization"); clean images in batches of ``batch_size`` (default 256,
the authors' ensemble batch). With per-image Qb (``per_image``) nothing depends on batches.
The ensemble attacks use the ensemble's tie-break for EMPIR's fixed vote y_hat as well.

Robustness ratio (paper section V-B: "FP-Q1-Q2 is 1.30x, 1.36x and 8.43x more robust than
Q1, Q2 and FP at eps 0.01" under A-GD):
    ratio(member m, rule r, eps) = adv. accuracy of the vote under the ensemble attack r
                                   / adv. accuracy of m alone under white-box PGD,
both at eps with the same steps, alpha, seed and images. A zero denominator gives None.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from trendcli.ensemble.members import Ensemble, check_tie_break, vote_logits
from trendcli.errors import IncompatibleModelsError, StoreError, UsageError
from trendcli.fsio import write_json_atomic
from trendcli.progress import NullProgress, Progress
from trendcli.registry import canonical

FORMAT = "trendcli-evaluation/1"
#: Paper section V-A: "Other attacks get close to A-GD performance around attack strength of
#: about 0.03 and higher", so "small eps" here means eps < 0.03.
SMALL_EPS = 0.03
DEFAULT_ATTACKS = ("agd", "ugd", "dag", "empir")
DEFAULT_EPS = (0.002, 0.005, 0.01, 0.02, 0.03)
RATIO_DEFINITION = (
    "adversarial accuracy of the ensemble vote under the ensemble attack / adversarial accuracy of "
    "the member alone under white-box PGD, same eps, alpha, steps, seed and images"
)
PLOT_FILES = {
    "attack_success": "attack_success.png",
    "accuracy_bars": "accuracy_bars.png",
    "accuracy_vs_size": "accuracy_vs_size.png",
    "domination": "domination.png",
}


def eps_key(eps: float) -> str:
    """The JSON key of an eps value (``0.01`` -> ``"0.01"``)."""
    return f"{eps:g}"


@dataclass(frozen=True)
class EvalConfig:
    """What `trend evaluate` takes besides the ensemble. None = the ensemble's own setting."""

    attacks: tuple[str, ...] = DEFAULT_ATTACKS
    eps: tuple[float, ...] = DEFAULT_EPS
    alpha: float = 0.01
    steps: int = 40
    random_start: bool = True
    seed: int = 0
    limit: int | None = None
    split: str = "test"
    transfer_from: str | None = None
    sizes: bool = True
    size_attack: str | None = None  # default: agd if run, else the first attack
    domination: bool = True
    domination_images: int = 1000
    tie_break: str | None = None
    per_image: bool | None = None
    batch_size: int | None = None  # None: the attack's own chunk (see evaluate's docstring)
    device: str = "auto"
    store: str = "runs/adv"
    data_dir: str | None = None
    force: bool = False

    def validated(self) -> "EvalConfig":
        """Canonical names, checked numbers; unknown rules fail listing the known ones."""
        from trendcli.registry import get_registry

        attacks = tuple(dict.fromkeys(canonical(a) for a in self.attacks))
        if not attacks:
            raise UsageError("--attack needs at least one ensemble attack rule (e.g. agd,dag)")
        for a in attacks:
            get_registry().factory("direction rule", a)
        eps = tuple(sorted(dict.fromkeys(float(e) for e in self.eps)))
        if not eps or any(not (0 < e <= 1) for e in eps):
            raise UsageError(f"--eps values must lie in (0, 1] on the [0, 1] pixel scale, got {list(self.eps)}")
        if not (self.alpha > 0 and math.isfinite(self.alpha)):
            raise UsageError(f"--alpha must be positive, got {self.alpha}")
        if self.steps < 1:
            raise UsageError(f"--steps must be at least 1, got {self.steps}")
        if self.limit is not None and self.limit < 1:
            raise UsageError(f"--limit must be at least 1, got {self.limit}")
        if self.batch_size is not None and self.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.tie_break is not None:
            check_tie_break(self.tie_break)
        size_attack = canonical(self.size_attack) if self.size_attack else ("agd" if "agd" in attacks else attacks[0])
        if size_attack not in attacks:
            raise UsageError(f"the size sweep's attack {size_attack!r} is not among --attack {','.join(attacks)}")
        return replace(self, attacks=attacks, eps=eps, size_attack=size_attack)

    def attack_params(self, eps: float) -> dict[str, Any]:
        """PGD parameters at ``eps`` (the authors' ensemble settings by default)."""
        return {"eps": eps, "alpha": self.alpha, "steps": self.steps, "random_start": self.random_start, "seed": self.seed}


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- pure analysis -----------------------------------------------------------------------------


def safe_ratio(num: float | None, den: float | None) -> float | None:
    """num / den, or None when either is missing or den is 0."""
    if num is None or den is None or den == 0:
        return None
    return float(num) / float(den)


def robustness_ratios(
    ensemble_adv: dict[str, dict[str, float]], member_adv: dict[str, dict[str, float]]
) -> dict[str, dict[str, dict[str, float | None]]]:
    """ratio[rule][eps][member] = ensemble_adv[rule][eps] / member_adv[member][eps] (module doc)."""
    return {
        rule: {e: {m: safe_ratio(acc, member_adv[m].get(e)) for m in member_adv} for e, acc in by_eps.items()}
        for rule, by_eps in ensemble_adv.items()
    }


def strongest_attack(ensemble_adv: dict[str, dict[str, float]], eps: str) -> str | None:
    """The rule leaving the vote the lowest adversarial accuracy at ``eps`` (first on ties)."""
    rules = [r for r in ensemble_adv if eps in ensemble_adv[r]]
    return min(rules, key=lambda r: ensemble_adv[r][eps]) if rules else None


def _beats_members(ensemble_adv, member_adv, eps_keys, rule_of) -> dict[str, Any]:
    rows = []
    for e in eps_keys:
        rule = rule_of(e)
        if rule is None or e not in ensemble_adv.get(rule, {}):
            continue
        ens = ensemble_adv[rule][e]
        members = {
            m: {"pgd_accuracy": acc[e], "ratio": safe_ratio(ens, acc[e]), "ensemble_beats": ens > acc[e]}
            for m, acc in member_adv.items()
            if e in acc
        }
        rows.append({"eps": float(e), "attack": rule, "ensemble_accuracy": ens, "members": members,
                     "beats_all": all(v["ensemble_beats"] for v in members.values())})
    return {"holds": all(r["beats_all"] for r in rows) if rows else None, "by_eps": rows}


def check_claims(
    ensemble_adv: dict[str, dict[str, float]],
    member_adv: dict[str, dict[str, float]],
    transfer: dict[str, dict[str, Any]] | None = None,
    small_eps: float = SMALL_EPS,
) -> dict[str, Any]:
    """The paper's claims, measured: booleans with the numbers they rest on (nothing tuned).

    - agd_beats_dag_at_small_eps: success(A-GD) > success(D-AG) at every eps < ``small_eps``
      (paper: up to 1.56x the success rate of D-AG at small eps).
    - ensemble_beats_members (under A-GD, as the paper) and ..._worst_case (under the rule
      that leaves the vote least accurate at each eps): the vote's adversarial accuracy >
      each member's under white-box PGD, at every eps.
    - ensemble_beats_members_black_box: on the transfer sets, the vote's accuracy > each
      member's.
    ``holds`` is None when the data for a claim was not measured.
    """
    eps_keys = sorted({e for by in ensemble_adv.values() for e in by}, key=float)
    claims: dict[str, Any] = {}
    if "agd" in ensemble_adv and "dag" in ensemble_adv:
        rows = []
        for e in eps_keys:
            if float(e) >= small_eps or e not in ensemble_adv["agd"] or e not in ensemble_adv["dag"]:
                continue
            s_agd, s_dag = 1 - ensemble_adv["agd"][e], 1 - ensemble_adv["dag"][e]
            rows.append({"eps": float(e), "success_agd": s_agd, "success_dag": s_dag,
                         "success_ratio": safe_ratio(s_agd, s_dag), "agd_beats_dag": s_agd > s_dag})
        claims["agd_beats_dag_at_small_eps"] = {
            "holds": all(r["agd_beats_dag"] for r in rows) if rows else None,
            "small_eps": f"eps < {small_eps:g}",
            "paper": "A-GD up to 1.56x the success rate of D-AG at small eps (CIFAR-10)",
            "by_eps": rows,
        }
    else:
        claims["agd_beats_dag_at_small_eps"] = {"holds": None, "reason": "needs both agd and dag in --attack"}
    paper = "FP-Q1-Q2 1.30x, 1.36x, 8.43x more robust than Q1, Q2, FP at eps 0.01 under A-GD (CIFAR-10)"
    if "agd" in ensemble_adv:
        claims["ensemble_beats_members"] = {"basis": "agd", "paper": paper,
                                            **_beats_members(ensemble_adv, member_adv, eps_keys, lambda e: "agd")}
    else:
        claims["ensemble_beats_members"] = {"holds": None, "reason": "needs agd in --attack"}
    claims["ensemble_beats_members_worst_case"] = {
        "basis": "strongest ensemble attack at each eps",
        **_beats_members(ensemble_adv, member_adv, eps_keys, lambda e: strongest_attack(ensemble_adv, e)),
    }
    if transfer:
        rows = []
        for e, t in sorted(transfer.items(), key=lambda kv: float(kv[0])):
            beats = {m: t["ensemble_accuracy"] > acc for m, acc in t["member_accuracy"].items()}
            rows.append({"eps": float(e), "ensemble_accuracy": t["ensemble_accuracy"],
                         "member_accuracy": t["member_accuracy"], "ensemble_beats": beats, "beats_all": all(beats.values())})
        claims["ensemble_beats_members_black_box"] = {"holds": all(r["beats_all"] for r in rows) if rows else None,
                                                      "source": next(iter(transfer.values()))["source"], "by_eps": rows}
    else:
        claims["ensemble_beats_members_black_box"] = {"holds": None, "reason": "no --transfer-from source"}
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

    def ensemble_adv(self) -> dict[str, dict[str, float]]:
        """rule -> eps key -> adversarial accuracy of the vote under that ensemble attack."""
        out: dict[str, dict[str, float]] = {}
        for s in self.sets:
            if s.kind == "ensemble":
                out.setdefault(s.attack, {})[eps_key(s.eps)] = s.ensemble_accuracy
        return out

    def member_adv(self) -> dict[str, dict[str, float]]:
        """member -> eps key -> its adversarial accuracy under white-box PGD on itself."""
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
        under PGD, the ratios, and each member's accuracy on the ensemble's adversarial images."""
        member_adv = self.member_adv()
        rows = []
        for s in self.sets:
            if s.kind != "ensemble":
                continue
            e = eps_key(s.eps)
            rows.append({
                "attack": s.attack,
                "eps": s.eps,
                "ensemble_accuracy": s.ensemble_accuracy,
                "member_pgd_accuracy": {m: member_adv[m].get(e) for m in member_adv},
                "ratio": {m: safe_ratio(s.ensemble_accuracy, member_adv[m].get(e)) for m in member_adv},
                "member_accuracy_on_ensemble_adv": s.member_accuracy,
            })
        return rows

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
            r = safe_ratio(ens, by.get(e))
            text = f"{r:.2f}x" if r is not None else "n/a (member at 0)"
            out.append(f"{text} more robust than {m} at eps {e} ({rule}: {ens:.4f} vs PGD {by.get(e, float('nan')):.4f})")
        return out

    def to_dict(self) -> dict[str, Any]:
        adv = self.ensemble_adv()
        return {
            "format": FORMAT,
            "ensemble": self.ensemble,
            "settings": self.settings,
            "n_images": self.n_images,
            "clean_accuracy": self.clean,
            "table": self.table(),
            "ratios": {"definition": RATIO_DEFINITION, "by_attack": robustness_ratios(adv, self.member_adv())},
            "headline": self.headline(),
            "transfer": self.transfer(),
            "sizes": self.sizes,
            "domination": self.domination,
            "claims": check_claims(adv, self.member_adv(), self.transfer() or None),
            "sets": [s.to_dict() for s in self.sets],
            "plots": self.plots,
            "seconds": self.seconds,
        }


def _stream_logits(
    models: Sequence[torch.nn.Module], batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Every model's logits (CPU float32) on every batch, each batch read once; and the labels."""
    per_model: list[list[torch.Tensor]] = [[] for _ in models]
    labels = []
    with torch.inference_mode():
        for x, y in batches:
            for k, model in enumerate(models):
                device = next(model.parameters()).device
                per_model[k].append(model(x.to(device)).float().cpu())
            labels.append(y.cpu())
    if not labels:
        raise UsageError("no images to evaluate")
    return [torch.cat(p) for p in per_model], torch.cat(labels)


def _accuracy(pred: torch.Tensor, labels: torch.Tensor) -> float:
    return float((pred == labels).double().mean())


def _check_members(models: Sequence[torch.nn.Module], ids: Sequence[str], what: str = "ensemble member") -> None:
    first = models[0].spec
    for model, name in zip(models[1:], ids[1:]):
        s = model.spec
        if (canonical(s.dataset), s.input_shape, s.num_classes) != (canonical(first.dataset), first.input_shape, first.num_classes):
            raise IncompatibleModelsError(
                f"{what} {name!r} is for {s.dataset} {s.input_shape} with {s.num_classes} classes, but {ids[0]!r} is for "
                f"{first.dataset} {first.input_shape} with {first.num_classes}; ensemble members must share a dataset"
            )


def evaluate(
    ensemble: Ensemble | str | Path,
    config: EvalConfig | None = None,
    out_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> Evaluation:
    """Clean and adversarial accuracy of the ensemble's vote and of each member (module doc).

    Adversarial sets come from trendcli.adversarial.generate.attack (cached in the store). With ``out_dir``,
    writes evaluation.json and the PNGs (attack success vs eps, accuracy bars, accuracy vs
    size, gradient domination) there.
    """
    from trendcli.adversarial.generate import attack
    from trendcli.data import iterate_batches, load_split
    from trendcli.zoo.files import load_model, resolve_device

    t0 = time.perf_counter()
    progress = progress or NullProgress()
    ens = ensemble if isinstance(ensemble, Ensemble) else Ensemble.load(ensemble)
    cfg = (config or EvalConfig()).validated()
    if ens.size < 2:
        raise UsageError(f"an ensemble to evaluate needs at least 2 members, got {ens.size}")
    tie = cfg.tie_break or ens.tie_break
    per_image = cfg.per_image if cfg.per_image is not None else ens.per_image
    device = resolve_device(cfg.device)
    models = ens.models(device, per_image)
    ids = ens.ids
    _check_members(models, ids)
    spec = models[0].spec
    split_seed = int((models[0].meta.get("split") or {}).get("seed", 0))
    data_dir = Path(cfg.data_dir) if cfg.data_dir else None
    data, split_idx = load_split(spec.dataset, cfg.split, data_dir, split_seed)
    indices = split_idx[: cfg.limit] if cfg.limit is not None else split_idx
    n = len(indices)

    def vote(logits: Sequence[torch.Tensor]) -> torch.Tensor:
        return vote_logits(logits, tie, ens.seed)

    clean_batch = cfg.batch_size or 256
    clean_logits, labels = _stream_logits(models, iterate_batches(data, indices, clean_batch))
    clean = {
        "ensemble": _accuracy(vote(clean_logits), labels),
        "members": {m: _accuracy(lg.argmax(1), labels) for m, lg in zip(ids, clean_logits)},
    }
    progress.log(f"clean accuracy on {n} images: ensemble {clean['ensemble']:.4f}, "
                 + ", ".join(f"{m} {a:.4f}" for m, a in clean["members"].items()))

    sets: list[SetResult] = []

    def run(source: Any, method: str, eps: float, kind: str, source_ids: list[str], extra: torch.nn.Module | None = None) -> SetResult:
        params = cfg.attack_params(eps)
        if isinstance(source, (list, tuple)):
            params["tie_break"] = tie  # EMPIR/EADG's fixed vote y_hat: the ensemble's own policy
        result = attack(
            source, method, params, split=cfg.split, limit=cfg.limit, batch_size=cfg.batch_size,
            device=str(device), store=cfg.store, force=cfg.force, data_dir=data_dir, tie_break=tie, progress=progress,
        )
        advset = result.advset
        if not np.array_equal(np.asarray(advset.indices), indices.numpy()):
            raise StoreError(f"adversarial set {result.key} holds other images than the {n} evaluated ({cfg.split}, limit {cfg.limit})")
        targets = list(models) + ([extra] if extra is not None else [])
        logits, adv_labels = _stream_logits(targets, ((x, y) for _, _, x, y, _ in advset.iter_chunks()))
        if hasattr(advset, "close"):
            advset.close()
        member_logits = logits[: len(models)]
        member_acc = {m: _accuracy(lg.argmax(1), adv_labels) for m, lg in zip(ids, member_logits)}
        ens_acc = _accuracy(vote(member_logits), adv_labels)
        if kind == "ensemble":
            own = ens_acc
        elif kind == "member":
            own = member_acc[source_ids[0]]
        elif kind == "prefix":
            own = _accuracy(vote(member_logits[: len(source_ids)]), adv_labels)
        else:
            own = _accuracy(logits[-1].argmax(1), adv_labels)
        row = SetResult(kind, source_ids, method, eps, result.key, bool(result.cached), float(result.seconds), own, ens_acc, member_acc)
        sets.append(row)
        on = "the ensemble" if kind == "ensemble" else "+".join(source_ids)
        progress.log(f"{kind} {method} eps {eps:g} on {on}: adversarial accuracy {own:.4f}, ensemble vote {ens_acc:.4f}"
                     + (" (cached)" if result.cached else ""))
        return row

    for rule in cfg.attacks:
        for eps in cfg.eps:
            run(models, rule, eps, "ensemble", ids)
    for model, m in zip(models, ids):
        for eps in cfg.eps:
            run(model, "pgd", eps, "member", [m])
    if cfg.transfer_from:
        source = load_model(cfg.transfer_from, device=device)
        source_id = source.meta.get("id") or Path(cfg.transfer_from).name
        _check_members([models[0], source], [ids[0], source_id], "transfer source")
        for eps in cfg.eps:
            run(source, "pgd", eps, "transfer", [source_id], extra=source)

    sizes = None
    if cfg.sizes:
        points = []
        by_kind = {(s.kind, s.attack, tuple(s.source), eps_key(s.eps)): s for s in sets}
        for k in range(1, len(models) + 1):
            prefix = ids[:k]
            adv = {}
            for eps in cfg.eps:
                e = eps_key(eps)
                if k == 1:
                    adv[e] = by_kind[("member", "pgd", (ids[0],), e)].source_accuracy
                elif k == len(models):
                    adv[e] = by_kind[("ensemble", cfg.size_attack, tuple(ids), e)].ensemble_accuracy
                else:
                    adv[e] = run(models[:k], cfg.size_attack, eps, "prefix", prefix).source_accuracy
            points.append({"size": k, "members": prefix, "clean_accuracy": _accuracy(vote(clean_logits[:k]), labels), "adv_accuracy": adv})
        sizes = {"attack": cfg.size_attack, "order": ids, "note": "prefixes of the members' order; size 1 = the first member under PGD",
                 "points": points}

    domination = dom_result = None
    if cfg.domination:
        from trendcli.ensemble.domination import measure_domination

        dom_idx = indices[: cfg.domination_images]
        dom_result = measure_domination(models, iterate_batches(data, dom_idx, clean_batch), ids)
        domination = dom_result.to_dict()

    evaluation = Evaluation(
        ensemble={"path": str(ens.source) if ens.source else None, "members": ids, "tie_break": tie, "seed": ens.seed,
                  "per_image": per_image, "model_dirs": [str(p) for p in ens.member_dirs()]},
        settings={**{k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
                  "dataset": spec.dataset, "device": str(device), "member_attack": "pgd", "transfer_attack": "pgd",
                  "small_eps": SMALL_EPS},
        n_images=n,
        clean=clean,
        sets=sets,
        sizes=sizes,
        domination=domination,
    )
    evaluation.seconds = time.perf_counter() - t0
    if out_dir is not None:
        write_outputs(evaluation, Path(out_dir), dom_result)
    return evaluation


def write_outputs(evaluation: Evaluation, out_dir: Path, domination: Any = None) -> dict[str, str]:
    """The PNGs (figures 6, 8, 9 and 7 alike) and evaluation.json in ``out_dir``; returns the plot paths."""
    from trendcli.transfer.heatmap import short_labels
    from trendcli.ensemble.plots import plot_accuracy_bars, plot_accuracy_vs_size, plot_attack_success

    out_dir.mkdir(parents=True, exist_ok=True)
    eps = evaluation.settings["eps"]
    keys = [eps_key(e) for e in eps]
    adv = evaluation.ensemble_adv()
    member_adv = evaluation.member_adv()
    transfer = evaluation.transfer()
    members = evaluation.ensemble["members"]
    plots: dict[str, str] = {}
    success = {f"{r} (ensemble)": [None if k not in by else 1 - by[k] for k in keys] for r, by in adv.items()}
    plots["attack_success"] = str(plot_attack_success(eps, success, out_dir / PLOT_FILES["attack_success"]))

    panels = []
    for k in keys:
        rule = strongest_attack(adv, k)
        groups = ["ensemble", *short_labels(members)]
        series = {"clean": [evaluation.clean["ensemble"], *(evaluation.clean["members"][m] for m in members)]}
        series[f"white-box ({rule} / pgd)"] = [adv[rule][k] if rule else None, *(member_adv[m].get(k) for m in members)]
        if k in transfer:
            t = transfer[k]
            series[f"transfer from {t['source']}"] = [t["ensemble_accuracy"], *(t["member_accuracy"][m] for m in members)]
        panels.append((f"eps {k}", groups, series))
    plots["accuracy_bars"] = str(plot_accuracy_bars(panels, out_dir / PLOT_FILES["accuracy_bars"]))

    if evaluation.sizes:
        pts = evaluation.sizes["points"]
        series = {"clean": [p["clean_accuracy"] for p in pts]}
        for k in keys:
            series[f"{evaluation.sizes['attack']} eps {k}"] = [p["adv_accuracy"].get(k) for p in pts]
        ticks = [f"{p['size']}" for p in pts]
        plots["accuracy_vs_size"] = str(plot_accuracy_vs_size([p["size"] for p in pts], series, out_dir / PLOT_FILES["accuracy_vs_size"], ticks))
    if domination is not None and domination.example is not None:
        from trendcli.ensemble.domination import plot_domination

        plots["domination"] = str(plot_domination(domination, out_dir / PLOT_FILES["domination"], labels=short_labels(members)))
    evaluation.plots = plots
    write_json_atomic(out_dir / "evaluation.json", evaluation.to_dict())
    return plots
