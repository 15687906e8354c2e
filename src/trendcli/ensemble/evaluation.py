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
both at eps with the same steps, alpha, seed and images (trendcli.stats.ratio: NaN when the
member is at 0, null in evaluation.json, n/a on screen).

The ``claims`` of evaluation.json are decided by trendcli.report.ensemble_findings, the same
rules `trend report` and the README findings table use.

Black-box members (an ONNX file run in onnxruntime, trendcli.zoo.blackbox) give no gradients,
so an ensemble holding one is evaluated with what only queries it: the ensemble attacks are
gradient-free (Square on the vote score; ``attacks`` default ``("square",)``), each member's own
robustness is Square on that member (``member_attack`` default ``square``, the same attack for
every member so that the ratios compare like with like), and transfer from ``transfer_from``
works as for any ensemble. A gradient attack asked of such an ensemble is one UsageError before
any work; the steps that need gradients (domination, and in the worst case APGD on the ensemble
and on the black-box members, and the masking probes that differentiate) are listed in
evaluation.json's ``not_run`` with the reason (docs/method.md, "Ensembles with black-box members").
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
from trendcli.ensemble.vote import TIE_BREAKS
from trendcli.ensemble.worst_case import ADAPTIVE, PROTOCOLS, WorstCaseConfig
from trendcli.errors import IncompatibleModelsError, StoreError, UsageError
from trendcli.fsio import write_json_atomic
from trendcli.progress import NullProgress, Progress
from trendcli.registry import canonical
from trendcli.ensemble.results import (  # noqa: F401  (re-exported: the results of evaluate)
    CLAIM_KEYS,
    FORMAT,
    RATIO_DEFINITION,
    Evaluation,
    SetResult,
    check_claims,
    eps_key,
    interval_of,
    robustness_ratios,
)
from trendcli.report.ensemble_findings import SMALL_EPS, strongest_attack
from trendcli.stats import encode_bits, fmt_rate

DEFAULT_ATTACKS = ("agd", "ugd", "dag", "empir")
#: The ensemble attacks of an ensemble with a black-box member (no gradients through it).
BLACK_BOX_ATTACKS = ("square",)
#: The attacks on each member alone: the paper's white-box PGD, or Square (gradient-free).
MEMBER_ATTACKS = ("pgd", "square")
DEFAULT_EPS = (0.002, 0.005, 0.01, 0.02, 0.03)
PLOT_FILES = {
    "attack_success": "attack_success.png",
    "accuracy_bars": "accuracy_bars.png",
    "accuracy_vs_size": "accuracy_vs_size.png",
    "domination": "domination.png",
}


@dataclass(frozen=True)
class EvalConfig:
    """What `trend evaluate` takes besides the ensemble. None = the ensemble's own setting."""

    #: direction rules and/or ensemble adaptive attacks (ADAPTIVE); None: DEFAULT_ATTACKS, or
    #: BLACK_BOX_ATTACKS when a member is black-box (resolved by for_members)
    attacks: tuple[str, ...] | None = None
    member_attack: str | None = None  # one of MEMBER_ATTACKS; None: pgd, or square when a member is black-box
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
    layout: str = "auto"  # memory layout of the attacks (part of each set's key)
    protocol: str = "standard"  # or "worst-case": the suite of trendcli.ensemble.worst_case and the masking flags
    worst_case: WorstCaseConfig = WorstCaseConfig()

    def validated(self) -> "EvalConfig":
        """Canonical names, checked numbers; unknown rules fail listing the known ones.

        ``attacks`` and ``member_attack`` left None stay None (for_members resolves them).
        """
        from trendcli.registry import get_registry

        attacks = None if self.attacks is None else tuple(dict.fromkeys(canonical(a) for a in self.attacks))
        if attacks is not None and not attacks:
            raise UsageError("--attack needs at least one ensemble attack rule (e.g. agd,dag)")
        for a in attacks or ():
            if a not in ADAPTIVE:
                get_registry().factory("direction rule", a)
        member_attack = canonical(self.member_attack) if self.member_attack else None
        if member_attack is not None and member_attack not in MEMBER_ATTACKS:
            raise UsageError(f"unknown member attack {self.member_attack!r}; known: {', '.join(MEMBER_ATTACKS)}")
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
        size_attack = canonical(self.size_attack) if self.size_attack else None
        if attacks is not None:
            size_attack = size_attack or ("agd" if "agd" in attacks else attacks[0])
            if size_attack not in attacks:
                raise UsageError(f"the size sweep's attack {size_attack!r} is not among --attack {','.join(attacks)}")
        if self.protocol not in PROTOCOLS:
            raise UsageError(f"unknown protocol {self.protocol!r}; known: {', '.join(PROTOCOLS)}")
        if self.protocol == "worst-case":
            self.worst_case.validated(eps)  # bad budgets fail before any attack runs
        return replace(self, attacks=attacks, member_attack=member_attack, eps=eps, size_attack=size_attack)

    def for_members(self, black_box: Sequence[str]) -> "EvalConfig":
        """The validated config with its defaults resolved for an ensemble whose black-box
        members are ``black_box`` (ids); a gradient attack asked of such an ensemble is one
        UsageError naming the member (module doc)."""
        attacks = self.attacks if self.attacks is not None else (BLACK_BOX_ATTACKS if black_box else DEFAULT_ATTACKS)
        member_attack = self.member_attack or ("square" if black_box else "pgd")
        cfg = replace(self, attacks=attacks, member_attack=member_attack).validated()
        if black_box:
            from trendcli.zoo.blackbox import black_box_message, needs_gradients

            gradient = [a for a in (*cfg.attacks, cfg.member_attack) if needs_gradients(a)]
            if gradient:
                raise UsageError(f"{black_box_message(black_box[0])}; {gradient[0]} needs gradients "
                                 "(evaluate with --attack square --member-attack square, and --transfer-from)")
        return cfg

    def attack_params(self, eps: float, method: str = "pgd") -> dict[str, Any]:
        """The parameters of ``method`` at ``eps``: PGD and the direction rules take the authors'
        ensemble settings; the adaptive attacks (apgd, apgd_t, square) the worst-case suite's
        (``worst_case``: iterations, targets, queries), with this config's seed."""
        if method in ADAPTIVE:
            return {**replace(self.worst_case, eps=eps).params(method), "seed": self.seed}
        return {"eps": eps, "alpha": self.alpha, "steps": self.steps, "random_start": self.random_start, "seed": self.seed}


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


def _bits(pred: torch.Tensor, labels: torch.Tensor) -> str:
    """Per-image correctness as stored in evaluation.json (trendcli.stats.encode_bits)."""
    return encode_bits((pred == labels).numpy())


def _check_members(models: Sequence[torch.nn.Module], ids: Sequence[str], what: str = "ensemble member") -> None:
    first = models[0].spec
    for model, name in zip(models[1:], ids[1:]):
        s = model.spec
        if (canonical(s.dataset), s.input_shape, s.num_classes) != (canonical(first.dataset), first.input_shape, first.num_classes):
            raise IncompatibleModelsError(
                f"{what} {name!r} is for {s.dataset} {s.input_shape} with {s.num_classes} classes, but {ids[0]!r} is for "
                f"{first.dataset} {first.input_shape} with {first.num_classes}; ensemble members must share a dataset"
            )


@dataclass
class _Setup:
    """What every step of evaluate() shares: the members, the images and the vote's policy."""

    ens: Ensemble
    cfg: EvalConfig
    tie: str
    per_image: bool
    device: Any
    models: list[torch.nn.Module]
    ids: list[str]
    spec: Any
    data: Any
    indices: Any
    data_dir: Path | None
    clean_batch: int
    progress: Progress
    black_box: list[str] = field(default_factory=list)  # ids of the members run in onnxruntime
    sets: list[SetResult] = field(default_factory=list)
    not_run: dict[str, str] = field(default_factory=dict)  # step -> why it did not run

    @property
    def n(self) -> int:
        return len(self.indices)

    def vote(self, logits: Sequence[torch.Tensor]) -> torch.Tensor:
        return vote_logits(logits, self.tie, self.ens.seed)


def _setup(ensemble: Ensemble | str | Path, config: EvalConfig | None, progress: Progress | None) -> _Setup:
    """Load the ensemble and its members, check them, and select the evaluated images."""
    from trendcli.data import load_split
    from trendcli.zoo.blackbox import is_black_box
    from trendcli.zoo.files import resolve_device

    cfg = (config or EvalConfig()).validated()  # bad settings fail before anything loads
    ens = ensemble if isinstance(ensemble, Ensemble) else Ensemble.load(ensemble)
    if ens.size < 2:
        raise UsageError(f"an ensemble to evaluate needs at least 2 members, got {ens.size}")
    per_image = cfg.per_image if cfg.per_image is not None else ens.per_image
    device = resolve_device(cfg.device)
    models = ens.models(device, per_image)
    ids = ens.ids
    _check_members(models, ids)
    black_box = [i for m, i in zip(models, ids) if is_black_box(m)]
    cfg = cfg.for_members(black_box)  # a gradient attack on a black-box member fails here, before any attack
    spec = models[0].spec
    split_seed = int((models[0].meta.get("split") or {}).get("seed", 0))
    data_dir = Path(cfg.data_dir) if cfg.data_dir else None
    data, split_idx = load_split(spec.dataset, cfg.split, data_dir, split_seed)
    indices = split_idx[: cfg.limit] if cfg.limit is not None else split_idx
    return _Setup(ens, cfg, cfg.tie_break or ens.tie_break, per_image, device, list(models), list(ids), spec, data,
                  indices, data_dir, cfg.batch_size or 256, progress or NullProgress(), black_box)


def _clean_accuracy(st: _Setup) -> tuple[list[torch.Tensor], torch.Tensor, dict[str, Any]]:
    """The members' clean logits, the labels, and the clean accuracy of the vote and of each member."""
    from trendcli.data import iterate_batches

    clean_logits, labels = _stream_logits(st.models, iterate_batches(st.data, st.indices, st.clean_batch))
    vote = st.vote(clean_logits)
    clean = {
        "ensemble": _accuracy(vote, labels),
        "members": {m: _accuracy(lg.argmax(1), labels) for m, lg in zip(st.ids, clean_logits)},
        "per_image": {"ensemble": _bits(vote, labels),
                      "members": {m: _bits(lg.argmax(1), labels) for m, lg in zip(st.ids, clean_logits)}},
        # the same images voted with every tie-break: the export deploys "first" or "confidence"
        "by_tie_break": {tb: _accuracy(vote_logits(clean_logits, tb, st.ens.seed), labels) for tb in TIE_BREAKS},
    }
    st.progress.log(f"clean accuracy on {st.n} images: ensemble {fmt_rate(clean['ensemble'])}, "
                    + ", ".join(f"{m} {fmt_rate(a)}" for m, a in clean["members"].items()))
    return clean_logits, labels, clean


def _run_set(st: _Setup, source: Any, method: str, eps: float, kind: str, source_ids: list[str],
             extra: torch.nn.Module | None = None) -> SetResult:
    """Attack ``source`` (or read the set from the store), evaluate the vote and every member on it."""
    from trendcli.adversarial.generate import attack

    cfg = st.cfg
    params = cfg.attack_params(eps, method)
    if isinstance(source, (list, tuple)):
        params["tie_break"] = st.tie  # EMPIR/EADG's fixed vote y_hat: the ensemble's own policy
    result = attack(
        source, method, params, split=cfg.split, limit=cfg.limit, batch_size=cfg.batch_size,
        device=str(st.device), store=cfg.store, force=cfg.force, data_dir=st.data_dir, tie_break=st.tie,
        layout=cfg.layout, progress=st.progress,
    )
    advset = result.advset
    if not np.array_equal(np.asarray(advset.indices), st.indices.numpy()):
        raise StoreError(f"adversarial set {result.key} holds other images than the {st.n} evaluated "
                         f"({cfg.split}, limit {cfg.limit})")
    targets = list(st.models) + ([extra] if extra is not None else [])
    logits, adv_labels = _stream_logits(targets, ((x, y) for _, _, x, y, _ in advset.iter_chunks()))
    if hasattr(advset, "close"):
        advset.close()
    member_logits = logits[: len(st.models)]
    member_pred = {m: lg.argmax(1) for m, lg in zip(st.ids, member_logits)}
    member_acc = {m: _accuracy(p, adv_labels) for m, p in member_pred.items()}
    vote = st.vote(member_logits)
    ens_acc = _accuracy(vote, adv_labels)
    if kind == "ensemble":
        own_pred = vote
    elif kind == "member":
        own_pred = member_pred[source_ids[0]]
    elif kind == "prefix":
        own_pred = st.vote(member_logits[: len(source_ids)])
    else:
        own_pred = logits[-1].argmax(1)
    per_image = {"source": _bits(own_pred, adv_labels), "ensemble": _bits(vote, adv_labels),
                 "members": {m: _bits(p, adv_labels) for m, p in member_pred.items()}}
    own = _accuracy(own_pred, adv_labels)
    # the same images voted with every tie-break (beside the ensemble's own; a re-vote, not a re-attack)
    by_tie = {tb: ens_acc if tb == st.tie else _accuracy(vote_logits(member_logits, tb, st.ens.seed), adv_labels)
              for tb in TIE_BREAKS}
    row = SetResult(kind, source_ids, method, eps, result.key, bool(result.cached), float(result.seconds), own, ens_acc,
                    member_acc, per_image, by_tie)
    st.sets.append(row)
    on = "the ensemble" if kind == "ensemble" else "+".join(source_ids)
    st.progress.log(f"{kind} {method} eps {eps:g} on {on}: adversarial accuracy {fmt_rate(own)}, ensemble vote "
                    f"{fmt_rate(ens_acc)}" + (" (cached)" if result.cached else ""))
    return row


def _attack_sets(st: _Setup) -> None:
    """The ensemble attacks, the member attack on each member, and the optional black-box transfer."""
    from trendcli.zoo.files import load_model

    for rule in st.cfg.attacks:
        for eps in st.cfg.eps:
            _run_set(st, st.models, rule, eps, "ensemble", st.ids)
    for model, m in zip(st.models, st.ids):
        for eps in st.cfg.eps:
            _run_set(st, model, st.cfg.member_attack, eps, "member", [m])
    if st.cfg.transfer_from:
        source = load_model(st.cfg.transfer_from, device=st.device)
        source_id = source.meta.get("id") or Path(st.cfg.transfer_from).name
        _check_members([st.models[0], source], [st.ids[0], source_id], "transfer source")
        for eps in st.cfg.eps:
            _run_set(st, source, "pgd", eps, "transfer", [source_id], extra=source)


def _size_sweep(st: _Setup, clean_logits: list[torch.Tensor], labels: torch.Tensor) -> dict[str, Any]:
    """Accuracy vs ensemble size (figure 9) over the prefixes of the members' order."""
    points = []
    by_kind = {(s.kind, s.attack, tuple(s.source), eps_key(s.eps)): s for s in st.sets}
    k_all = len(st.models)
    for k in range(1, k_all + 1):
        prefix = st.ids[:k]
        adv = {}
        for eps in st.cfg.eps:
            e = eps_key(eps)
            if k == 1:
                adv[e] = by_kind[("member", st.cfg.member_attack, (st.ids[0],), e)].source_accuracy
            elif k == k_all:
                adv[e] = by_kind[("ensemble", st.cfg.size_attack, tuple(st.ids), e)].ensemble_accuracy
            else:
                adv[e] = _run_set(st, st.models[:k], st.cfg.size_attack, eps, "prefix", prefix).source_accuracy
        points.append({"size": k, "members": prefix, "clean_accuracy": _accuracy(st.vote(clean_logits[:k]), labels),
                       "adv_accuracy": adv})
    return {"attack": st.cfg.size_attack, "order": st.ids,
            "note": f"prefixes of the members' order; size 1 = the first member under {st.cfg.member_attack}",
            "points": points}


def _domination(st: _Setup) -> Any:
    """Gradient domination (figure 7) on the first ``domination_images`` evaluated images."""
    from trendcli.data import iterate_batches
    from trendcli.ensemble.domination import measure_domination

    dom_idx = st.indices[: st.cfg.domination_images]
    return measure_domination(st.models, iterate_batches(st.data, dom_idx, st.clean_batch), st.ids)


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
    t0 = time.perf_counter()
    st = _setup(ensemble, config, progress)
    clean_logits, labels, clean = _clean_accuracy(st)
    _attack_sets(st)
    sizes = _size_sweep(st, clean_logits, labels) if st.cfg.sizes else None
    dom_result = None
    if st.cfg.domination and st.black_box:
        st.not_run["domination"] = f"needs gradients of every member; {', '.join(st.black_box)} black-box"
    elif st.cfg.domination:
        dom_result = _domination(st)
    ens, cfg = st.ens, st.cfg
    make: Any = Evaluation
    if cfg.protocol == "worst-case":
        from trendcli.ensemble.masking import measure_masking
        from trendcli.ensemble.worst_case import WorstCaseEvaluation, run_worst_case

        worst, outcomes = run_worst_case(st, clean)
        masking = measure_masking(st, worst, outcomes)
        make = lambda **kw: WorstCaseEvaluation(**kw, worst_case=worst, masking=masking)  # noqa: E731
    evaluation = make(
        ensemble={"path": str(ens.source) if ens.source else None, "members": st.ids, "tie_break": st.tie,
                  "seed": ens.seed, "per_image": st.per_image, "model_dirs": [str(p) for p in ens.member_dirs()],
                  "black_box": st.black_box},
        settings={**{k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
                  "dataset": st.spec.dataset, "device": str(st.device), "transfer_attack": "pgd", "small_eps": SMALL_EPS},
        n_images=st.n,
        clean=clean,
        sets=st.sets,
        sizes=sizes,
        domination=dom_result.to_dict() if dom_result is not None else None,
        not_run=st.not_run,
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

    def ivs(values: Sequence[float | None]) -> list[Any]:
        """Wilson 95 % intervals of rates on the evaluated images (each rate is k / n exactly)."""
        return [interval_of(None, v, evaluation.n_images) for v in values]

    success = {f"{r} (ensemble)": [None if k not in by else 1 - by[k] for k in keys] for r, by in adv.items()}
    plots["attack_success"] = str(plot_attack_success(eps, success, out_dir / PLOT_FILES["attack_success"],
                                                      intervals={s: ivs(v) for s, v in success.items()}))

    panels = []
    for k in keys:
        rule = strongest_attack(adv, k)
        groups = ["ensemble", *short_labels(members)]
        series = {"clean": [evaluation.clean["ensemble"], *(evaluation.clean["members"][m] for m in members)]}
        series[f"attacked ({rule} / {evaluation.member_attack})"] = [adv[rule][k] if rule else None,
                                                                     *(member_adv[m].get(k) for m in members)]
        if k in transfer:
            t = transfer[k]
            series[f"transfer from {t['source']}"] = [t["ensemble_accuracy"], *(t["member_accuracy"][m] for m in members)]
        panels.append((f"eps {k}", groups, series))
    plots["accuracy_bars"] = str(plot_accuracy_bars(panels, out_dir / PLOT_FILES["accuracy_bars"],
                                                    intervals=[{s: ivs(v) for s, v in p[2].items()} for p in panels]))

    if evaluation.sizes:
        pts = evaluation.sizes["points"]
        series = {"clean": [p["clean_accuracy"] for p in pts]}
        for k in keys:
            series[f"{evaluation.sizes['attack']} eps {k}"] = [p["adv_accuracy"].get(k) for p in pts]
        ticks = [f"{p['size']}" for p in pts]
        plots["accuracy_vs_size"] = str(plot_accuracy_vs_size([p["size"] for p in pts], series,
                                                              out_dir / PLOT_FILES["accuracy_vs_size"], ticks,
                                                              intervals={s: ivs(v) for s, v in series.items()}))
    if domination is not None and domination.example is not None:
        from trendcli.ensemble.domination import plot_domination

        plots["domination"] = str(plot_domination(domination, out_dir / PLOT_FILES["domination"], labels=short_labels(members)))
    evaluation.plots = plots
    write_json_atomic(out_dir / "evaluation.json", evaluation.to_dict())
    return plots
