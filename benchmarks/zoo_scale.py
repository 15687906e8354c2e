"""How matrix cost grows with the zoo: N = 4, 8, 16 Fashion-MNIST models; `trend design` at N = 16 and 60.

Run from the repository root (not collected by pytest):

    .venv/bin/python benchmarks/zoo_scale.py --sizes 4,8,16 --images 100 --steps 10

Models: smallcnn with input quantizers fp, q1, ht, q2, q4 over seeds, and one vgg11 (fp), in
ZOO order (the vgg is the fourth, so every N holds it); each trained for one epoch on
--limit-train images (default 2000) into runs/bench/zoo_scale/models, once (not timed). For
each N, in a fresh store: cold (N attacks, N^2 evaluations), warm store (sets known,
prediction cache emptied: N^2 evaluations) and warm (new matrix over known models and sets:
prediction cache hits only); wall and this process's CPU seconds, and CPU seconds per ordered pair. PGD eps 8/255, alpha 0.01,
STEPS steps, random start, first IMAGES test images, CPU.

Design: the design function `trend design` runs (trendcli.ensemble.selection.design) on the
N = 16 matrix measured here and on a synthetic N = 60 matrix (seeded: 12 groups of 5 with
TM_sym about 0.8 within a group and 0.2 across, plus noise), exhaustive against greedy.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from trendcli.ensemble.selection import design
from trendcli.transfer.matrix import compute_matrix
from trendcli.zoo.training import TrainConfig, train

EPS, ALPHA = 8 / 255, 0.01
ZOO = [("smallcnn", "fp", 0), ("smallcnn", "q1", 0), ("smallcnn", "ht", 0), ("vgg11", "fp", 0),
       ("smallcnn", "q2", 0), ("smallcnn", "fp", 1), ("smallcnn", "q1", 1), ("smallcnn", "ht", 1),
       ("smallcnn", "q4", 0), ("smallcnn", "q2", 1), ("smallcnn", "fp", 2), ("smallcnn", "q1", 2),
       ("smallcnn", "ht", 2), ("smallcnn", "q4", 1), ("smallcnn", "q2", 2), ("smallcnn", "fp", 3)]


def zoo(n: int, root: Path, limit_train: int) -> list[Path]:
    """The first n members of ZOO, trained once (1 epoch) and reused."""
    dirs = []
    for arch, quant, seed in ZOO[:n]:
        d = root / f"{arch}.{quant}.s{seed}"
        if not (d / "model.json").exists():
            train(TrainConfig(arch=arch, input_quant=quant, seed=seed, epochs=1, limit_train=limit_train, device="cpu"), d)
        dirs.append(d)
    return dirs


def matrix(dirs: list[Path], args: argparse.Namespace, store: Path):
    params = {"eps": EPS, "alpha": ALPHA, "steps": args.steps, "random_start": True}
    return compute_matrix([str(d) for d in dirs], "pgd", params, limit=args.images, device="cpu", store=store)


def timed(fn):
    """(wall seconds, result)."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def timed_cpu(fn):
    """(wall seconds, CPU seconds of this process, result): CPU time is what other jobs on a
    shared machine disturb least."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def synthetic_tm(n: int, group: int = 5, seed: int = 0) -> np.ndarray:
    """A symmetric TM_sym with groups of ``group`` similar models, seeded."""
    rng = np.random.default_rng(seed)
    g = np.arange(n) // group
    base = np.where(g[:, None] == g[None, :], 0.8, 0.2)
    noise = rng.normal(0, 0.05, (n, n))
    tm = np.clip(base + (noise + noise.T) / 2, 0, 1)
    np.fill_diagonal(tm, 1.0)
    return tm


def design_rows(label: str, tm: np.ndarray, names: list[str], sizes: list[int]) -> list[str]:
    rows = []
    for k in sizes:
        out = {}
        for method in ("exhaustive", "greedy"):
            secs, res = timed(lambda: design(tm, names, k, method=method, exhaustive_limit=10**8, top=1))
            out[method] = (secs, res.candidates[0])
        (te, ce), (tg, cg) = out["exhaustive"], out["greedy"]
        same = set(ce.members) == set(cg.members)
        rows.append(f"| {label} | {len(names)} | {k} | {math.comb(len(names), k)} | {te:.3f} | {ce.score:.4f} | {tg:.3f} "
                    f"| {cg.score:.4f} | {'yes' if same else 'no'} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4,8,16")
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--limit-train", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--root", type=Path, default=Path("runs/bench/zoo_scale"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if max(sizes) > len(ZOO):
        parser.error(f"sizes go up to {len(ZOO)}")
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    dirs = zoo(max(sizes), args.root / "models", args.limit_train)
    load = os.getloadavg()[0]
    print(f"PGD eps 8/255 alpha 0.01 {args.steps} steps, {args.images} test images, CPU, {args.threads} threads; "
          f"models: {', '.join(d.name for d in dirs)}; 1-min load average at the start {load:.1f} on {os.cpu_count()} cores")
    print()
    print("| N | pairs | cold wall / CPU s | cold CPU s/pair | warm store wall / CPU s | warm store CPU s/pair "
          "| warm (cache) wall / CPU s | warm CPU s/pair | evaluated cold / warm store / warm | read from cache (warm) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    last = None
    for n in sizes:
        store = Path(tempfile.mkdtemp(prefix="zoo_scale_store_"))
        try:
            cold_w, cold_c, cold = timed_cpu(lambda: matrix(dirs[:n], args, store))
            shutil.rmtree(store / "predictions")
            ws_w, ws_c, ws = timed_cpu(lambda: matrix(dirs[:n], args, store))
            warm_w, warm_c, warm = timed_cpu(lambda: matrix(dirs[:n], args, store))
        finally:
            shutil.rmtree(store, ignore_errors=True)
        np.testing.assert_array_equal(warm.n_t, cold.n_t)
        p = n * n
        print(f"| {n} | {p} | {cold_w:.2f} / {cold_c:.2f} | {cold_c / p:.4f} | {ws_w:.2f} / {ws_c:.2f} | {ws_c / p:.4f} "
              f"| {warm_w:.3f} / {warm_c:.3f} | {warm_c / p:.5f} "
              f"| {cold.evaluated} / {ws.evaluated} / {warm.evaluated} | {warm.read_from_cache} |")
        last = cold
    print()
    print("| matrix | N | K | subsets | exhaustive s | exhaustive score | greedy s | greedy score | same members |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    rows = design_rows("measured", last.symmetric(), list(last.names), [3, 4, 5])
    rows += design_rows("synthetic", synthetic_tm(60), [f"m{i:02d}" for i in range(60)], [3, 4])
    print("\n".join(rows))
    print(f"\nbenchmark wall time {time.perf_counter() - started:.0f} s (training included when the zoo was new)")


if __name__ == "__main__":
    main()
