"""Progress reporting without printing: the library calls a sink, the CLI renders it."""

from __future__ import annotations

from typing import Any, Protocol


class Progress(Protocol):
    """What long-running library functions report to."""

    def task(self, description: str, total: float | None) -> Any:
        """Start a task; returns a handle."""
        ...

    def advance(self, handle: Any, amount: float = 1, description: str | None = None) -> None: ...

    def done(self, handle: Any) -> None: ...

    def log(self, message: str) -> None: ...


class NullProgress:
    """The default: report nothing."""

    def task(self, description: str, total: float | None) -> None:
        return None

    def advance(self, handle: Any, amount: float = 1, description: str | None = None) -> None:
        pass

    def done(self, handle: Any) -> None:
        pass

    def log(self, message: str) -> None:
        pass
