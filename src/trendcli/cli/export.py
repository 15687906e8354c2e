"""`trend export-ensemble`: one ONNX graph for an ensemble, with its majority vote."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from trendcli.cli.common import console, print_json


def register(app: typer.Typer) -> None:
    @app.command("export-ensemble")
    def export_cmd(
        out: Annotated[Path, typer.Option("--out", help="ONNX file to write.")],
        ensemble: Annotated[Optional[Path], typer.Option("--ensemble", help="Ensemble JSON (from `trend design`).")] = None,
        model: Annotated[
            Optional[List[Path]], typer.Option("--model", help="A member's model directory (repeat; instead of --ensemble).")
        ] = None,
        opset: Annotated[int, typer.Option(help="ONNX opset, 13..20.")] = 17,
        tie_break: Annotated[
            Optional[str],
            typer.Option("--tie-break", help="first or confidence (default: the ensemble's own policy, first for --model).")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the file's metadata as JSON.")] = False,
    ) -> None:
        """Export an ensemble (members' per-image input quantization, networks, vote) to one ONNX file."""
        from trendcli.errors import UsageError
        from trendcli.deploy.export import export_ensemble
        from trendcli.deploy.runtime import read_metadata

        if (ensemble is None) == (not model):
            raise UsageError("give either --ensemble E.json or one --model DIR per member")
        path = export_ensemble(ensemble if ensemble is not None else list(model or []), out, opset=opset, tie_break=tie_break)
        meta = read_metadata(path)
        if as_json:
            print_json({"path": str(path), "bytes": path.stat().st_size, **meta})
            return
        ids = ", ".join(f"{m['id']} ({m['input_quant']}-w{m['weight_bits']}-a{m['act_bits']})" for m in meta["members"])
        console.print(
            f"wrote [bold]{path}[/] ({path.stat().st_size / 1024:.0f} KiB, opset {meta['opset']}): "
            f"{len(meta['members'])} members {ids}; tie-break [bold]{meta['tie_break']}[/]; "
            f"input {meta['input_shape']} in [0, 1], per-image input quantization"
        )
