"""`trend import`: an existing model (factory + checkpoint, TorchScript, ONNX) as a zoo member."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from trendcli.cli import options as ao
from trendcli.cli.render import console, print_json


def _numbers(text: str | None, option: str) -> list[float] | None:
    return None if text is None else ao.parse_list(text, option)


def _range(text: str) -> tuple[float, float]:
    from trendcli.errors import UsageError

    values = ao.parse_list(text, "--input-range")
    if len(values) != 2:
        raise UsageError(f"--input-range takes LOW,HIGH (e.g. 0,1 or 0,255), got {text!r}")
    return values[0], values[1]


def _factory_args(text: str | None) -> dict:
    from trendcli.errors import UsageError

    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--factory-args must be a JSON object, e.g. '{{\"depth\": 18}}' ({exc.msg})") from None
    if not isinstance(value, dict):
        raise UsageError(f"--factory-args must be a JSON object, got {type(value).__name__}")
    return value


def import_cmd(
    source: Annotated[str, typer.Argument(help="An ONNX file, a TorchScript archive, or a factory package.module:function (with --checkpoint).")],
    out: Annotated[Path, typer.Option("--out", help="Model directory to write (model.json, model.safetensors and/or the source's copy).")],
    dataset: Annotated[str, typer.Option("--dataset", help="The dataset the model classifies (see `trend datasets`).")],
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", help="Weights for a factory: .safetensors, or a torch file read with weights_only=True.")] = None,
    factory_args: Annotated[Optional[str], typer.Option("--factory-args", help="Keyword arguments of the factory as a JSON object.")] = None,
    mean: Annotated[Optional[str], typer.Option("--mean", help="Per-channel mean the model subtracts, in --input-range units (comma-separated).")] = None,
    std: Annotated[Optional[str], typer.Option("--std", help="Per-channel std the model divides by, in --input-range units.")] = None,
    normalizes_itself: Annotated[bool, typer.Option("--normalizes-itself", help="The model normalizes its input itself: no --mean/--std.")] = False,
    input_range: Annotated[str, typer.Option("--input-range", help="Pixel range the model expects, LOW,HIGH (0,1 or 0,255).")] = "0,1",
    class_order: Annotated[Optional[str], typer.Option("--class-order", help="The dataset class (name or index) of each model output, in output order, comma-separated (default: the dataset's order).")] = None,
    black_box: Annotated[bool, typer.Option("--black-box", help="ONNX: run in onnxruntime without trying onnx2torch.")] = False,
    name: Annotated[Optional[str], typer.Option("--name", help="The member's id (default: the file's stem).")] = None,
    limit_test: Annotated[Optional[int], typer.Option("--limit-test", help="Measure accuracy on the first N test images only.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a different model already in --out.")] = False,
    data_dir: ao.DataDir = None,
    as_json: ao.Json = False,
) -> None:
    """Import an existing model as a zoo member; its test accuracy is measured and recorded."""
    from trendcli.zoo.importing import import_model

    model = import_model(
        source, out, dataset=dataset, checkpoint=checkpoint, factory_args=_factory_args(factory_args),
        mean=_numbers(mean, "--mean"), std=_numbers(std, "--std"), normalizes_itself=normalizes_itself,
        input_range=_range(input_range),
        class_order=[c.strip() for c in class_order.split(",")] if class_order else None,
        black_box=black_box, name=name, data_dir=data_dir, limit_test=limit_test, force=force,
    )
    card = {k: v for k, v in model.meta.items() if k != "path"}
    if as_json:
        print_json({**card, "path": str(out)})
        return
    src, acc = card["source"], card["accuracy"]
    box = "" if src["kind"] != "onnx" else (" white-box (onnx2torch)" if src.get("white_box") else
                                            f" black-box (onnxruntime: {src.get('black_box_reason')})")
    lo, hi = acc["test_interval"]
    console.print(
        f"[bold]{card['id']}[/] ({src['kind']}{box}): test accuracy [bold green]{acc['test']:.4f}[/] "
        f"[{lo:.4f}, {hi:.4f}] on {acc['test_n']} images -> {out}"
    )
