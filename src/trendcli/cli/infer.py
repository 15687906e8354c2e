"""`trend infer`: run an exported ensemble on onnxruntime (a dataset split, or image files)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from trendcli.cli import options as ao
from trendcli.cli.render import RichProgress, console, err_console, print_json


def infer_cmd(
    onnx: Annotated[Path, typer.Option("--onnx", help="Ensemble ONNX file (from `trend export-ensemble`).")],
    dataset: Annotated[Optional[str], typer.Option(help="Evaluate on this dataset's split (the file's own dataset).")] = None,
    images: Annotated[
        Optional[List[Path]], typer.Option("--images", help="Image files to classify (PNG/JPEG; more may follow as arguments).")
    ] = None,
    more_images: Annotated[Optional[List[Path]], typer.Argument(help="More image files.", show_default=False)] = None,
    split: Annotated[str, typer.Option(help="test, val or train (with --dataset).")] = "test",
    limit: Annotated[Optional[int], typer.Option(help="Only the first N images of the split.")] = None,
    provider: Annotated[str, typer.Option(help="auto (TensorRT > CUDA > CPU), cpu, cuda or tensorrt.")] = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per onnxruntime call.")] = 256,
    threads: Annotated[Optional[int], typer.Option(help="onnxruntime intra-op threads (default: its own).")] = None,
    data_dir: ao.DataDir = None,
    as_json: ao.Json = False,
) -> None:
    """Accuracy, member agreement and speed on a dataset, or JSON lines of predictions for image files."""
    from trendcli.errors import UsageError
    from rich.markup import escape

    from trendcli.deploy.runtime import OnnxEnsemble, predict_files, run_dataset

    files = list(images or []) + list(more_images or [])
    if (dataset is None) == (not files):
        raise UsageError("give either --dataset NAME or --images PATH... (image files)")
    ens = OnnxEnsemble(onnx, provider=provider, threads=threads)
    for message in ens.messages:
        err_console.print(f"[yellow]note:[/] {escape(message)}")
    if files:
        for row in predict_files(ens, files, batch_size=batch_size):
            sys.stdout.write(json.dumps(row) + "\n")
        return
    with RichProgress(quiet=as_json) as progress:
        result = run_dataset(ens, dataset, split=split, limit=limit, batch_size=batch_size, data_dir=data_dir, progress=progress)
    summary = result.summary()
    if as_json:
        print_json(summary)
        return
    from rich.table import Table

    table = Table(title=f"{onnx.name} on {summary['dataset']} {summary['split']} ({summary['n']} images)")
    table.add_column("member")
    table.add_column("accuracy", justify="right")
    table.add_column("agreement with the others", justify="right")
    pairwise = summary["agreement"]["pairwise"]
    for member, acc in summary["member_accuracy"].items():
        others = [v for k, v in pairwise[member].items() if k != member]
        table.add_row(member, f"{acc:.4f}", f"{sum(others) / len(others):.4f}" if others else "-")
    table.add_row(f"[bold]ensemble ({ens.tie_break})[/]", f"[bold]{summary['accuracy']:.4f}[/]", "")
    console.print(table)
    lat = summary["latency_ms"]
    console.print(
        f"all members agree on {summary['agreement']['unanimous']:.2%} of images; "
        f"{summary['images_per_s']:.0f} images/s on {summary['provider']}, batch {summary['batch_size']}: "
        f"latency p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms per batch"
    )
