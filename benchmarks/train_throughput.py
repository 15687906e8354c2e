"""Training throughput: `trendcli.zoo.training` against a bare PyTorch loop on the same model and data.

Prints one table measured in one run: images/s of trendcli's training loop (what `trend train`
runs) and of a bare loop (batch from the in-memory tensor, forward, loss, backward, step, and
nothing else) on the same smallcnn, data, batch size and thread count, and their ratio.

    .venv/bin/python benchmarks/train_throughput.py [--images 12800] [--batch-size 128] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from trendcli.data import load_split
from trendcli.zoo.training import TrainConfig, model_spec_for, train
from trendcli.zoo.files import build_model


def bare_loop(config: TrainConfig, n: int) -> float:
    """Images/s of the plainest loop over the same images in the same order of batches."""
    cfg = config.resolved()
    data, idx = load_split(cfg.dataset, "train", None, cfg.split_seed)
    idx = idx[torch.randperm(len(idx), generator=torch.Generator().manual_seed(cfg.seed))[:n]].sort().values
    torch.manual_seed(cfg.seed)
    model = build_model(model_spec_for(cfg))
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    order = idx[torch.randperm(len(idx))]
    model.train()
    t0 = time.perf_counter()
    for i in range(0, len(order), cfg.batch_size):
        x, y = data.batch(order[i : i + cfg.batch_size])
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return len(order) / (time.perf_counter() - t0)


def trendcli_loop(config: TrainConfig, n: int) -> float:
    """Images/s of trendcli's own epoch loop, read from the per-epoch log it writes."""
    with tempfile.TemporaryDirectory() as tmp:
        train(config, Path(tmp) / "m")
        log = (Path(tmp) / "m" / "train_log.jsonl").read_text().splitlines()
    return float(json.loads(log[-1])["images_per_s"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=12800)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = TrainConfig(arch="smallcnn", epochs=1, batch_size=args.batch_size, limit_train=args.images, device="cpu")
    bare_loop(cfg, min(args.images, 1024))  # warm-up: allocator, kernels
    rows = []
    for _ in range(args.repeats):
        rows.append((trendcli_loop(cfg, args.images), bare_loop(cfg, args.images)))
    best_t = max(r[0] for r in rows)
    best_b = max(r[1] for r in rows)
    print(f"training throughput: smallcnn, Fashion-MNIST, {args.images} images, batch {args.batch_size}, "
          f"{args.threads} threads, best of {args.repeats}")
    print(f"{'loop':<28}{'images/s':>10}")
    print(f"{'trendcli (trend train)':<28}{best_t:>10.0f}")
    print(f"{'bare PyTorch loop':<28}{best_b:>10.0f}")
    print(f"{'ratio trendcli / bare':<28}{best_t / best_b:>10.2f}   (aim >= 0.9)")


if __name__ == "__main__":
    main()
