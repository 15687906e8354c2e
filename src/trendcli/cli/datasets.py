"""`trend datasets`: each dataset, whether it was found and where (or where we looked)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from trendcli.cli import options as ao
from trendcli.cli.render import console, print_json


def datasets_cmd(
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Also look here.")] = None,
    as_json: ao.Json = False,
) -> None:
    """Show every registered dataset and where its files are."""
    from rich.table import Table

    from trendcli.data import describe_datasets

    rows = describe_datasets(data_dir)
    if as_json:
        print_json(rows)
        return
    table = Table(title="datasets")
    for col in ("name", "shape", "classes", "found"):
        table.add_column(col, no_wrap=True)
    table.add_column("where", overflow="fold")
    for r in rows:
        where = r["location"] or "looked in: " + "; ".join(r["searched"])
        if not r["found"] and r["hint"]:
            where += f"\n{r['hint']}"
        table.add_row(r["name"], "x".join(map(str, r["shape"])), str(r["classes"]), "yes" if r["found"] else "no", where)
    console.print(table)
