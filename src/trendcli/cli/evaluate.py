"""`trend evaluate`: clean and adversarial accuracy of an ensemble and of each member."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from trendcli.cli import options as ao
from trendcli.cli.options import parse_number
from trendcli.cli.render import RichProgress, console, fmt, print_json


def _verdict(claim: dict) -> str:
    """A claim's verdict with its test, p-value, effect [95 % interval] and n."""
    from trendcli.stats import fmt_interval, fmt_p

    verdict = claim.get("verdict", "not measured")
    if verdict == "not measured":
        return f"not measured ({claim.get('reason', 'no eps in range')})"
    colour = {"holds": "green", "does not hold": "red"}.get(verdict, "yellow")
    effect = claim.get("effect")
    effect_text = "n/a" if effect is None else f"{effect:+.3f} {fmt_interval(claim.get('interval'), lambda v: f'{v:+.3f}')}"
    return (f"[{colour}]{verdict}[/] ({claim.get('test')}; p {fmt_p(claim.get('p_value'))}; effect {effect_text}; "
            f"n {claim.get('n')})")


def _rate(value: float | None, interval: list | None) -> str:
    """A rate with its Wilson 95 % interval: ``0.8700 [0.838, 0.897]``."""
    from trendcli.stats import fmt_interval

    iv = fmt_interval(interval)
    return fmt(value, ".4f") if iv == "n/a" else f"{fmt(value, '.4f')} {iv}"


def _print_worst_case(worst: dict, masking: dict) -> None:
    """The worst-case table (each target x each attack of the suite, robust accuracy last) and the flags."""
    from rich.table import Table

    from trendcli.report.robustness import worst_case_rows

    head, rows = worst_case_rows(worst)
    table = Table(title=f"worst case at eps {worst['eps']:g} on {worst['n_images']} images: adversarial accuracy "
                        "[95 %] per attack; robust = right clean and after every attack")
    for i, h in enumerate(head):
        table.add_column(h, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for name, reason in (worst.get("not_run") or {}).items():
        console.print(f"  not run: {name} ({reason})")
    claim = worst.get("claim") or {}
    console.print(f"  {claim.get('claim', '')}: {claim.get('verdict', 'not measured')} ({claim.get('this_run', '')})")
    for key, s in (worst.get("claims_survival") or {}).items():
        console.print(f"  {key} under the worst case: {s['text']}")
    flags = [("ensemble", f) for f in masking.get("ensemble") or []]
    flags += [(m, f) for m, fl in (masking.get("members") or {}).items() for f in fl]
    if flags:
        console.print("gradient-masking flags (Carlini et al. 2019):")
        for target, f in flags:
            mark = {True: "[red]FIRED[/]", False: "ok", None: "not measured"}[f["fired"]]
            console.print(f"  {target}: {f['check']}: {mark}; {f['text']}")


def evaluate_cmd(
    ensemble: Annotated[Optional[Path], typer.Option("--ensemble", help="Ensemble JSON (from `trend design`).")] = None,
    model: ao.MemberDirs = None,
    attack: Annotated[Optional[str], typer.Option("--attack", help="Ensemble attacks, comma list: direction rules (agd, ugd, dag, empir, eadg) and adaptive attacks (apgd, apgd_t, square). Default agd,ugd,dag,empir; square when a member is black-box.")] = None,
    member_attack: Annotated[Optional[str], typer.Option("--member-attack", help="The attack on each member alone: pgd (default) or square (default when a member is black-box).")] = None,
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
    protocol: Annotated[str, typer.Option("--protocol", help="standard (the paper's: rules, PGD on each member, transfer) or worst-case (adds, per image, the worst over APGD-CE, APGD-T, Square and transfer, for the ensemble and each member, and the gradient-masking flags).")] = "standard",
    worst_case_eps: Annotated[Optional[str], typer.Option("--worst-case-eps", help="Worst-case protocol: the eps of the suite, one of --eps (default: the one nearest 0.01).")] = None,
    worst_case_limit: Annotated[Optional[int], typer.Option("--worst-case-limit", help="Worst-case protocol: the first N evaluated images (default: all).")] = None,
    apgd_iter: Annotated[int, typer.Option("--apgd-iter", help="Worst-case protocol: APGD and APGD-T iterations per run.")] = 100,
    apgd_targets: Annotated[int, typer.Option("--apgd-targets", help="Worst-case protocol: APGD-T target classes.")] = 9,
    square_queries: Annotated[int, typer.Option("--square-queries", help="Square's query budget per image, wherever Square runs (--attack, --member-attack, the worst-case suite).")] = 1000,
    masking_images: Annotated[int, typer.Option("--masking-images", help="Worst-case protocol: images of the masking probes (large eps, step counts).")] = 100,
    large_eps: Annotated[str, typer.Option("--large-eps", help="Worst-case protocol: the masking probe's large eps.")] = "0.5",
) -> None:
    """Attack the ensemble (white-box ensemble attacks, PGD on each member, optional transfer) and compare."""
    from trendcli.cli.outputs import check_evaluate_out
    from trendcli.ensemble.evaluation import PLOT_FILES, EvalConfig, evaluate
    from trendcli.ensemble.worst_case import WorstCaseConfig

    source, name = _ensemble_source(ensemble, list(model or []))
    config = EvalConfig(
        attacks=None if attack is None else tuple(a.strip() for a in attack.split(",") if a.strip()),
        member_attack=member_attack,
        eps=tuple(ao.parse_eps_list(eps)) if eps else (),
        alpha=parse_number(alpha, "--alpha") if alpha else 0.0,
        steps=steps, random_start=random_start, seed=seed, limit=limit, split=split,
        transfer_from=str(transfer_from) if transfer_from else None, sizes=sizes, domination=domination,
        tie_break=tie_break, per_image=per_image, batch_size=batch_size, device=device, store=str(store),
        data_dir=str(data_dir) if data_dir else None, force=force, protocol=protocol,
        worst_case=WorstCaseConfig(
            eps=parse_number(worst_case_eps, "--worst-case-eps") if worst_case_eps else None, limit=worst_case_limit,
            apgd_iter=apgd_iter, apgd_targets=apgd_targets, square_queries=square_queries,
            masking_images=masking_images, large_eps=parse_number(large_eps, "--large-eps")),
    )
    out_dir = out or Path("runs/eval") / name
    check_evaluate_out(out_dir, PLOT_FILES.values())
    with RichProgress(quiet=as_json) as progress:
        result = evaluate(source, config, out_dir, progress)
    data = result.to_dict()
    if as_json:
        print_json(data)
        return
    _print_evaluation(data, config.split, out_dir)


def _ensemble_source(ensemble: Path | None, members: list[Path]) -> tuple[object, str]:
    """What to evaluate (an ensemble file, or an Ensemble of model directories) and its name."""
    from trendcli.errors import UsageError

    if (ensemble is None) == (not members):
        raise UsageError("pass one of --ensemble FILE and --model DIR (repeated)")
    if ensemble is not None:
        return ensemble, ensemble.stem
    from trendcli.ensemble.members import Ensemble

    ens = Ensemble.from_dirs(members)
    return ens, "+".join(ens.ids)


def _print_evaluation(data: dict, split: str, out_dir: Path) -> None:
    """The evaluation as rich tables: clean accuracy, the adversarial table, transfer, claims."""
    from rich.table import Table

    from trendcli.transfer.heatmap import short_labels

    members = data["ensemble"]["members"]
    short = dict(zip(members, short_labels(members)))
    clean = data["clean_accuracy"]
    black = data["ensemble"].get("black_box") or []
    console.print(f"[bold]{' + '.join(members)}[/]" + (f" ({', '.join(black)} black-box)" if black else "")
                  + f" on {data['n_images']} {split} images "
                  f"(tie-break {data['ensemble']['tie_break']}): clean accuracy ensemble "
                  f"[bold]{_rate(clean['ensemble'], clean.get('interval'))}[/], "
                  + ", ".join(f"{m} {_rate(a, (clean.get('member_intervals') or {}).get(m))}" for m, a in clean["members"].items()))
    member_attack = data["settings"].get("member_attack") or "pgd"
    table = Table(title="adversarial accuracy [95 % interval]: ensemble under each ensemble attack, each member under "
                        f"{member_attack} on itself; ratio = ensemble / member")
    table.add_column("attack")
    table.add_column("eps", justify="right")
    table.add_column("ensemble", justify="right")
    for m in members:
        table.add_column(f"{short[m]} {member_attack}", justify="right")
        table.add_column("ratio", justify="right")
    for row in data["table"]:
        cells = [row["attack"], f"{row['eps']:g}", _rate(row["ensemble_accuracy"], row.get("ensemble_accuracy_interval"))]
        for m in members:
            r = row["ratio"][m]
            iv = (row.get("member_pgd_accuracy_interval") or {}).get(m)
            cells += [_rate(row["member_pgd_accuracy"][m], iv), "n/a" if r is None else f"{r:.2f}x"]
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
    for step, why in (data.get("not_run") or {}).items():
        console.print(f"  not run: {step} ({why})")
    claims = data["claims"]
    console.print("claims, measured here:")
    console.print(f"  A-GD beats D-AG at small eps: {_verdict(claims['agd_beats_dag_at_small_eps'])}")
    console.print(f"  ensemble beats every member (A-GD vs PGD): {_verdict(claims['ensemble_beats_members'])}")
    console.print(f"  ensemble beats every member (strongest attack): {_verdict(claims['ensemble_beats_members_worst_case'])}")
    console.print(f"  ensemble beats every member (black-box): {_verdict(claims['ensemble_beats_members_black_box'])}")
    if data.get("worst_case"):
        _print_worst_case(data["worst_case"], data.get("masking") or {})
    if data.get("domination"):
        d = data["domination"]
        console.print("gradient domination, share of pixels equal to each member's sign: "
                      + "; ".join(f"{r}: " + ", ".join(f"{m} {v:.2f}" for m, v in s.items()) for r, s in d["share_equal_sign"].items()))
    console.print(f"wrote {out_dir / 'evaluation.json'} and {len(data['plots'])} plots in {data['seconds']:.1f} s")
