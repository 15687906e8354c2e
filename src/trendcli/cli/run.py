"""`trend run`: run a whole study (train -> attack -> matrix -> design -> evaluate -> export -> report)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from trendcli.cli import options as ao
from trendcli.cli.render import RichProgress, console, print_json


def run_cmd(
    study_file: Annotated[Path, typer.Argument(help="The study file (TOML).", metavar="STUDY.toml")],
    only: Annotated[Optional[str], typer.Option("--only", help="Run only this stage: train, attack, matrix, design, evaluate, export, report.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the tasks that would run; run nothing.")] = False,
    executor: Annotated[str, typer.Option("--executor", help="local or ray.")] = "local",
    address: Annotated[Optional[str], typer.Option("--address", help="Ray cluster address (default: start a local Ray).")] = None,
    run_dir: Annotated[Optional[Path], typer.Option("--run-dir", help="Override the study's run directory.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Rerun every task (of --only's stage) and regenerate its adversarial sets; replaces only files trendcli wrote.")] = False,
    as_json: ao.Json = False,
) -> None:
    """Run a study: skip finished tasks, run the rest, resume after an interruption."""
    from rich.table import Table

    from trendcli.study import load_study, run_study

    study = load_study(study_file, run_dir=run_dir)
    with RichProgress(quiet=as_json) as progress:
        result = run_study(study, only=only, dry_run=dry_run, executor=executor, address=address, progress=progress,
                           force=force)
    if as_json:
        print_json({"run_dir": str(result.run_dir), "tasks": result.tasks})
        return
    if dry_run:
        table = Table(title=f"study {study.name}: plan")
        for col in ("task", "status"):
            table.add_column(col)
        for t in result.tasks:
            table.add_row(t["id"], t["status"])
        console.print(table)
        return
    console.print(f"[bold]{study.name}[/]: ran {len(result.ran)} task(s), {len(result.skipped)} already done -> {result.run_dir}")
    if result.report:
        console.print(f"report: [bold]{result.report}[/]")
