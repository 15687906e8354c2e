"""The `trend` command: a thin Typer skin over the library."""

from __future__ import annotations

import sys

import typer
from typer.exceptions import TyperException

from trendcli.cli.commands import register_all
from trendcli.errors import TrendError

app = typer.Typer(
    name="trend",
    help="TREND: transferability-based robust ensemble design. Train model zoos, attack them, "
    "measure transferability, design robust ensembles and export them to ONNX.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
register_all(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: library errors and usage errors become one `error: ...` line."""
    try:
        rv = app(args=argv, standalone_mode=False)
    except TrendError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except typer.Abort:
        print("error: interrupted; rerun the same command to resume where it stopped", file=sys.stderr)
        raise SystemExit(130) from None
    except KeyboardInterrupt:
        print("error: interrupted; rerun the same command to resume where it stopped", file=sys.stderr)
        raise SystemExit(130) from None
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except TyperException as exc:  # usage errors: bad option, bad number, missing option
        message = " ".join(exc.format_message().split())
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(getattr(exc, "exit_code", 2)) from None
    raise SystemExit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
