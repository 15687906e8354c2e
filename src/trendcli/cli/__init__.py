"""The `trend` command: a thin Typer skin over the library (the app is in :mod:`trendcli.cli.app`)."""

from __future__ import annotations

import shlex
import sys

import typer
from typer.exceptions import TyperException

from trendcli.errors import TrendError

#: Typer's exit code for a KeyboardInterrupt outside a command body (and ours inside one).
INTERRUPTED = 130


def interrupted_message(argv: list[str]) -> str:
    """The one line Ctrl-C prints: what was kept, and the exact command that resumes."""
    from trendcli.cli.app import KEPT

    command = next((a for a in argv if not a.startswith("-")), "")
    kept = KEPT.get(command, "")
    resume = shlex.join(["trend", *argv])
    if not kept:
        return f"interrupted: nothing partial is kept; rerun with: {resume}"
    return f"interrupted: finished work is kept ({kept}); resume with: {resume}"


def main(argv: list[str] | None = None) -> None:
    """Entry point: library errors and usage errors become one `error: ...` line."""
    from trendcli.cli.app import Interrupted, app

    args = list(sys.argv[1:] if argv is None else argv) or ["--help"]  # `trend` alone: the help
    try:
        rv = app(args=args, prog_name="trend", standalone_mode=False)
    except TrendError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except (Interrupted, KeyboardInterrupt, typer.Abort):
        rv = INTERRUPTED
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except TyperException as exc:  # usage errors: bad option, bad number, missing option
        message = " ".join(exc.format_message().split())
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(getattr(exc, "exit_code", 2)) from None
    if rv == INTERRUPTED:
        print(interrupted_message(args), file=sys.stderr)
    raise SystemExit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
