"""Built-in rules, registered through the trendcli entry-point group like any plugin."""

from __future__ import annotations

from typing import Any, Callable

from trendcli.hookspecs import hookimpl


@hookimpl
def trend_direction_rules() -> dict[str, Callable[..., Any]]:
    """Ensemble direction rules: dag (D-AG), agd (A-GD), ugd (U-GD), empir, eadg."""
    from trendcli.rules.directions import RULES

    return dict(RULES)
