"""The Typer app: every command, in the order `trend --help` lists them.

Each command is a module-level function in its own module; the modules import only typer, rich
and the CLI's own options and rendering, and the library inside the command, so `trend --help`
never imports torch.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import typer

from trendcli.cli import attack, audit, datasets, design, evaluate, export, import_, infer, matrix, plugins, report, run, sweep, train

#: (command name, function, what an interrupted run keeps), in `trend --help` order.
COMMANDS: list[tuple[str, Callable[..., None], str]] = [
    ("train", train.train_cmd, "finished epochs"),
    ("attack", attack.attack_cmd, "finished attack chunks"),
    ("sweep", sweep.sweep_cmd, "finished attack chunks"),
    ("matrix", matrix.matrix_cmd, "finished attack chunks"),
    ("design", design.design_cmd, ""),
    ("evaluate", evaluate.evaluate_cmd, "finished attack chunks"),
    ("export-ensemble", export.export_cmd, ""),
    ("infer", infer.infer_cmd, ""),
    ("import", import_.import_cmd, ""),
    ("audit", audit.audit_cmd, "finished attack chunks"),
    ("run", run.run_cmd, "finished study tasks and attack chunks"),
    ("report", report.report_cmd, ""),
    ("plugins", plugins.plugins_cmd, ""),
    ("datasets", datasets.datasets_cmd, ""),
]

#: command name -> what an interrupted run keeps ("" when nothing partial is kept).
KEPT: dict[str, str] = {name: kept for name, _, kept in COMMANDS}


class Interrupted(BaseException):
    """Ctrl-C inside a command. Typer turns KeyboardInterrupt into a plain exit code 130; this
    passes through it, so `main()` can say what was kept and how to resume."""


def _interruptible(command: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except KeyboardInterrupt:
            raise Interrupted() from None

    return wrapper


app = typer.Typer(
    name="trend",
    help="TREND: transferability-based robust ensemble design. Train model zoos, attack them, "
    "measure transferability, design robust ensembles and export them to ONNX.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: rich-rendered help added about 0.17 s to `trend --help`
)
for _name, _command, _ in COMMANDS:
    app.command(_name)(_interruptible(_command))
