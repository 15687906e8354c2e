"""`trend plugins`: every registered name by kind, with the package that provides it."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from trendcli.registry import KINDS, get_registry
from trendcli.cli.common import console, print_json


def register(app: typer.Typer) -> None:
    @app.command("plugins")
    def plugins_cmd(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
        """List architectures, quantizers, datasets, attacks and direction rules by plugin."""
        entries = get_registry().entries()
        rows = [
            {"kind": kind, "name": e.name, "plugin": e.plugin, "version": e.version}
            for kind in KINDS
            for e in sorted(entries[kind].values(), key=lambda e: e.name)
        ]
        if as_json:
            print_json(rows)
            return
        table = Table(title="trendcli plugins")
        for col in ("kind", "name", "provided by"):
            table.add_column(col)
        for kind in KINDS:
            by_plugin: dict[str, list[str]] = {}
            for e in entries[kind].values():
                by_plugin.setdefault(f"{e.plugin} {e.version}".strip(), []).append(e.name)
            for plugin, names in sorted(by_plugin.items()):
                table.add_row(kind, ", ".join(sorted(names)), plugin)
        console.print(table)
