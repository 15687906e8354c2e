"""`trend train`: train one zoo member."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from trendcli.cli import options as ao
from trendcli.cli.render import RichProgress, console, print_json


def train_cmd(
    out: Annotated[Path, typer.Option("--out", help="Model directory to write (model.safetensors, model.json, train_log.jsonl).")],
    dataset: Annotated[str, typer.Option(help="Dataset name (see `trend datasets`).")] = "fashion-mnist",
    arch: Annotated[str, typer.Option(help="Architecture name (see `trend plugins`).")] = "smallcnn",
    width: Annotated[float, typer.Option(help="Width multiplier for the CIFAR-style architectures.")] = 1.0,
    input_quant: Annotated[str, typer.Option("--input-quant", help="Input quantizer: fp, q1..q8, ht, ht-fs.")] = "fp",
    per_image: Annotated[bool, typer.Option("--per-image", help="Qb statistics per image instead of per minibatch.")] = False,
    weight_bits: Annotated[int, typer.Option("--weight-bits", help="DoReFa weight bits 1..16; 32 = full precision.")] = 32,
    act_bits: Annotated[int, typer.Option("--act-bits", help="DoReFa activation bits 1..16; 32 = full precision.")] = 32,
    fp_first: Annotated[bool, typer.Option("--fp-first-layer", help="Keep the first conv full precision (authors' VGG choice).")] = False,
    optimizer: Annotated[str, typer.Option(help="sgd or adam.")] = "sgd",
    lr: Annotated[Optional[float], typer.Option(help="Learning rate (default: 0.01 for sgd, 1e-3 for adam).")] = None,
    weight_decay: Annotated[Optional[float], typer.Option("--weight-decay", help="Weight decay (default: 5e-4 for sgd, 0 for adam).")] = None,
    epochs: Annotated[int, typer.Option(help="Epochs; lr x0.1 at 60% and 80% of them.")] = 10,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Minibatch size.")] = 128,
    seed: Annotated[int, typer.Option(help="Seed of initialization and data order.")] = 0,
    split_seed: Annotated[int, typer.Option("--split-seed", help="Seed of the 90/10 train/validation split.")] = 0,
    limit_train: Annotated[Optional[int], typer.Option("--limit-train", help="Train on a seeded random subset of N images.")] = None,
    augment: Annotated[bool, typer.Option(help="Random crop (padding 4, or 2 under 32 px) and horizontal flip.")] = False,
    pretrained: Annotated[bool, typer.Option(help="Start from torchvision weights in the local torch hub cache (tv_* archs).")] = False,
    device: ao.Device = "auto",
    data_dir: ao.DataDir = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a finished model written by trendcli; never files it did not write.")] = False,
    as_json: ao.Json = False,
) -> None:
    """Train a model (architecture x input/weight/activation quantization) and save it."""
    from trendcli.zoo.training import TrainConfig, train

    config = TrainConfig(
        arch=arch, dataset=dataset, width=width, input_quant=input_quant, per_image=per_image,
        weight_bits=weight_bits, act_bits=act_bits, quantize_first=not fp_first, optimizer=optimizer,
        lr=lr, weight_decay=weight_decay, epochs=epochs, batch_size=batch_size, seed=seed,
        split_seed=split_seed, limit_train=limit_train, augment=augment, pretrained=pretrained,
        device=device, data_dir=str(data_dir) if data_dir else None,
    )
    with RichProgress(quiet=as_json) as progress:
        model = train(config, out, progress, force=force)
    card = model.meta
    if as_json:
        print_json(card)
        return
    acc = card["accuracy"]
    console.print(
        f"[bold]{card['id']}[/]: test accuracy [bold green]{acc['test']:.4f}[/] "
        f"(best val {acc['val']:.4f}) in {card['seconds']:.1f} s -> {out}"
    )
