"""Ensemble inference speed: onnxruntime (the exported graph) against torch eager, same members.

    .venv/bin/python benchmarks/onnx_inference.py [--threads 1] [--batch-sizes 1,256]
        [--members DIR DIR DIR] [--json out.json]

Ensembles (random-init smallcnn members unless --members is given; speed does not depend on
the weights):
  plain   fp + q1 + ht       the three-CNN majority vote (ht = filter and threshold, one conv)
  ht-fs   fp + q1 + ht_fs    with Floyd-Steinberg error diffusion (sequential in its pixels)
and each halftoning member alone (K = 1), so its cost shows on its own.

torch eager = what `trend evaluate --per-image` runs: each member loaded per-image
(trendcli.zoo.files.load_model), forward under inference_mode, then trendcli.ensemble.vote.predict.
onnxruntime = session.run of the exported file (trendcli.deploy.export.export_ensemble), all outputs.
Both use the same thread count. Latency = wall time of one call on a batch (median and p99 over
the repeats, after warm-up); images/s = batch / median latency.
CUDA and TensorRT providers are timed when this onnxruntime has them (onnxruntime-gpu on a
GPU machine); otherwise the table says they were not measured.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from trendcli.data import get_dataset
from trendcli.deploy.export import export_ensemble
from trendcli.deploy.runtime import CUDA, TENSORRT, OnnxEnsemble
from trendcli.zoo.spec import ModelSpec
from trendcli.versions import library_versions
from trendcli.ensemble.vote import predict as vote_predict
from trendcli.zoo.files import build_model, load_model, save_model

ENSEMBLES = {"plain": ("fp", "q1", "ht"), "ht-fs": ("fp", "q1", "ht_fs"), "ht alone": ("ht",), "ht_fs alone": ("ht_fs",)}


def make_members(root: Path) -> dict[str, Path]:
    """Random-init Fashion-MNIST smallcnn members, one per input quantizer used above."""
    info = get_dataset("fashion-mnist").info
    out = {}
    for seed, q in enumerate(("fp", "q1", "ht", "ht_fs")):
        torch.manual_seed(seed)
        spec = ModelSpec(arch="smallcnn", dataset=info.name, in_channels=1, image_size=28, num_classes=10,
                         mean=info.mean, std=info.std, input_quant=q)
        out[q] = save_model(build_model(spec).eval(), root / q, {"id": q})
    return out


def time_calls(fn: Callable[[], object], min_seconds: float, min_repeats: int, warmup: int = 3) -> np.ndarray:
    """Wall times (s) of ``fn()``, after ``warmup`` untimed calls, until both minimums are met."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_repeats or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return np.asarray(times)


def row(name: str, runtime: str, batch: int, times: np.ndarray) -> dict:
    p50 = float(np.median(times))
    return {"ensemble": name, "runtime": runtime, "batch": batch, "p50_ms": p50 * 1e3,
            "p99_ms": float(np.percentile(times, 99)) * 1e3, "images_per_s": batch / p50, "repeats": len(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime intra-op threads")
    parser.add_argument("--batch-sizes", default="1,256")
    parser.add_argument("--members", nargs="*", type=Path, help="use these model dirs as one ensemble instead")
    parser.add_argument("--min-seconds", type=float, default=1.0, help="time each case at least this long")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batch_sizes.split(",")]

    import onnxruntime as ort

    gpu = [p for p in (CUDA, TENSORRT) if p in ort.get_available_providers()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.members:
            ensembles = {"given": [Path(m) for m in args.members]}
        else:
            made = make_members(root)
            ensembles = {name: [made[q] for q in qs] for name, qs in ENSEMBLES.items()}
        for name, dirs in ensembles.items():
            path = export_ensemble(dirs, root / f"{name.replace(' ', '_')}.onnx")
            models = [load_model(d, per_image=True) for d in dirs]
            c, h, w = models[0].spec.input_shape
            sessions = {"onnxruntime-cpu": OnnxEnsemble(path, provider="cpu", threads=args.threads).session}
            for provider in gpu:
                key = "onnxruntime-" + ("cuda" if provider == CUDA else "tensorrt")
                sessions[key] = OnnxEnsemble(path, provider=key.split("-")[1]).session
            for batch in batches:
                x = torch.rand(batch, c, h, w, generator=torch.Generator().manual_seed(batch))
                xn = x.numpy()

                def torch_eager() -> torch.Tensor:
                    with torch.inference_mode():
                        return vote_predict([m(x) for m in models], "first")

                reps = 20 if batch > 16 else 100
                rows.append(row(name, "torch-eager", batch, time_calls(torch_eager, args.min_seconds, reps)))
                for key, session in sessions.items():
                    rows.append(row(name, key, batch, time_calls(lambda: session.run(None, {"images": xn}), args.min_seconds, reps)))

    print(f"# ensemble inference, {platform.processor() or platform.machine()}, threads={args.threads}, "
          f"torch {torch.__version__}, onnxruntime {ort.__version__}")
    print(f"{'ensemble':<12} {'batch':>5} {'runtime':<22} {'p50 ms':>9} {'p99 ms':>9} {'images/s':>10} {'vs torch':>9}")
    base = {(r["ensemble"], r["batch"]): r["p50_ms"] for r in rows if r["runtime"] == "torch-eager"}
    for r in rows:
        speedup = base[(r["ensemble"], r["batch"])] / r["p50_ms"]
        print(f"{r['ensemble']:<12} {r['batch']:>5} {r['runtime']:<22} {r['p50_ms']:>9.3f} {r['p99_ms']:>9.3f} "
              f"{r['images_per_s']:>10.0f} {speedup:>8.2f}x")
    if not gpu:
        print("# CUDA / TensorRT: not measured (this onnxruntime has no CUDA or TensorRT provider; "
              "install onnxruntime-gpu on a GPU machine)")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "threads": args.threads, "versions": library_versions()}, indent=2))


if __name__ == "__main__":
    main()
