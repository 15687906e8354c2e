"""The options several commands share, each defined once with one help text, and number parsing.

Attack parameters default to None: only the options a user gives reach the attack, so every
other parameter keeps the attack's own default (and the store key records the full parameter
set). A command that has its own default for one of them writes it in its signature
(``steps: Steps = 40``); the type and the help text stay these.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from trendcli.errors import UsageError

# -- attack parameters ------------------------------------------------------------------------
AttackName = Annotated[str, typer.Option("--attack", "--method", help="Attack (see `trend plugins`): pgd, fgsm, bim, cw-l2, cw-linf, deepfool, apgd, apgd_t, square, mifgsm.")]
Eps = Annotated[Optional[str], typer.Option("--eps", help="L-inf bound in (0, 1] pixel units; fractions ok (8/255).")]
EpsList = Annotated[Optional[str], typer.Option("--eps", help="L-inf bounds in (0, 1] pixel units, comma-separated; fractions ok (2/255,4/255).")]
Alpha = Annotated[Optional[str], typer.Option("--alpha", help="Step size (PGD, BIM, CW-Linf, ensemble PGD); fractions ok.")]
Steps = Annotated[Optional[int], typer.Option("--steps", help="Iterations (PGD, BIM, CW, ensemble PGD).")]
RandomStart = Annotated[Optional[bool], typer.Option("--random-start/--no-random-start", help="Start PGD at a uniform point of the eps-ball.")]
Restarts = Annotated[Optional[int], typer.Option("--restarts", help="PGD restarts.")]
Seed = Annotated[Optional[int], typer.Option("--seed", help="Seed of the attacks' random starts.")]
Kappa = Annotated[Optional[float], typer.Option("--kappa", help="CW confidence.")]
C = Annotated[Optional[float], typer.Option("--c", help="CW-L2 initial constant c.")]
Lr = Annotated[Optional[float], typer.Option("--lr", help="CW-L2 Adam learning rate.")]
BinarySteps = Annotated[Optional[int], typer.Option("--binary-steps", help="CW-L2 binary-search steps over c.")]
Norm = Annotated[Optional[str], typer.Option("--norm", help="DeepFool norm: l2 or linf.")]
Overshoot = Annotated[Optional[float], typer.Option("--overshoot", help="DeepFool overshoot.")]
MaxIter = Annotated[Optional[int], typer.Option("--max-iter", help="DeepFool iterations.")]
TieBreak = Annotated[Optional[str], typer.Option("--tie-break", help="Ensemble vote tie-break: first, paper or confidence.")]
Decay = Annotated[Optional[float], typer.Option("--decay", help="MI-FGSM momentum decay mu (default 1.0).")]
DiversityProb = Annotated[Optional[float], typer.Option("--diversity-prob", help="MI-FGSM input diversity (DI): probability of the resize-and-pad transform per step.")]
TiKernel = Annotated[Optional[int], typer.Option("--ti-kernel", help="MI-FGSM translation invariance (TI): side of the Gaussian kernel (odd).")]
Di = Annotated[bool, typer.Option("--di", help="Input diversity as Xie et al. 2019: --diversity-prob 0.5.")]
Ti = Annotated[bool, typer.Option("--ti", help="Translation invariance as Dong et al. 2019: --ti-kernel 7.")]

# -- data, store and device --------------------------------------------------------------------
Store = Annotated[Path, typer.Option("--store", help="Adversarial-set store directory (shared by every command).")]
Limit = Annotated[Optional[int], typer.Option("--limit", help="Use only the first N images of the split.")]
BatchSize = Annotated[Optional[int], typer.Option("--batch-size", help="Images per chunk (default: 128, or the authors' batch for per-minibatch Qb).")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")]
Split = Annotated[str, typer.Option("--split", help="test, val or train.")]
DataDir = Annotated[Optional[Path], typer.Option("--data-dir", help="Where the dataset files are (see `trend datasets`).")]
Force = Annotated[bool, typer.Option("--force", help="Regenerate adversarial sets even if cached (also replaces a corrupt file).")]
Layout = Annotated[str, typer.Option("--layout", help="Memory layout of the attacked models: auto (channels_last for conv nets, else contiguous), contiguous or channels_last; part of the set's key.")]
PerImage = Annotated[Optional[bool], typer.Option("--per-image/--per-batch", help="Members' Qb statistics per image (deployed form) or per minibatch (default: as trained).")]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON instead of tables.")]
MemberDirs = Annotated[Optional[list[Path]], typer.Option("--model", help="A member's model directory (repeat; instead of --ensemble), e.g. your own `trend import`.")]


def parse_number(text: str, option: str) -> float:
    """A float, also written as a fraction (``8/255``)."""
    try:
        value = float(Fraction(text.strip())) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        raise UsageError(f"{option} must be a number or a fraction like 8/255, got {text!r}") from None
    if not math.isfinite(value):
        raise UsageError(f"{option} must be finite, got {text!r}")
    return value


def parse_eps(text: str, option: str = "--eps") -> float:
    """An L-inf bound: a number (or fraction) in (0, 1] on the [0, 1] pixel scale."""
    value = parse_number(text, option)
    if not 0 < value <= 1:
        raise UsageError(f"{option} must lie in (0, 1] on the [0, 1] pixel scale (fractions ok: 8/255), got {text!r}")
    return value


def parse_eps_list(text: str, option: str = "--eps") -> list[float]:
    """Comma-separated L-inf bounds, each in (0, 1]."""
    return [parse_eps(t, option) for t in text.split(",") if t.strip()]


def parse_list(text: str, option: str) -> list[float]:
    """Comma-separated numbers (fractions allowed)."""
    return [parse_number(t, option) for t in text.split(",") if t.strip()]


def parse_names(values: list[str] | None) -> list[str]:
    """Repeated options and comma lists alike: ``--candidates a,b --candidates c``."""
    return [n.strip() for v in values or [] for n in v.split(",") if n.strip()]


def attack_params(
    eps: str | None = None, alpha: str | None = None, steps: int | None = None, random_start: bool | None = None,
    restarts: int | None = None, seed: int | None = None, kappa: float | None = None, c: float | None = None,
    lr: float | None = None, binary_steps: int | None = None, norm: str | None = None, overshoot: float | None = None,
    max_iter: int | None = None,
) -> dict[str, Any]:
    """The params dict of the attack options that were given."""
    raw = {
        "eps": parse_eps(eps) if eps is not None else None,
        "alpha": parse_number(alpha, "--alpha") if alpha is not None else None,
        "steps": steps, "random_start": random_start, "restarts": restarts, "seed": seed, "kappa": kappa,
        "c": c, "lr": lr, "binary_steps": binary_steps, "norm": norm, "overshoot": overshoot, "max_iter": max_iter,
    }
    return {k: v for k, v in raw.items() if v is not None}


#: What --di and --ti stand for (the papers' settings).
DI_PROB, TI_KERNEL = 0.5, 7
TRANSFER_OPTIONS = {"decay": "--decay", "diversity_prob": "--diversity-prob / --di", "ti_kernel": "--ti-kernel / --ti"}


def transfer_params(method: str, di: bool = False, ti: bool = False, diversity_prob: float | None = None,
                    ti_kernel: int | None = None, decay: float | None = None) -> dict[str, Any]:
    """The MI-FGSM family's parameters (DI, TI, momentum) that were given, checked against ``method``."""
    if di and diversity_prob is not None:
        raise UsageError("give --di or --diversity-prob, not both")
    if ti and ti_kernel is not None:
        raise UsageError("give --ti or --ti-kernel, not both")
    raw = {"decay": decay, "diversity_prob": DI_PROB if di else diversity_prob, "ti_kernel": TI_KERNEL if ti else ti_kernel}
    params = {k: v for k, v in raw.items() if v is not None}
    if params:
        import dataclasses

        from trendcli.registry import canonical, get_registry

        factory = get_registry().factory("attack", canonical(method))
        fields = {f.name for f in dataclasses.fields(factory)} if dataclasses.is_dataclass(factory) else set()
        bad = next((k for k in params if k not in fields), None)
        if bad:
            raise UsageError(f"{TRANSFER_OPTIONS[bad]} needs an attack with {bad}, e.g. mifgsm; {method!r} has none")
    return params
