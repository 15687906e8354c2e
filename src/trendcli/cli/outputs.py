"""Output checks of the commands whose library stage replaces its own files without asking
(evaluate, report, sweep): run before any work, they refuse what trendcli did not write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from trendcli.fsio import check_output, writable_dir

#: The files `trend report` writes into its --out directory.
REPORT_FILES = ("index.html", "findings.md", "findings.json")


def _json_with(path: Path, key: str) -> bool:
    try:
        data = json.loads(Path(path).read_bytes().decode("utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and key in data


def _dir_of(out: Path, what: str, marker: str, key: str, own_files: Iterable[str]) -> None:
    """``out`` absent, or a directory trendcli wrote (``marker`` holds ``key``) with only ``own_files``."""
    check_output(out, what, lambda p: (p / marker).is_file() and _json_with(p / marker, key), force=True,
                 directory=True, own_files=own_files)
    writable_dir(out.parent, what)


def check_evaluate_out(out: Path, plot_files: Iterable[str]) -> None:
    """`trend evaluate --out`: evaluation.json and its plots, nothing else."""
    _dir_of(Path(out), "evaluation directory", "evaluation.json", "format", ["evaluation.json", *plot_files])


def check_report_out(out: Path) -> None:
    """`trend report --out`: index.html, findings.md and findings.json, nothing else."""
    _dir_of(Path(out), "report directory", "findings.json", "findings", REPORT_FILES)


def check_sweep_out(prefix: Path) -> None:
    """`trend sweep --out`: PREFIX.json (a sweep) and PREFIX.png beside it."""
    prefix = Path(prefix)
    json_path, png = prefix.with_name(prefix.name + ".json"), prefix.with_name(prefix.name + ".png")
    ours = check_output(json_path, "sweep JSON", lambda p: _json_with(p, "schema"), force=True)
    check_output(png, "sweep plot", lambda _p: ours, force=True)
    writable_dir(json_path.parent, "sweep files")
