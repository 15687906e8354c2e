"""`trend design`: choose the K models with the lowest mean pairwise TM_sym (TREND)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from trendcli.cli import options as ao
from trendcli.cli.options import parse_names
from trendcli.cli.render import console, print_json


def design_cmd(
    matrix: Annotated[Path, typer.Option("--matrix", help="Transferability matrix JSON (from `trend matrix`).")],
    size: Annotated[int, typer.Option("--size", help="Number of ensemble members K.")],
    require: Annotated[Optional[list[str]], typer.Option("--require", help="A model id that must be a member (repeatable).")] = None,
    candidates: Annotated[Optional[list[str]], typer.Option("--candidates", help="Restrict the pool to these ids (comma list or repeated).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the best ensemble as ensemble JSON here.")] = None,
    top: Annotated[int, typer.Option("--top", help="How many candidate ensembles to show.")] = 5,
    method: Annotated[str, typer.Option("--method", help="auto (exhaustive when C(n,K) <= 20000), exhaustive or greedy.")] = "auto",
    nan_policy: Annotated[str, typer.Option("--nan", help="Undefined TM pairs: worst (count as 1.0) or skip.")] = "worst",
    tie_break: ao.TieBreak = "paper",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the paper tie-break.")] = 0,
    per_image: ao.PerImage = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a finished ensemble file written by trendcli; never files it did not write.")] = False,
    as_json: ao.Json = False,
) -> None:
    """Design a TREND ensemble: the K models with the lowest mean pairwise symmetrized TM."""
    from trendcli.ensemble.selection import run_design

    run = run_design(matrix, size, out, parse_names(require), parse_names(candidates) or None, top=top, method=method,
                     nan_policy=nan_policy, tie_break=tie_break, seed=seed, per_image=per_image, force=force)
    result, written = run.result, run.ensemble
    if as_json:
        print_json({**result.to_dict(), "out": str(written) if written else None})
        return
    from rich.table import Table

    acc = result.clean_accuracy
    table = Table(title=f"TREND candidates, K = {size} ({result.method}: {result.subsets_scored} of {result.subsets_total} subsets scored)")
    table.add_column("rank", justify="right")
    table.add_column("members (design order)", no_wrap=True)
    table.add_column("clean acc.", justify="right")
    table.add_column("mean TM_sym", justify="right")
    table.add_column("undefined pairs", justify="right")
    for i, c in enumerate(result.candidates, start=1):
        score = "n/a" if c.score != c.score else f"{c.score:.4f}"
        accs = "\n".join(f"{acc[m]:.3f}" if m in acc else "n/a" for m in c.members)
        table.add_row(str(i), "\n".join(c.members), accs, score, str(c.undefined_pairs), end_section=True)
    console.print(table)
    if result.required:
        console.print(f"required: {', '.join(result.required)}")
    if written:
        console.print(f"ensemble [bold]{' + '.join(result.best.members)}[/] -> {written}")
