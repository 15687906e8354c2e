"""Everything the commands print: the consoles, tables, JSON and the rich progress display.

When stdout is not a terminal (a pipe, a file) the console has no width limit, so tables and
long lines reach the reader whole instead of being cut at 80 columns with an ellipsis.
"""

from __future__ import annotations

import json
import sys
from typing import Any

#: Width of a console that is not a terminal: wide enough that nothing is wrapped or truncated.
PIPE_WIDTH = 10_000


class _LazyConsole:
    """A rich Console made on first use, so that `trend --help` does not import rich's console."""

    def __init__(self, stderr: bool):
        self._stderr = stderr
        self._console: Any = None

    def resolve(self) -> Any:
        """The rich Console itself (made now if not yet)."""
        if self._console is None:
            from rich.console import Console

            stream = sys.stderr if self._stderr else sys.stdout
            self._console = Console(stderr=self._stderr, width=None if stream.isatty() else PIPE_WIDTH)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.resolve(), name)


console: Any = _LazyConsole(stderr=False)
err_console: Any = _LazyConsole(stderr=True)


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (paths and other objects as strings)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def fmt(value: float | None, spec: str = ".3f") -> str:
    """A number for a table cell: ``n/a`` for None and NaN."""
    return "n/a" if value is None or value != value else format(value, spec)


class RichProgress:
    """Renders the library's progress events with rich, on stderr."""

    def __init__(self, quiet: bool = False):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.quiet = quiet
        self._started = False
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console.resolve(),
            transient=False,
            disable=quiet,
        )

    def __enter__(self) -> "RichProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._started:
            self._bar.stop()

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
