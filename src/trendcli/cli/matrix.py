"""`trend matrix`: the transferability matrix of a set of models under one attack."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from trendcli.cli import options as ao
from trendcli.cli.render import RichProgress, console, fmt, print_json


def _model_dirs(model: list[Path] | None, models_dir: Path | None, need: int = 2) -> list[str]:
    from trendcli.errors import UsageError

    dirs = [str(m) for m in (model or [])]
    if models_dir is not None:
        if not models_dir.is_dir():
            raise UsageError(f"--models-dir {models_dir} is not a directory")
        found = sorted(str(p.parent) for p in models_dir.glob("*/model.json"))
        if not found:
            raise UsageError(f"no model directories (with model.json) under {models_dir}")
        dirs += [d for d in found if d not in dirs]
    if len(dirs) < need:
        raise UsageError("a transfer matrix needs two or more models: --model DIR --model DIR, or --models-dir DIR"
                         if need > 1 else "a matrix with --target needs a source model: --source DIR, or --models-dir DIR")
    return dirs


def matrix_cmd(
    out: Annotated[Path, typer.Option("--out", help="Output prefix: writes OUT.json, OUT.csv and OUT.png (an existing OUT.json is reused).")],
    model: Annotated[Optional[list[Path]], typer.Option("--model", "--source", help="Model directory (repeat for each model); with --target, the sources.")] = None,
    models_dir: Annotated[Optional[Path], typer.Option("--models-dir", help="Every model directory under DIR.")] = None,
    target: Annotated[Optional[list[Path]], typer.Option("--target", help="Target model directory (repeatable): a rectangular matrix, sources x targets; black-box (ONNX) members only here.")] = None,
    method: ao.AttackName = "pgd",
    eps: ao.Eps = None, alpha: ao.Alpha = None, steps: ao.Steps = None, random_start: ao.RandomStart = None,
    restarts: ao.Restarts = None, seed: ao.Seed = None, kappa: ao.Kappa = None, c: ao.C = None, lr: ao.Lr = None,
    binary_steps: ao.BinarySteps = None, norm: ao.Norm = None, overshoot: ao.Overshoot = None, max_iter: ao.MaxIter = None,
    store: ao.Store = Path("runs/adv"), limit: ao.Limit = None, batch_size: ao.BatchSize = None,
    device: ao.Device = "auto", split: ao.Split = "test", data_dir: ao.DataDir = None, force: ao.Force = False,
    layout: ao.Layout = "auto",
    di: ao.Di = False, ti: ao.Ti = False, diversity_prob: ao.DiversityProb = None, ti_kernel: ao.TiKernel = None,
    decay: ao.Decay = None,
    include_diagonal: Annotated[bool, typer.Option("--include-diagonal", help="Averages include the diagonal (as the authors' printed averages do).")] = False,
    normalize: Annotated[str, typer.Option("--normalize", help="eq1 (TM = N_t/N_g) or figure (the authors' heatmaps: N_t(s->t)/N_t(s->s), seed means).")] = "eq1",
    group_by: Annotated[Optional[str], typer.Option("--group-by", help="Model fields for seed statistics, e.g. arch,input_quant,optimizer.")] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Ignore an existing OUT.json (the attacks still come from the store).")] = False,
    wide_interval: Annotated[Optional[float], typer.Option("--wide-interval", help="Mark (*) the heatmap's TM entries whose 95 % interval is wider than this, e.g. 0.2.")] = None,
    as_json: ao.Json = False,
) -> None:
    """Attack every model, evaluate every other model on its set, and write TM for every ordered pair."""
    from trendcli.transfer.matrix import run_matrix

    fields = [f.strip() for f in group_by.split(",") if f.strip()] if group_by else None
    dirs = _model_dirs(model, models_dir, need=1 if target else 2)
    params = ao.attack_params(eps, alpha, steps, random_start, restarts, seed, kappa, c, lr, binary_steps, norm, overshoot, max_iter)
    params.update(ao.transfer_params(method, di, ti, diversity_prob, ti_kernel, decay))
    with RichProgress(quiet=as_json) as progress:
        run = run_matrix(
            dirs, out, method, params, targets=[str(t) for t in target] if target else None, split=split, limit=limit,
            batch_size=batch_size, device=device, store=store,
            data_dir=data_dir, layout=layout, reuse=not fresh, force=force, include_diagonal=include_diagonal,
            normalize=normalize, group_by=fields, progress=progress, wide_interval=wide_interval,
        )
    mx, paths = run.matrix, run.files
    data = mx.to_dict(include_diagonal, normalize, fields)
    if as_json:
        print_json({**data, "files": {k: str(v) for k, v in paths.items()}})
        return
    _print_matrix(mx, data, normalize)
    if fields:
        _print_groups(data["groups"])
    state = "[green]cache hit end to end[/]: nothing attacked or evaluated" if mx.cached else (
        f"computed {mx.computed_pairs} pair(s), reused {mx.reused_pairs}; (set, target) evaluations: "
        f"{mx.evaluated} evaluated, {mx.read_from_cache} read from the cache; {mx.attacked} set(s) attacked"
    )
    console.print(f"{state} in {mx.seconds:.1f} s")
    console.print("wrote " + ", ".join(str(p) for p in paths.values()))


def _print_matrix(mx: Any, data: dict[str, Any], normalize: str) -> None:
    from rich.table import Table

    from trendcli.transfer.heatmap import short_labels

    labels = short_labels(mx.names)
    values = data["tm"] if normalize == "eq1" else data["figure"]
    avg = data["averages"]
    what = "TM = N_t / N_g" if normalize == "eq1" else "N_t(s->t) / N_t(s->s)"
    diag = "with" if avg["include_diagonal"] else "without"
    table = Table(title=f"{mx.title()}: {what} (rows source, columns target; averages {diag} the diagonal)")
    table.add_column("source \\ target")
    for label in labels:
        table.add_column(label, justify="right")
    table.add_column("avg", justify="right", style="bold")
    for name, label, row in zip(mx.names, labels, values):
        table.add_row(label, *(fmt(v) for v in row), fmt(avg["row"][name]))
    table.add_row("avg", *(fmt(avg["column"][n]) for n in mx.names), "", style="bold")
    console.print(table)
    acc = data["clean_accuracy"]
    console.print("clean accuracy: " + ", ".join(f"{lab} {fmt(acc[n], '.4f')}" for n, lab in zip(mx.names, labels)))
    _print_intervals(mx, data, labels)
    rows, cols = avg["row"], avg["column"]
    best_src = max((n for n in mx.names if rows[n] is not None), key=lambda n: rows[n], default=None)
    best_tgt = min((n for n in mx.names if cols[n] is not None), key=lambda n: cols[n], default=None)
    if best_src and best_tgt:
        console.print(f"adversary's source (highest row average): [bold]{best_src}[/]; "
                      f"defender's target (lowest column average): [bold]{best_tgt}[/]")


def _tm_iv(value: float | None, interval: list | None) -> str:
    """A TM with its Wilson 95 % interval (N_t of N_g): ``0.775 [0.712, 0.828]``."""
    from trendcli.stats import fmt_interval, fmt_tm

    iv = fmt_interval(interval, fmt_tm)
    return fmt_tm(value) if iv == "n/a" else f"{fmt_tm(value)} {iv}"


def _print_intervals(mx: Any, data: dict[str, Any], labels: list[str]) -> None:
    """The widest TM intervals: where the matrix rests on few generated adversarials."""
    widths = [(iv[1] - iv[0], s, t) for s, row in enumerate(data["tm_interval"]) for t, iv in enumerate(row)
              if s != t and iv[0] is not None]
    if widths:
        w, s, t = max(widths)
        console.print(f"TM intervals (Wilson 95 %, N_t of N_g, in OUT.pairs.csv): widest {labels[s]} -> {labels[t]} "
                      f"{_tm_iv(data['tm'][s][t], data['tm_interval'][s][t])} (N_g {mx.n_g[s, t]})")


def _print_groups(groups: dict[str, Any]) -> None:
    from rich.table import Table

    names = groups["groups"]
    table = Table(title=f"seed statistics by {','.join(groups['fields'])}: each member as source, the other members as targets "
                        f"(mean +- std over ordered pairs, std {groups.get('std', '')}; pooled TM with its Wilson 95 % interval)")
    for col in ("group", "models", "pairs", "N_g (generated)", "N_t (transferred)", "TM", "pooled TM [95 %]"):
        table.add_column(col, justify="left" if col == "group" else "right")

    def pm(mean: float | None, std: float | None, spec: str) -> str:
        return "n/a" if mean is None else f"{mean:{spec}} +- {fmt(std, spec)}"

    single = [g for g in names if len(groups["members"][g]) < 2]
    for i, g in enumerate(names):
        if g in single:
            continue  # one model: no pair of two seeds
        table.add_row(
            g, str(len(groups["members"][g])), str(groups["pairs"][i][i]),
            pm(groups["n_g_mean"][i][i], groups["n_g_std"][i][i], ".1f"),
            pm(groups["n_t_mean"][i][i], groups["n_t_std"][i][i], ".1f"),
            pm(groups["tm_mean"][i][i], groups["tm_std"][i][i], ".3f"),
            _tm_iv(groups["tm_pooled"][i][i], groups["tm_interval"][i][i]),
        )
    if len(single) < len(names):
        console.print(table)
    if single:
        console.print(f"no seed statistics for {', '.join(single)}: one model each (train more seeds)")
    if len(names) > 1:
        cross = Table(title="mean TM between groups (rows source group, columns target group)")
        cross.add_column("source \\ target")
        for g in names:
            cross.add_column(g, justify="right")
        for i, g in enumerate(names):
            cross.add_row(g, *(fmt(v) for v in groups["tm_mean"][i]))
        console.print(cross)
