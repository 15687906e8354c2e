"""`trend export-ensemble`: one ONNX graph for an ensemble, with its majority vote."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from trendcli.cli import options as ao
from trendcli.cli.render import RichProgress, console, fmt, print_json


def export_cmd(
    out: Annotated[Path, typer.Option("--out", help="ONNX file to write.")],
    ensemble: Annotated[Optional[Path], typer.Option("--ensemble", help="Ensemble JSON (from `trend design`).")] = None,
    model: ao.MemberDirs = None,
    opset: Annotated[int, typer.Option(help="ONNX opset, 13..20.")] = 17,
    tie_break: Annotated[
        Optional[str],
        typer.Option("--tie-break", help="first or confidence (default: the ensemble's own policy, first for --model).")
    ] = None,
    infer_limit: Annotated[Optional[int], typer.Option("--infer-limit", help="Images of the test split the dataset check runs on (default: all).")] = None,
    data_dir: ao.DataDir = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a finished ONNX ensemble written by trendcli; never files it did not write.")] = False,
    as_json: ao.Json = False,
) -> None:
    """Export an ensemble (members' per-image input quantization, networks, vote) to one ONNX file."""
    from trendcli.errors import UsageError
    from trendcli.deploy.export import run_export
    from trendcli.deploy.runtime import read_metadata

    if (ensemble is None) == (not model):
        raise UsageError("give either --ensemble E.json or one --model DIR per member")
    with RichProgress(quiet=as_json) as progress:
        run = run_export(ensemble if ensemble is not None else list(model or []), out, opset=opset, tie_break=tie_break,
                         infer_limit=infer_limit, data_dir=data_dir, progress=progress, force=force)
    path, meta = run.path, read_metadata(run.path)
    if as_json:
        print_json({"path": str(path), "bytes": path.stat().st_size, **meta, "check": run.check,
                    "files": {k: str(v) for k, v in run.files.items()}})
        return
    ids = ", ".join(f"{m['id']} ({m['input_quant']}-w{m['weight_bits']}-a{m['act_bits']})" for m in meta["members"])
    console.print(
        f"wrote [bold]{path}[/] ({path.stat().st_size / 1024:.0f} KiB, opset {meta['opset']}): "
        f"{len(meta['members'])} members {ids}; tie-break [bold]{meta['tie_break']}[/]; "
        f"input {meta['input_shape']} in [0, 1], per-image input quantization"
    )
    check = run.check
    console.print(f"onnxruntime check: accuracy [bold]{fmt(check['accuracy'], '.4f')}[/] on {check['n']} {check['split']} "
                  f"images ({check['provider']}); wrote {run.files['infer']}")
