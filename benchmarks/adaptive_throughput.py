"""APGD, Square and MI-FGSM throughput: trendcli vs torchattacks, one run, ratio per attack.

Run from the repository root (not collected by pytest):

    .venv/bin/python benchmarks/adaptive_throughput.py

Model: the zoo's smallcnn FP member for Fashion-MNIST, trained for one epoch on the first
5000 training images (Square stops an image once it is fooled, so its speed depends on the
model being a real classifier). Images: the first test images it classifies correctly,
in full batches. Default layout for both libraries. The two implementations of an attack
take turns on each batch (who goes first alternates; one untimed warm-up call each), so that
load from other processes falls on both alike; a rate is images per batch / the median batch
wall time; the ratios are trendcli's speed over torchattacks', from the median wall and the
median process CPU time per batch (the CPU ratio is the steadier under load). Success rates are printed beside, as a parity
check at the same budget. eps 8/255 throughout.
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
from trendcli.attacks.apgd import APGD
from trendcli.attacks.mifgsm import MIFGSM
from trendcli.attacks.square import Square
from trendcli.data import get_dataset, load_split
from trendcli.zoo.files import build_model
from trendcli.zoo.spec import ModelSpec

EPS = 8 / 255


def trained_smallcnn(seed: int = 0, n_train: int = 5000) -> torch.nn.Module:
    """A Fashion-MNIST smallcnn zoo member, one epoch of Adam (lr 3e-3, batch 100), in eval mode."""
    info = get_dataset("fashion_mnist").info
    spec = ModelSpec(
        arch="smallcnn", dataset="fashion_mnist", in_channels=info.channels, image_size=info.image_size,
        num_classes=info.num_classes, mean=info.mean, std=info.std,
    )
    torch.manual_seed(seed)
    model = build_model(spec)
    data, idx = load_split("fashion_mnist", "train")
    x, y = data.batch(idx[:n_train])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for part in torch.randperm(len(x), generator=torch.Generator().manual_seed(seed)).split(100):
        opt.zero_grad()
        F.cross_entropy(model(x[part]), y[part]).backward()
        opt.step()
    return model.eval()


def batch_seconds(run: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], xb: torch.Tensor, yb: torch.Tensor):
    """Wall and CPU time of ``run`` on one batch, and its output."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = run(xb, yb)
    return time.perf_counter() - t0, time.process_time() - c0, out


def measure(runs: dict, x: torch.Tensor, y: torch.Tensor, batches: list[slice], rounds: int, model) -> dict:
    """Per side: median wall and CPU seconds per batch, and the share of images fooled (first round)."""
    for run in runs.values():  # warm-up: kernels, allocator, torchattacks' device probe
        run(x[batches[0]], y[batches[0]])
    wall: dict[str, list[float]] = {side: [] for side in runs}
    cpu: dict[str, list[float]] = {side: [] for side in runs}
    fooled = dict.fromkeys(runs, 0)
    for r in range(rounds):
        for b, part in enumerate(batches):
            order = list(runs) if (r + b) % 2 == 0 else list(runs)[::-1]  # alternate who goes first
            for side in order:
                w, c, adv = batch_seconds(runs[side], x[part], y[part])
                wall[side].append(w)
                cpu[side].append(c)
                if r == 0:
                    with torch.no_grad():
                        fooled[side] += int((model(adv).argmax(1) != y[part]).sum())
    n = sum(p.stop - p.start for p in batches)
    return {side: (statistics.median(wall[side]), statistics.median(cpu[side]), fooled[side] / n) for side in runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1, help="passes over the images per attack")
    parser.add_argument("--apgd-iter", type=int, default=100)
    parser.add_argument("--square-queries", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started, load_before = time.perf_counter(), os.getloadavg()[0]

    model = trained_smallcnn()
    data, idx = load_split("fashion_mnist", "test")
    x, y = data.batch(idx[: 4 * args.images])
    with torch.no_grad():
        ok = model(x).argmax(1) == y
    x, y = x[ok][: args.images], y[ok][: args.images]
    batches = [slice(i, i + args.batch) for i in range(0, len(x) - args.batch + 1, args.batch)]

    steps = 10
    pairs = {
        f"APGD-CE, {args.apgd_iter} iterations": (
            APGD(eps=EPS, n_iter=args.apgd_iter),
            torchattacks.APGD(model, eps=EPS, steps=args.apgd_iter, seed=0),
        ),
        f"Square, {args.square_queries} queries": (
            Square(eps=EPS, n_queries=args.square_queries),
            torchattacks.Square(model, eps=EPS, n_queries=args.square_queries, seed=0),
        ),
        f"MI-FGSM, {steps} steps": (
            MIFGSM(eps=EPS, steps=steps),
            torchattacks.MIFGSM(model, eps=EPS, alpha=EPS / steps, steps=steps, decay=1.0),
        ),
        f"DI-MI-FGSM (p 0.5), {steps} steps": (
            MIFGSM(eps=EPS, steps=steps, diversity_prob=0.5),
            torchattacks.DIFGSM(model, eps=EPS, alpha=EPS / steps, steps=steps, decay=1.0, diversity_prob=0.5),
        ),
    }
    rows = []
    for label, (ours, theirs) in pairs.items():
        runs = {"ours": lambda a, b, atk=ours: atk(model, a, b), "theirs": theirs}
        rows.append((label, measure(runs, x, y, batches, args.rounds, model)))

    n = len(batches) * args.batch
    print(f"images/s, smallcnn FP (1 epoch), Fashion-MNIST, {n} correctly classified test images in batches of "
          f"{args.batch}, eps 8/255, {args.threads} threads, median batch time, torch {torch.__version__}, "
          f"torchattacks {torchattacks.__version__}")
    print()
    print("| attack | trendcli img/s | torchattacks img/s | ratio (wall) | ratio (CPU) | success trendcli | success torchattacks |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, res in rows:
        (ow, oc, os_), (tw, tc, ts) = res["ours"], res["theirs"]
        b = args.batch
        print(f"| {label} | {b / ow:.1f} | {b / tw:.1f} | {tw / ow:.2f}x | {tc / oc:.2f}x | {os_:.3f} | {ts:.3f} |")
    print()
    print(f"total benchmark time {time.perf_counter() - started:.0f} s; 1-minute load average "
          f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
