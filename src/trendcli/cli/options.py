"""Attack options shared by `trend attack`, `trend matrix` and `trend sweep`.

Each option defaults to None: only the options a user gives reach the attack, so every other
parameter keeps the attack's own default (and the store key records the full parameter set).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from trendcli.cli.common import parse_number

Eps = Annotated[Optional[str], typer.Option("--eps", help="L-inf bound in [0,1] pixel units; fractions ok (8/255).")]
Alpha = Annotated[Optional[str], typer.Option("--alpha", help="Step size (PGD/BIM/CW-Linf/ensemble); fractions ok.")]
Steps = Annotated[Optional[int], typer.Option("--steps", help="Iterations (PGD, BIM, CW, ensemble PGD).")]
RandomStart = Annotated[Optional[bool], typer.Option("--random-start/--no-random-start", help="PGD random start.")]
Restarts = Annotated[Optional[int], typer.Option("--restarts", help="PGD restarts.")]
Seed = Annotated[Optional[int], typer.Option("--seed", help="Seed of the random start.")]
Kappa = Annotated[Optional[float], typer.Option("--kappa", help="CW confidence.")]
C = Annotated[Optional[float], typer.Option("--c", help="CW-L2 initial constant c.")]
Lr = Annotated[Optional[float], typer.Option("--lr", help="CW-L2 Adam learning rate.")]
BinarySteps = Annotated[Optional[int], typer.Option("--binary-steps", help="CW-L2 binary-search steps over c.")]
Norm = Annotated[Optional[str], typer.Option("--norm", help="DeepFool norm: l2 or linf.")]
Overshoot = Annotated[Optional[float], typer.Option("--overshoot", help="DeepFool overshoot.")]
MaxIter = Annotated[Optional[int], typer.Option("--max-iter", help="DeepFool iterations.")]

Store = Annotated[Path, typer.Option("--store", help="Adversarial-set store directory (shared by every command).")]
Limit = Annotated[Optional[int], typer.Option("--limit", help="Attack the first N images of the split.")]
BatchSize = Annotated[Optional[int], typer.Option("--batch-size", help="Images per chunk (default: 128, or the authors' batch for per-minibatch Qb).")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")]
Split = Annotated[str, typer.Option("--split", help="test or val.")]
DataDir = Annotated[Optional[Path], typer.Option("--data-dir", help="Where the dataset files are.")]
Force = Annotated[bool, typer.Option("--force", help="Regenerate sets even if cached (also replaces a corrupt file).")]
Layout = Annotated[Optional[str], typer.Option("--layout", help="Memory layout: auto (measured per model), contiguous, channels_last (default: $TREND_LAYOUT or auto).")]


def attack_params(
    eps: str | None = None, alpha: str | None = None, steps: int | None = None, random_start: bool | None = None,
    restarts: int | None = None, seed: int | None = None, kappa: float | None = None, c: float | None = None,
    lr: float | None = None, binary_steps: int | None = None, norm: str | None = None, overshoot: float | None = None,
    max_iter: int | None = None,
) -> dict[str, Any]:
    """The params dict of the options that were given."""
    raw = {
        "eps": parse_number(eps, "--eps") if eps is not None else None,
        "alpha": parse_number(alpha, "--alpha") if alpha is not None else None,
        "steps": steps, "random_start": random_start, "restarts": restarts, "seed": seed, "kappa": kappa,
        "c": c, "lr": lr, "binary_steps": binary_steps, "norm": norm, "overshoot": overshoot, "max_iter": max_iter,
    }
    return {k: v for k, v in raw.items() if v is not None}
