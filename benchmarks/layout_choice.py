"""Which memory layout attacks the built-in models fastest: the figures behind layout="auto".

Run from the repository root (not collected by pytest):

    .venv/bin/python benchmarks/layout_choice.py

For each architecture (smallcnn on 1 x 28 x 28, vgg11 on 3 x 32 x 32; FP zoo members with
random weights: speed does not depend on them) and batch size (64, 128, 256), trendcli's PGD
(``--steps`` steps, random start) runs in the default (contiguous) layout and in
``channels_last``. The two layouts take turns within every round, so load from other processes
falls on both alike; after one warm-up round, a cell is batch / the best (shortest) time per
batch over ``--rounds`` rounds, with batch / the median beside it. The best time is the one
that load from other processes can only lengthen, so "faster" is decided by it. The script only measures: the library's rule for layout="auto"
(attacks/base.py, ``auto_layout``) is fixed in code from a run of it, never timed at run time.

Measured 2026-12-01 on the shared 2-core helper machine (1-minute load average 5-8 from other
jobs throughout), torch 2.14.1, images/s best (median):

    --archs smallcnn --rounds 9 --steps 3
    | smallcnn |  64 | contiguous 490 (74)  | channels_last 685 (87)  | 1.40x |
    | smallcnn | 128 | contiguous 109 (47)  | channels_last 124 (60)  | 1.14x |
    | smallcnn | 256 | contiguous 177 (120) | channels_last 398 (128) | 2.24x |
    --archs vgg11 --rounds 3 --steps 2
    | vgg11    |  64 | contiguous 9 (8)     | channels_last 20 (11)   | 2.17x |
    | vgg11    | 128 | contiguous 19 (14)   | channels_last 22 (19)   | 1.12x |
    | vgg11    | 256 | contiguous 22 (14)   | channels_last 27 (17)   | 1.23x |

channels_last was faster in all six cells by best time (and by median). Under that load
single medians swing both ways (two earlier median-only runs had smallcnn at batch 64 at
0.51x and 0.99x, at 256 at 1.22x and 0.87x); the quiet-machine run in the attack-throughput
benchmark had channels_last 1.6x (batch 64) and 1.9x (batch 256) faster for smallcnn.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from trendcli.attacks.base import auto_layout
from trendcli.attacks.pgd import PGD
from trendcli.zoo.files import build_model
from trendcli.zoo.spec import ModelSpec

LAYOUTS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
SHAPES = {"smallcnn": ("fashion_mnist", 1, 28, 10), "vgg11": ("cifar10", 3, 32, 10)}


def member(arch: str) -> torch.nn.Module:
    """An FP zoo member of ``arch`` (random weights) in eval mode."""
    dataset, channels, size, classes = SHAPES[arch]
    spec = ModelSpec(arch=arch, dataset=dataset, in_channels=channels, image_size=size, num_classes=classes,
                     mean=(0.5,) * channels, std=(0.25,) * channels)
    torch.manual_seed(0)
    return build_model(spec).eval()


def batch_seconds(model: torch.nn.Module, attack: PGD, x: torch.Tensor, y: torch.Tensor) -> float:
    """Wall time of one attack call on one batch."""
    t0 = time.perf_counter()
    attack(model, x, y)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--batches", nargs="+", type=int, default=[64, 128, 256])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5, help="PGD steps per attack call")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    attack = PGD(eps=8 / 255, alpha=2 / 255, steps=args.steps, random_start=True)
    rows = []
    for arch in args.archs:
        model = member(arch)
        _, c, s, classes = SHAPES[arch]
        for batch in args.batches:
            g = torch.Generator().manual_seed(batch)
            x, y = torch.rand(batch, c, s, s, generator=g), torch.randint(0, classes, (batch,), generator=g)
            times: dict[str, list[float]] = {name: [] for name in LAYOUTS}
            for round_ in range(args.rounds + 1):  # round 0 warms up kernels and the allocator
                for name, fmt in LAYOUTS.items():
                    model.to(memory_format=fmt)
                    seconds = batch_seconds(model, attack, x.contiguous(memory_format=fmt), y)
                    if round_:
                        times[name].append(seconds)
            best = {name: batch / min(ts) for name, ts in times.items()}
            median = {name: batch / statistics.median(ts) for name, ts in times.items()}
            rows.append((arch, batch, best, median, auto_layout(model)))
        model.to(memory_format=torch.contiguous_format)

    print(f"PGD-{args.steps} images/s, best (median) of {args.rounds} rounds, {args.threads} threads, "
          f"torch {torch.__version__}, CPU")
    print()
    print("| arch | batch | contiguous | channels_last | channels_last / contiguous (best) | faster | auto rule |")
    print("|---|---:|---:|---:|---:|---|---|")
    for arch, batch, best, median, rule in rows:
        cont, cl = best["contiguous"], best["channels_last"]
        faster = "channels_last" if cl > cont else "contiguous"
        print(f"| {arch} | {batch} | {cont:.0f} ({median['contiguous']:.0f}) | {cl:.0f} ({median['channels_last']:.0f}) "
              f"| {cl / cont:.2f}x | {faster} | {rule} |")
    print()
    print(f"total {time.perf_counter() - started:.0f} s; 1-minute load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
