"""`trend plugins`: each plugin distribution with its version and hooks, then every name it provides.

Only the registry's lists are read: names and descriptions come from the hooks, so nothing
behind a lazy reference (torch, the implementations) is imported.
"""

from __future__ import annotations

from typing import Any

from trendcli.cli import options as ao
from trendcli.cli.render import console, print_json


def plugins_cmd(as_json: ao.Json = False) -> None:
    """List plugins (distribution, version, hooks) and every name they provide."""
    from rich.markup import escape
    from rich.table import Table

    from trendcli.registry import KINDS, get_registry

    registry = get_registry()
    entries = registry.entries()
    dists = _distributions(registry.plugins())
    names = [
        {"kind": kind, "name": e.name, "description": e.description, "plugin": e.plugin, "version": e.version}
        for kind in KINDS
        for e in sorted(entries[kind].values(), key=lambda e: e.name)
    ]
    if as_json:
        print_json({"plugins": dists, "names": names})
        return
    table = Table(title="plugin distributions")
    for col in ("distribution", "version", "hooks"):
        table.add_column(col)
    for d in dists:
        table.add_row(d["distribution"], d["version"], ", ".join(d["hooks"]))
    console.print(table)
    listing = Table(title="names by kind")
    for col in ("kind", "name", "description", "provided by"):
        listing.add_column(col)
    for kind in KINDS:
        rows = [r for r in names if r["kind"] == kind]
        for i, r in enumerate(rows):
            listing.add_row(kind if i == 0 else "", r["name"], escape(r["description"]), r["plugin"], end_section=i == len(rows) - 1)
    console.print(listing)


def _distributions(plugins: list[Any]) -> list[dict[str, Any]]:
    """One row per distribution: its version, and the hooks its plugin modules implement."""
    out: dict[str, dict[str, Any]] = {}
    for p in plugins:
        row = out.setdefault(p.dist, {"distribution": p.dist, "version": p.version, "hooks": set()})
        row["hooks"].update(p.hooks)
    return [{**row, "hooks": sorted(row["hooks"])} for _, row in sorted(out.items())]
