"""Cost of an N-model PGD transfer matrix: cold, warm store, new matrix over known sets, rerun, growth.

Run from the repository root (not collected by pytest):

    .venv/bin/python benchmarks/matrix_cost.py --models 4 --images 500 --steps 40 --rounds 2

Models: N Fashion-MNIST smallcnn zoo members (fp seed 0, fp seed 1, q1, ht, q2, fp seed 2, in
that order), each trained for one epoch on 1000 images; they are trained once into
runs/bench/matrix_cost/models and reused (training is not timed). Attack: PGD, eps 8/255,
alpha 0.01, STEPS steps, random start (the authors' transfer settings), on the first IMAGES
test images, CPU, two intra-op threads.

Timed, wall clock and this process's CPU time, model loading included in every row; the
rows run interleaved for --rounds rounds and a cell is the best round:
- cold: compute_matrix into an empty store (N attacks, N x N (set, target) evaluations).
- warm store: the sets are in the store, the prediction cache is emptied first: N x N
  evaluations (forward passes), no attack.
- new matrix over known sets: a new matrix (no previous matrix) over models and sets the
  store already knows, prediction cache warm: no attack, no forward pass.
- `trend matrix` rerun: compute_matrix with the previous matrix: nothing to do at all.
- add one model: the N-model matrix grown by model N+1 with the previous matrix: one attack
  and 2N+1 evaluations (only with N < 6).
- naive (``--naive``): every ordered pair attacked afresh with torchattacks (N (N - 1)
  attacks), what a script without a store does; its TM is compared as a sanity check.
Each row prints what the matrix reports: evaluated, read from the cache, attacked, reused.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

import torchattacks
from trendcli.data import load_split
from trendcli.transfer.matrix import compute_matrix
from trendcli.zoo.training import TrainConfig, train
from trendcli.transfer.counts import tm_from_counts, transfer_counts
from trendcli.zoo.files import load_model

EPS, ALPHA = 8 / 255, 0.01
ZOO = [("fp", 0), ("fp", 1), ("q1", 0), ("ht", 0), ("q2", 0), ("fp", 2)]
BATCH = 128


def zoo(n: int, root: Path) -> list[Path]:
    """The first n members of ZOO, trained once (1 epoch, 1000 images) and reused."""
    dirs = []
    for quant, seed in ZOO[:n]:
        d = root / f"{quant}.s{seed}"
        if not (d / "model.json").exists():
            train(TrainConfig(arch="smallcnn", input_quant=quant, seed=seed, epochs=1, limit_train=1000, device="cpu"), d)
        dirs.append(d)
    return dirs


@torch.inference_mode()
def _predict(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    return torch.cat([model(x[i : i + BATCH]).argmax(1) for i in range(0, len(x), BATCH)]).numpy()


def naive(dirs: list[Path], images: int, steps: int) -> np.ndarray:
    """Every ordered pair attacked afresh with torchattacks; returns TM (diagonal 1)."""
    models = [load_model(d) for d in dirs]
    data, idx = load_split("fashion_mnist", "test")
    x, y = data.batch(idx[:images])
    k = len(models)
    n_g = np.ones((k, k), dtype=np.int64)
    n_t = np.ones((k, k), dtype=np.int64)
    for s in range(k):
        for t in range(k):
            if s == t:
                continue
            atk = torchattacks.PGD(models[s], eps=EPS, alpha=ALPHA, steps=steps, random_start=True)
            adv = torch.cat([atk(x[i : i + BATCH], y[i : i + BATCH]) for i in range(0, len(x), BATCH)])
            c = transfer_counts(y.numpy(), _predict(models[s], x), _predict(models[s], adv),
                                _predict(models[t], x), _predict(models[t], adv))
            n_g[s, t], n_t[s, t] = c.n_g, c.n_t
    return tm_from_counts(n_g, n_t)


def trendcli_run(dirs: list[Path], images: int, steps: int, store: Path, previous=None):
    params = {"eps": EPS, "alpha": ALPHA, "steps": steps, "random_start": True}
    return compute_matrix([str(d) for d in dirs], "pgd", params, limit=images, device="cpu", store=store, previous=previous)


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process, result). CPU time is what load from other
    processes on a shared machine disturbs least; wall time is what a user waits."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def one_round(dirs: list[Path], args: argparse.Namespace, results: dict[str, list]) -> None:
    """Every row once, on a fresh store."""
    n = args.models
    store = Path(tempfile.mkdtemp(prefix="matrix_cost_store_"))
    run = lambda ds, prev=None: trendcli_run(ds, args.images, args.steps, store, prev)  # noqa: E731
    try:
        results["cold"].append(timed(lambda: run(dirs[:n])))
        shutil.rmtree(store / "predictions")
        results["warm store"].append(timed(lambda: run(dirs[:n])))
        results["new matrix over known sets"].append(timed(lambda: run(dirs[:n])))
        prev = results["new matrix over known sets"][-1][2]
        results["`trend matrix` rerun"].append(timed(lambda: run(dirs[:n], prev)))
        if len(dirs) > n:
            results["add one model"].append(timed(lambda: run(dirs, prev)))
        if args.naive:
            results["naive"].append(timed(lambda: naive(dirs[:n], args.images, args.steps)))
    finally:
        shutil.rmtree(store, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=4, help="N, 2..6")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--steps", type=int, default=40, help="PGD steps (authors: 40)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; a cell is the best round")
    parser.add_argument("--naive", action="store_true", help="also time torchattacks per ordered pair (slow)")
    parser.add_argument("--root", type=Path, default=Path("runs/bench/matrix_cost"))
    args = parser.parse_args()
    if not 2 <= args.models <= len(ZOO):
        parser.error(f"--models must be 2..{len(ZOO)}")
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    n = args.models
    dirs = zoo(min(n + 1, len(ZOO)), args.root / "models")
    data, idx = load_split("fashion_mnist", "test")  # registry and dataset cache warm for every row alike
    x, y = data.batch(idx[:BATCH])
    for d in dirs:  # one forward + backward per model first: torch's one-time costs hit no row
        m = load_model(d)
        xr = x.clone().requires_grad_(True)
        torch.nn.functional.cross_entropy(m(xr), y).backward()

    load = os.getloadavg()[0]
    results: dict[str, list] = defaultdict(list)
    for _ in range(args.rounds):  # interleaved, so that load from other processes hits every row alike
        one_round(dirs, args, results)
    best = {k: (min(r[0] for r in v), min(r[1] for r in v), v[-1][2]) for k, v in results.items()}
    cold = best["cold"]
    np.testing.assert_array_equal(best["warm store"][2].n_t, cold[2].n_t)
    np.testing.assert_array_equal(best["new matrix over known sets"][2].n_t, cold[2].n_t)

    print(f"N = {n} smallcnn models ({', '.join(cold[2].names)}), {args.images} images, PGD eps 8/255 alpha 0.01 "
          f"{args.steps} steps, CPU, {args.threads} threads, best of {args.rounds} interleaved rounds; 1-min load "
          f"average at the start {load:.1f} on {os.cpu_count()} cores")
    print()
    print("| run | attacked | evaluated | read from cache | reused pairs | wall s | CPU s | vs cold (wall / CPU) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, (w, c, mx) in best.items():
        if label == "naive":
            counts = f"{n * (n - 1)} | {2 * n * (n - 1)} | 0 | 0"
        else:
            counts = f"{mx.attacked} | {mx.evaluated} | {mx.read_from_cache} | {mx.reused_pairs}"
        print(f"| {label} | {counts} | {w:.3f} | {c:.3f} | {cold[0] / w:.1f}x / {cold[1] / c:.1f}x |")
    print()
    known = best["new matrix over known sets"]
    print(f"aim: new matrix over known models and sets >= 50x faster than cold -> wall {cold[0] / known[0]:.0f}x, "
          f"CPU {cold[1] / known[1]:.0f}x ({'met' if min(cold[0] / known[0], cold[1] / known[1]) >= 50 else 'NOT met'})")
    if "naive" in best:
        off = ~np.eye(n, dtype=bool)
        diff = np.abs(cold[2].tm - best["naive"][2])[off]
        print(f"sanity: |TM trendcli - TM naive| off the diagonal: mean {diff.mean():.3f}, max {diff.max():.3f} "
              "(different PGD code and random starts)")
    print(f"benchmark wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
