"""`trend attack`: one adversarial set for a model (or an ensemble), cached in the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trendcli.cli import options as ao
from trendcli.cli.render import RichProgress, console, print_json


def attack_cmd(
    model: Annotated[list[Path], typer.Option("--model", help="Model directory; give several for an ensemble attack.")],
    method: Annotated[str, typer.Option("--method", help="pgd, fgsm, bim, cw-l2, cw-linf, deepfool; for ensembles agd, ugd, dag, empir, eadg.")] = "pgd",
    eps: ao.Eps = None, alpha: ao.Alpha = None, steps: ao.Steps = None, random_start: ao.RandomStart = None,
    restarts: ao.Restarts = None, seed: ao.Seed = None, kappa: ao.Kappa = None, c: ao.C = None, lr: ao.Lr = None,
    binary_steps: ao.BinarySteps = None, norm: ao.Norm = None, overshoot: ao.Overshoot = None, max_iter: ao.MaxIter = None,
    tie_break: ao.TieBreak = "first",
    store: ao.Store = Path("runs/adv"), limit: ao.Limit = None, batch_size: ao.BatchSize = None,
    device: ao.Device = "auto", split: ao.Split = "test", data_dir: ao.DataDir = None, force: ao.Force = False,
    layout: ao.Layout = "auto",
    as_json: ao.Json = False,
) -> None:
    """Attack a model (or an ensemble) and cache the adversarial set in the HDF5 store."""
    from trendcli.adversarial.generate import attack

    params = ao.attack_params(eps, alpha, steps, random_start, restarts, seed, kappa, c, lr, binary_steps, norm, overshoot, max_iter)
    with RichProgress(quiet=as_json) as progress:
        result = attack(
            [str(m) for m in model], method, params, split=split, limit=limit, batch_size=batch_size, device=device,
            store=store, force=force, data_dir=data_dir, tie_break=tie_break, layout=layout, progress=progress,
        )
    summary = result.summary()
    if as_json:
        print_json(summary)
        return
    source = " + ".join(str(m) for m in model)
    console.print(f"[bold]{summary['attack']}[/] on {source} ({summary['n']} images)")
    console.print(f"  clean accuracy   {summary['clean_accuracy']:.4f}")
    console.print(f"  attack success   {summary['success_rate']:.4f}")
    console.print(f"  L-inf  mean {summary['mean_linf']:.4f}  max {summary['max_linf']:.4f}   (mean over fooled images)")
    console.print(f"  L2     mean {summary['mean_l2']:.4f}  max {summary['max_l2']:.4f}")
    if result.cached:
        console.print("  [green]cache hit[/]: no attack work done")
    else:
        console.print(f"  time {summary['seconds']:.1f} s, {summary['images_per_s']:.1f} images/s")
    console.print(f"  set  {summary['path']}")
