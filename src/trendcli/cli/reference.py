"""docs/cli.md, generated from the Typer app: every command's help, usage and options.

Regenerate with ``python -m trendcli.cli.reference`` (writes docs/cli.md; ``--check`` only
compares). tests/cli/test_reference.py fails when the file is stale.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

#: The file this module writes: docs/cli.md of the source checkout (src/trendcli/cli/ -> repo root).
DOC = Path(__file__).resolve().parents[3] / "docs" / "cli.md"
REGENERATE = "python -m trendcli.cli.reference"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_reference() -> str:
    """The markdown reference of `trend`, from the click command tree Typer builds."""
    import typer

    from trendcli.cli.app import app

    group = typer.main.get_command(app)
    root = group.context_class(group, info_name="trend")
    lines = [
        "# `trend` command reference",
        "",
        f"Generated from the CLI by `{REGENERATE}`; do not edit by hand (a test fails when it is stale).",
        "",
        group.help or "",
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    commands = [(name, group.get_command(root, name)) for name in group.list_commands(root)]
    lines += [f"| [`trend {name}`](#trend-{name}) | {_cell(cmd.get_short_help_str(limit=200))} |" for name, cmd in commands]
    for name, cmd in commands:
        ctx = cmd.context_class(cmd, info_name=name, parent=root)
        lines += ["", f"## trend {name}", "", cmd.help or "", "", "```", cmd.get_usage(ctx), "```", ""]
        lines += ["| option | description |", "|---|---|"]
        for param in cmd.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None and record[0] != "--help":
                lines.append(f"| `{_cell(record[0])}` | {_cell(record[1])} |")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write docs/cli.md; with ``--check`` only compare, and exit 1 if it is stale."""
    args = sys.argv[1:] if argv is None else argv
    text = render_reference()
    if "--check" in args:
        current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
        if current != text:
            print(f"{DOC} is stale; regenerate it with: {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    DOC.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".cli.md.", suffix=".tmp", dir=DOC.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, DOC)  # written whole or not at all
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
