"""What every command shares: console, rich progress, number parsing, JSON output."""

from __future__ import annotations

import json
import math
import sys
from fractions import Fraction
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from trendcli.errors import UsageError

console = Console()
err_console = Console(stderr=True)


def parse_number(text: str, option: str) -> float:
    """A float, also written as a fraction (``8/255``)."""
    try:
        value = float(Fraction(text.strip())) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        raise UsageError(f"{option} must be a number or a fraction like 8/255, got {text!r}") from None
    if not math.isfinite(value):
        raise UsageError(f"{option} must be finite, got {text!r}")
    return value


def parse_list(text: str, option: str) -> list[float]:
    """Comma-separated numbers (fractions allowed)."""
    return [parse_number(t, option) for t in text.split(",") if t.strip()]


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


class RichProgress:
    """Renders the library's progress events with rich, on stderr."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=False,
            disable=quiet,
        )

    def __enter__(self) -> "RichProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._started:
            self._bar.stop()

    _started = False

    def task(self, description: str, total: float | None) -> Any:
        if not self._started:  # start on the first task, so an early error prints nothing else
            self._started = True
            self._bar.start()
        return self._bar.add_task(description, total=total)

    def advance(self, handle: Any, amount: float = 1, description: str | None = None) -> None:
        if handle is None:
            return
        if description is not None:
            self._bar.update(handle, advance=amount, description=description)
        else:
            self._bar.advance(handle, amount)

    def done(self, handle: Any) -> None:
        if handle is not None:
            task = self._bar.tasks[[t.id for t in self._bar.tasks].index(handle)]
            self._bar.update(handle, completed=task.total or task.completed)

    def log(self, message: str) -> None:
        if not self.quiet:  # library messages are plain text: "[train] x" is not rich markup
            self._bar.console.print(message, markup=False, highlight=False)
