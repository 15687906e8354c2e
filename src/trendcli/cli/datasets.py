"""`trend datasets`: each dataset, whether it was found and where (or where we looked)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from trendcli.cli.common import console, print_json


def register(app: typer.Typer) -> None:
    @app.command("datasets")
    def datasets_cmd(
        data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Also look here.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """Show every registered dataset and where its files are."""
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
