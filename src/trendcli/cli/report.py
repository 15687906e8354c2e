"""`trend report`: one static HTML page for a study run, with its findings beside the paper's."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from trendcli.cli import options as ao
from trendcli.cli.render import console, print_json


def report_cmd(
    run_dir: Annotated[Path, typer.Argument(help="Run directory of a study (what `trend run` wrote).")],
    out: Annotated[Optional[Path], typer.Option("--out", help="Directory for index.html, findings.md and findings.json (default: RUN_DIR/report).")] = None,
    readme: Annotated[Optional[Path], typer.Option("--readme", help="Also replace the findings table between the <!-- findings:start --> and <!-- findings:end --> lines of this file.")] = None,
    as_json: ao.Json = False,
) -> None:
    """Write a self-contained HTML report of a run, with a findings table against the paper's claims."""
    from trendcli.cli.outputs import check_report_out
    from trendcli.report.html import write_report

    check_report_out(out if out is not None else run_dir / "report")
    report = write_report(run_dir, out, readme)
    if as_json:
        print_json(report.summary())
        return
    from trendcli.report.findings import evidence

    colour = {"holds": "green", "does not hold": "red", "inconclusive": "yellow", "not measured": "dim"}
    for f in report.findings:
        ev = evidence(f)
        console.print(f"[{colour[f.verdict]}]{f.verdict:>13}[/]  {f.claim}  [dim]({ev['test']}; p {ev['p']}; "
                      f"effect {ev['effect']}; n {ev['n']})[/]")
    console.print(f"wrote [bold]{report.index}[/], {report.findings_md.name}, {report.findings_json.name}")
    if report.readme is not None:
        console.print(f"{report.readme}: findings table {'updated' if report.readme_changed else 'already up to date'}")
