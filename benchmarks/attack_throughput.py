"""PGD-40 throughput: trendcli vs torchattacks vs a bare loop; A-GD vs 3 x single-model PGD.

Run from the repository root (not collected by pytest):

    .venv/bin/python benchmarks/attack_throughput.py

Model: the zoo's smallcnn FP member for Fashion-MNIST (normalization + network, random
weights: throughput does not depend on training). Data: the first 1000 Fashion-MNIST test
images (full batches only). Two intra-op threads. The methods take turns on each batch, so
that load from other processes falls on them alike; a cell is batch size / the median batch
time. PGD: eps 8/255, alpha 0.01, 40 steps, random start.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F

import torchattacks
from trendcli.attacks.base import MEMORY_FORMATS, attack_mode, auto_layout
from trendcli.attacks.ensemble import EnsemblePGD
from trendcli.attacks.pgd import PGD
from trendcli.data import get_dataset, load_split
from trendcli.zoo.spec import ModelSpec
from trendcli.zoo.files import build_model

EPS, ALPHA, STEPS = 8 / 255, 0.01, 40
LAYOUTS = {"default": torch.contiguous_format, "channels_last": torch.channels_last}


def smallcnn(seed: int) -> torch.nn.Module:
    """A Fashion-MNIST smallcnn zoo member (FP, random weights) in eval mode."""
    info = get_dataset("fashion_mnist").info
    spec = ModelSpec(
        arch="smallcnn", dataset="fashion_mnist", in_channels=info.channels, image_size=info.image_size,
        num_classes=info.num_classes, mean=info.mean, std=info.std,
    )
    torch.manual_seed(seed)
    return build_model(spec).eval()


def bare_loop(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """40 x (forward + input backward + sign step), nothing else: the practical limit."""
    xa = x.clone().requires_grad_(True)
    for _ in range(STEPS):
        (g,) = torch.autograd.grad(F.cross_entropy(model(xa), y, reduction="sum"), xa)
        with torch.no_grad():
            xa.add_(g.sign_(), alpha=ALPHA)
    return xa.detach()


def batch_seconds(run: Callable[[torch.Tensor, torch.Tensor], object], xb: torch.Tensor, yb: torch.Tensor) -> float:
    """Wall time of ``run`` on one batch."""
    t0 = time.perf_counter()
    run(xb, yb)
    return time.perf_counter() - t0


def full_batches(n: int, batch: int) -> list[slice]:
    """The full batches of ``batch`` images among the first ``n`` (a partial tail is left out)."""
    return [slice(i, i + batch) for i in range(0, n - batch + 1, batch)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1, help="passes over the images per configuration")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started, load_before = time.perf_counter(), os.getloadavg()[0]

    data, idx = load_split("fashion_mnist", "test")
    x, y = data.batch(idx[: args.images])
    model = smallcnn(0)
    pgd = PGD(eps=EPS, alpha=ALPHA, steps=STEPS, random_start=True)
    ta = torchattacks.PGD(model, eps=EPS, alpha=ALPHA, steps=STEPS, random_start=True)

    def bare(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        with attack_mode(model):  # frozen weights: the fastest bare loop
            return bare_loop(model, xb, yb)

    methods = {"bare loop": bare, "trendcli pgd": lambda xb, yb: pgd(model, xb, yb), "torchattacks PGD": ta}
    configs = [(b, name) for b in (64, 256) for name in LAYOUTS]
    times: dict[tuple[int, str, str], list[float]] = {}
    for _ in range(args.rounds):
        for batch, layout in configs:
            model.to(memory_format=LAYOUTS[layout])
            xl = x.contiguous(memory_format=LAYOUTS[layout])
            for part in full_batches(len(x), batch):
                # the methods take turns on each batch, so passing load from other processes
                # falls on all of them alike; a cell is the median batch time
                for method, run in methods.items():
                    times.setdefault((batch, layout, method), []).append(batch_seconds(run, xl[part], y[part]))
    model.to(memory_format=torch.contiguous_format)
    rate = {key: key[0] / statistics.median(ts) for key, ts in times.items()}

    # trendcli's layout="auto" is a fixed rule (benchmarks/layout_choice.py measured it), not a timing
    chosen = {b: MEMORY_FORMATS[auto_layout(model)] for b in (64, 256)}

    # A-GD over K = 3 members vs PGD on each member, at batch 256 in the layout chosen for it
    fmt = chosen[256]
    members = [smallcnn(s).to(memory_format=fmt) for s in (0, 1, 2)]
    xl = x.contiguous(memory_format=fmt)
    agd = EnsemblePGD("agd", eps=EPS, alpha=ALPHA, steps=STEPS, random_start=True)
    agd_t, pgd3_t = [], []
    for part in full_batches(len(x), 256):
        agd_t.append(batch_seconds(lambda xb, yb: agd(members, xb, yb), xl[part], y[part]))
        pgd3_t.append(sum(batch_seconds(lambda xb, yb, m=m: pgd(m, xb, yb), xl[part], y[part]) for m in members))
    agd_s, pgd3_s = statistics.median(agd_t), statistics.median(pgd3_t)

    name_of = {v: k for k, v in LAYOUTS.items()}
    print(f"PGD-40 images/s, smallcnn FP, Fashion-MNIST ({len(x)} test images), {args.threads} threads, "
          f"median batch time over {args.rounds} round(s), torch {torch.__version__}, torchattacks {torchattacks.__version__}")
    print()
    print("| batch | layout | bare loop | trendcli pgd | torchattacks PGD | trendcli / torchattacks | trendcli / bare |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for batch, layout in configs:
        bare_r, ours, theirs = (rate[(batch, layout, m)] for m in methods)
        print(f"| {batch} | {layout} | {bare_r:.0f} | {ours:.0f} | {theirs:.0f} | {ours / theirs:.2f}x | {ours / bare_r:.2f}x |")
    print()
    for batch in (64, 256):
        layout = name_of[chosen[batch]]
        ours = rate[(batch, layout, "trendcli pgd")]
        theirs = rate[(batch, "default", "torchattacks PGD")]
        fastest_bare = max(rate[(batch, lay, "bare loop")] for lay in LAYOUTS)
        print(f"batch {batch}: layout auto -> {layout}; trendcli there {ours:.0f} img/s = "
              f"{ours / theirs:.2f}x torchattacks in its default layout, {ours / fastest_bare:.2f}x the fastest bare loop")
    print()
    print(f"A-GD, K = 3 members, batch 256, {name_of[fmt]}: {agd_s:.2f} s per batch (median of "
          f"{len(agd_t)}); 3 x single-model PGD: {pgd3_s:.2f} s; ratio {agd_s / pgd3_s:.2f}")
    print(f"total benchmark time {time.perf_counter() - started:.0f} s; 1-minute load average "
          f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
