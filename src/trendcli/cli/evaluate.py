"""`trend evaluate`: clean and adversarial accuracy of an ensemble and of each member."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from trendcli.cli import options as ao
from trendcli.cli.options import parse_list, parse_number
from trendcli.cli.render import RichProgress, console, fmt, print_json


def _verdict(claim: dict) -> str:
    holds = claim.get("holds")
    if holds is None:
        return f"not measured ({claim.get('reason', 'no eps in range')})"
    rows = claim.get("by_eps", [])
    ok = sum(bool(r.get("beats_all", r.get("agd_beats_dag"))) for r in rows)
    where = f" (at {ok} of {len(rows)} eps: " + ", ".join(f"{r['eps']:g}" for r in rows if r.get("beats_all", r.get("agd_beats_dag"))) + ")"
    return ("[green]holds[/]" if holds else "[red]does not hold[/]") + where


def evaluate_cmd(
    ensemble: Annotated[Path, typer.Option("--ensemble", help="Ensemble JSON (from `trend design`).")],
    attack: Annotated[str, typer.Option("--attack", help="Ensemble attack rules, comma list: agd, ugd, dag, empir, eadg.")] = "agd,ugd,dag,empir",
    eps: ao.EpsList = "0.002,0.005,0.01,0.02,0.03",
    limit: ao.Limit = None,
    split: ao.Split = "test",
    alpha: ao.Alpha = "0.01",
    steps: ao.Steps = 40,
    random_start: ao.RandomStart = True,
    seed: ao.Seed = 0,
    transfer_from: Annotated[Optional[Path], typer.Option("--transfer-from", help="Outside source model dir for a black-box PGD transfer attack.")] = None,
    tie_break: ao.TieBreak = None,
    per_image: ao.PerImage = None,
    sizes: Annotated[bool, typer.Option("--sizes/--no-sizes", help="Accuracy vs ensemble size over the members' prefixes (extra attacks).")] = True,
    domination: Annotated[bool, typer.Option("--domination/--no-domination", help="Measure gradient domination and plot it.")] = True,
    store: ao.Store = Path("runs/adv"),
    force: ao.Force = False,
    batch_size: ao.BatchSize = None,
    device: ao.Device = "auto",
    data_dir: ao.DataDir = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Directory for evaluation.json and the PNGs (default: runs/eval/<ensemble name>).")] = None,
    as_json: ao.Json = False,
) -> None:
    """Attack the ensemble (white-box ensemble attacks, PGD on each member, optional transfer) and compare."""
    from rich.table import Table

    from trendcli.ensemble.evaluation import EvalConfig, evaluate

    config = EvalConfig(
        attacks=tuple(a.strip() for a in attack.split(",") if a.strip()),
        eps=tuple(parse_list(eps, "--eps")) if eps else (),
        alpha=parse_number(alpha, "--alpha") if alpha else 0.0,
        steps=steps, random_start=random_start, seed=seed, limit=limit, split=split,
        transfer_from=str(transfer_from) if transfer_from else None, sizes=sizes, domination=domination,
        tie_break=tie_break, per_image=per_image, batch_size=batch_size, device=device, store=str(store),
        data_dir=str(data_dir) if data_dir else None, force=force,
    )
    out_dir = out or Path("runs/eval") / ensemble.stem
    with RichProgress(quiet=as_json) as progress:
        result = evaluate(ensemble, config, out_dir, progress)
    data = result.to_dict()
    if as_json:
        print_json(data)
        return
    from trendcli.transfer.heatmap import short_labels

    members = data["ensemble"]["members"]
    short = dict(zip(members, short_labels(members)))
    clean = data["clean_accuracy"]
    console.print(f"[bold]{' + '.join(members)}[/] on {data['n_images']} {config.split} images "
                  f"(tie-break {data['ensemble']['tie_break']}): clean accuracy ensemble [bold]{clean['ensemble']:.4f}[/], "
                  + ", ".join(f"{m} {a:.4f}" for m, a in clean["members"].items()))
    table = Table(title="adversarial accuracy: ensemble under each ensemble attack, each member under white-box PGD; ratio = ensemble / member")
    table.add_column("attack")
    table.add_column("eps", justify="right")
    table.add_column("ensemble", justify="right")
    for m in members:
        table.add_column(f"{short[m]} PGD", justify="right")
        table.add_column("ratio", justify="right")
    for row in data["table"]:
        cells = [row["attack"], f"{row['eps']:g}", fmt(row["ensemble_accuracy"], ".4f")]
        for m in members:
            r = row["ratio"][m]
            cells += [fmt(row["member_pgd_accuracy"][m], ".4f"), "n/a" if r is None else f"{r:.2f}x"]
        table.add_row(*cells)
    console.print(table)
    if data["transfer"]:
        t = Table(title=f"black-box transfer: PGD on {next(iter(data['transfer'].values()))['source']}")
        for col in ("eps", "source", "ensemble", *(short[m] for m in members)):
            t.add_column(col, justify="right")
        for e, v in data["transfer"].items():
            t.add_row(e, fmt(v["source_accuracy"], ".4f"), fmt(v["ensemble_accuracy"], ".4f"), *(fmt(v["member_accuracy"][m], ".4f") for m in members))
        console.print(t)
    for line in data["headline"]:
        console.print(f"  ensemble {line}")
    claims = data["claims"]
    console.print("claims, measured here:")
    console.print(f"  A-GD beats D-AG at small eps: {_verdict(claims['agd_beats_dag_at_small_eps'])}")
    console.print(f"  ensemble beats every member (A-GD vs PGD): {_verdict(claims['ensemble_beats_members'])}")
    console.print(f"  ensemble beats every member (strongest attack): {_verdict(claims['ensemble_beats_members_worst_case'])}")
    console.print(f"  ensemble beats every member (black-box): {_verdict(claims['ensemble_beats_members_black_box'])}")
    if data.get("domination"):
        d = data["domination"]
        console.print("gradient domination, share of pixels equal to each member's sign: "
                      + "; ".join(f"{r}: " + ", ".join(f"{m} {v:.2f}" for m, v in s.items()) for r, s in d["share_equal_sign"].items()))
    console.print(f"wrote {out_dir / 'evaluation.json'} and {len(data['plots'])} plots in {data['seconds']:.1f} s")
