"""Batched multi-source PGD (stacked weights, torch.func vmap) against the same sources one after another.

Run from the repository root (not collected by pytest):

    .venv/bin/python benchmarks/batched_sources.py --sources 4 --images 512 --steps 10 --rounds 2

Sources: K smallcnn fp models, seeds 0..K-1 (the zoo of benchmarks/zoo_scale.py, trained once
into runs/bench/zoo_scale/models, one epoch on 2000 images; not timed). PGD eps 8/255, alpha
0.01, STEPS steps, random start seed 0, on the first IMAGES test images in batches of 64 and
256, CPU. Sequential: trendcli.attacks.pgd.PGD on each source in turn; batched:
trendcli.attacks.batched.batched_pgd on all K at once. Rows interleaved over --rounds, a cell
is the best round. Numerics: the largest |difference| between the two adversarial images,
the share of pixels that differ, and the TM (K x K, eq. 1, each source's images through every
source) from each, compared entry by entry.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from trendcli.attacks.batched import batched_pgd
from trendcli.attacks.pgd import PGD
from trendcli.data import load_split
from trendcli.transfer.counts import tm_from_counts, transfer_counts
from trendcli.zoo.files import load_model

sys.path.insert(0, str(Path(__file__).parent))
from zoo_scale import zoo  # noqa: E402  (the same trained models)

EPS, ALPHA = 8 / 255, 0.01


def sequential(models, x, y, batch, steps):
    atk = PGD(eps=EPS, alpha=ALPHA, steps=steps, random_start=True, seed=0)
    return torch.stack([torch.cat([atk(m, x[i : i + batch], y[i : i + batch]) for i in range(0, len(x), batch)])
                        for m in models])


def batched(models, x, y, batch, steps):
    parts = [batched_pgd(models, x[i : i + batch], y[i : i + batch], eps=EPS, alpha=ALPHA, steps=steps, seed=0)
             for i in range(0, len(x), batch)]
    return torch.cat(parts, dim=1)


@torch.inference_mode()
def tm(models, x, y, adv) -> np.ndarray:
    """TM[s, t] over K sources: source s's images through target t (diagonal 1 where defined)."""
    clean = [m(x).argmax(1).numpy() for m in models]
    k = len(models)
    n_g, n_t = np.zeros((k, k), np.int64), np.zeros((k, k), np.int64)
    for s in range(k):
        preds = [m(adv[s]).argmax(1).numpy() for m in models]
        for t in range(k):
            c = transfer_counts(y.numpy(), clean[s], preds[s], clean[t], preds[t])
            n_g[s, t], n_t[s, t] = c.n_g, c.n_t
    return tm_from_counts(n_g, n_t)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=4)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batches", default="64,256")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--root", type=Path, default=Path("runs/bench/zoo_scale"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    dirs = [d for d in zoo(16, args.root / "models", 2000) if d.name.startswith("smallcnn.fp.")][: args.sources]
    models = [load_model(d, "cpu") for d in dirs]
    data, idx = load_split("fashion_mnist", "test")
    x, y = data.batch(idx[: args.images])
    batched(models, x[:8], y[:8], 8, 1)  # one-time costs (vmap tracing setup) hit no row
    load = os.getloadavg()[0]
    print(f"K = {len(models)} smallcnn fp sources ({', '.join(d.name for d in dirs)}), {args.images} images, PGD eps 8/255 "
          f"alpha 0.01 {args.steps} steps, CPU, {args.threads} threads, best of {args.rounds} interleaved rounds; "
          f"1-min load average at the start {load:.1f} on {os.cpu_count()} cores")
    print()
    print("| batch | sequential s | batched s | speedup | bit-identical | max abs diff | pixels differing | max abs TM diff | TM entries differing |")
    print("|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    for batch in (int(b) for b in args.batches.split(",")):
        seq_t, bat_t = [], []
        for _ in range(args.rounds):
            ts, seq = timed(lambda: sequential(models, x, y, batch, args.steps))
            tb, bat = timed(lambda: batched(models, x, y, batch, args.steps))
            seq_t.append(ts)
            bat_t.append(tb)
        diff = (seq - bat).abs()
        tm_s, tm_b = tm(models, x, y, seq), tm(models, x, y, bat)
        dtm = np.abs(np.nan_to_num(tm_s, nan=-1) - np.nan_to_num(tm_b, nan=-1))
        print(f"| {batch} | {min(seq_t):.2f} | {min(bat_t):.2f} | {min(seq_t) / min(bat_t):.2f}x | "
              f"{'yes' if torch.equal(seq, bat) else 'no'} | {diff.max().item():.3g} | {(diff > 0).float().mean().item():.2%} "
              f"| {dtm.max():.4f} | {int((dtm > 0).sum())} of {dtm.size} |")
    print(f"\nbenchmark wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
