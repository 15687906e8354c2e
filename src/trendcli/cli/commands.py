"""CLI commands, one module each; every module has ``register(app)``."""

from __future__ import annotations

import importlib

import typer

#: Modules under trendcli.cli.commands, in the order `trend --help` lists them.
COMMANDS = [
    "train",
    "attack",
    "sweep",
    "matrix",
    "design",
    "evaluate",
    "export",
    "infer",
    "run",
    "report",
    "plugins",
    "datasets",
]


def register_all(app: typer.Typer) -> None:
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"trendcli.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"trendcli.cli.{name}":
                continue  # command not part of this build
            raise
        module.register(app)
