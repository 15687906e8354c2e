"""Inference with an exported ensemble on onnxruntime: predictions, dataset accuracy and speed.

The file must be a trendcli ensemble export (``trend export-ensemble``; metadata format
``trendcli-onnx-ensemble/1``). Its input quantization is per image (trendcli.deploy.export), so a
prediction never depends on the rest of the batch.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from trendcli.errors import DataNotFoundError, IncompatibleModelsError, OnnxExportError, UsageError
from trendcli.deploy.export import FORMAT, INPUT_NAME, METADATA_KEY, OUTPUT_NAMES
from trendcli.progress import NullProgress, Progress

PROVIDER_CHOICES = ("auto", "cpu", "cuda", "tensorrt")
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
_BY_NAME = {"cpu": CPU, "cuda": CUDA, "tensorrt": TENSORRT}
GPU_HINT = "install onnxruntime-gpu (pip install 'trendcli[gpu]') with its CUDA/TensorRT libraries on a GPU machine"


def select_providers(requested: str = "auto", available: Sequence[str] | None = None) -> tuple[list[str], str | None]:
    """onnxruntime providers to ask for, best first, and a fallback message (None if none).

    ``auto``: TensorRT > CUDA > CPU among the available ones. ``cuda`` / ``tensorrt`` that this
    onnxruntime lacks fall back to CPU with a message saying so.
    """
    if available is None:
        import onnxruntime as ort

        available = ort.get_available_providers()
    name = requested.lower().strip()
    if name not in PROVIDER_CHOICES:
        raise UsageError(f"unknown provider {requested!r}; use one of {', '.join(PROVIDER_CHOICES)}")
    if name == "auto":
        return [p for p in (TENSORRT, CUDA) if p in available] + [CPU], None
    if name == "cpu":
        return [CPU], None
    wanted = _BY_NAME[name]
    if wanted not in available:
        have = ", ".join(p for p in available if p.endswith("ExecutionProvider")) or "none"
        return [CPU], (
            f"provider {name} ({wanted}) is not available in this onnxruntime (it has: {have}); "
            f"running on CPU instead -- for {name}, {GPU_HINT}"
        )
    chain = [TENSORRT, CUDA, CPU] if name == "tensorrt" else [CUDA, CPU]
    return [p for p in chain if p in available or p == CPU], None


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The trendcli metadata of an exported ensemble; OnnxExportError naming the file otherwise."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise OnnxExportError(f"no ONNX file at {path} (write one with `trend export-ensemble --out {path}`)")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise OnnxExportError(
            f"{path} is not a readable ONNX file ({type(exc).__name__}); re-export it with `trend export-ensemble`"
        ) from None
    props = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY not in props:
        raise OnnxExportError(
            f"{path} is an ONNX model but not a trendcli ensemble (no {METADATA_KEY!r} metadata); "
            f"export one with `trend export-ensemble`"
        )
    try:
        meta = json.loads(props[METADATA_KEY])
    except json.JSONDecodeError:
        raise OnnxExportError(f"{path}: its {METADATA_KEY!r} metadata is not valid JSON; re-export it") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else None
        raise OnnxExportError(f"{path} has trendcli metadata of format {got!r}, expected {FORMAT!r}; re-export it")
    inputs = [i.name for i in proto.graph.input]
    outputs = [o.name for o in proto.graph.output]
    if INPUT_NAME not in inputs or any(o not in outputs for o in OUTPUT_NAMES[:3]):
        raise OnnxExportError(f"{path}: graph inputs {inputs} / outputs {outputs} are not a trendcli ensemble's")
    return meta


class OnnxEnsemble:
    """An exported ensemble on onnxruntime: ``predict(images)`` -> label, votes, member labels.

    ``provider``: auto (TensorRT > CUDA > CPU), cpu, cuda or tensorrt; an absent one falls back
    to CPU and ``messages`` says so. ``threads``: onnxruntime intra-op threads (None = its default).
    """

    def __init__(self, path: str | Path, provider: str = "auto", threads: int | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        self.metadata = read_metadata(self.path)
        providers, message = select_providers(provider)
        self.messages: list[str] = [message] if message else []
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: a provider that fails to start is reported below
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise OnnxExportError(f"onnxruntime cannot load {self.path}: {first}") from None
        active = self.session.get_providers()
        if providers[0] not in active:
            self.messages.append(f"{providers[0]} did not start on this machine; running on {active[0]}")
        self.provider = active[0]

    # -- what the file says --------------------------------------------------------------------
    @property
    def member_ids(self) -> list[str]:
        return [m["id"] for m in self.metadata["members"]]

    @property
    def class_names(self) -> list[str]:
        return list(self.metadata["class_names"])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        _, c, h, w = self.metadata["input_shape"]
        return int(c), int(h), int(w)

    @property
    def tie_break(self) -> str:
        return self.metadata["tie_break"]

    @property
    def dataset(self) -> str:
        return self.metadata["dataset"]

    # -- prediction ------------------------------------------------------------------------------
    def check_images(self, images: Any) -> np.ndarray:
        """``images`` (numpy or torch, [N, C, H, W] or one [C, H, W]) as contiguous float32 in [0, 1]."""
        if hasattr(images, "detach"):
            images = images.detach().cpu().numpy()
        x = np.asarray(images, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise UsageError(
                f"images must have shape [N, {', '.join(map(str, self.input_shape))}] for {self.path.name}, got {list(x.shape)}"
            )
        if x.size and (not np.isfinite(x).all() or x.min() < 0.0 or x.max() > 1.0):
            raise UsageError(
                f"images must be finite and in [0, 1] (got min {np.nanmin(x):g}, max {np.nanmax(x):g}); "
                f"divide 8-bit images by 255"
            )
        return np.ascontiguousarray(x)

    def predict(self, images: Any) -> dict[str, np.ndarray]:
        """label int64 [N], votes int64 [N, classes], member_labels int64 [N, K],
        member_logits float32 [N, K, classes] for ``images`` in [0, 1]."""
        x = self.check_images(images)
        if len(x) == 0:
            k, c = len(self.member_ids), int(self.metadata["num_classes"])
            return {
                "label": np.zeros(0, np.int64),
                "votes": np.zeros((0, c), np.int64),
                "member_labels": np.zeros((0, k), np.int64),
                "member_logits": np.zeros((0, k, c), np.float32),
            }
        outputs = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: x})
        return dict(zip(OUTPUT_NAMES, outputs))


@dataclass
class DatasetRun:
    """Accuracy, member agreement and speed of an ONNX ensemble on a dataset split."""

    dataset: str
    split: str
    provider: str
    batch_size: int
    member_ids: list[str]
    labels: np.ndarray  # true labels [N]
    pred: np.ndarray  # ensemble labels [N]
    member_pred: np.ndarray  # [N, K]
    latencies_s: np.ndarray  # one per batch (session.run only)
    messages: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return int(len(self.labels))

    @property
    def accuracy(self) -> float:
        return float((self.pred == self.labels).mean()) if self.n else float("nan")

    def member_accuracy(self) -> dict[str, float]:
        return {m: float((self.member_pred[:, k] == self.labels).mean()) for k, m in enumerate(self.member_ids)}

    def agreement(self) -> np.ndarray:
        """[K, K]: share of images on which members a and b predict the same label."""
        p = self.member_pred
        return (p[:, :, None] == p[:, None, :]).mean(0)

    def summary(self) -> dict[str, Any]:
        """JSON-ready: accuracy, member accuracy and agreement, images/s, p50/p99 batch latency."""
        k = len(self.member_ids)
        agree = self.agreement()
        off = agree[~np.eye(k, dtype=bool)]
        total = float(self.latencies_s.sum())
        return {
            "dataset": self.dataset,
            "split": self.split,
            "n": self.n,
            "accuracy": self.accuracy,
            "member_accuracy": self.member_accuracy(),
            "agreement": {
                "unanimous": float((self.member_pred == self.member_pred[:, :1]).all(1).mean()) if self.n else float("nan"),
                "mean_pairwise": float(off.mean()) if off.size else 1.0,
                "pairwise": {a: {b: float(agree[i, j]) for j, b in enumerate(self.member_ids)} for i, a in enumerate(self.member_ids)},
            },
            "provider": self.provider,
            "batch_size": self.batch_size,
            "images_per_s": self.n / total if total > 0 else float("nan"),
            "latency_ms": {
                "p50": float(np.percentile(self.latencies_s, 50) * 1e3) if len(self.latencies_s) else float("nan"),
                "p99": float(np.percentile(self.latencies_s, 99) * 1e3) if len(self.latencies_s) else float("nan"),
            },
            "messages": list(self.messages),
        }


def run_dataset(
    ensemble: OnnxEnsemble,
    dataset: str | None = None,
    split: str = "test",
    limit: int | None = None,
    batch_size: int = 256,
    data_dir: Path | None = None,
    split_seed: int = 0,
    progress: Progress | None = None,
) -> DatasetRun:
    """Run ``ensemble`` over the first ``limit`` images of a split (default: its own dataset's test set).

    Latency is per batch and counts ``session.run`` only (not data loading); one untimed
    warm-up batch runs first. images/s = images / summed batch latency.
    """
    from trendcli.data import get_dataset, load_split

    if batch_size < 1:
        raise UsageError(f"batch_size must be at least 1, got {batch_size}")
    if limit is not None and limit < 1:
        raise UsageError(f"limit must be at least 1, got {limit}")
    name = get_dataset(dataset).info.name if dataset else ensemble.dataset
    if name != ensemble.dataset:
        raise IncompatibleModelsError(
            f"{ensemble.path.name} was exported for {ensemble.dataset}, not {name}; use --dataset {ensemble.dataset}"
        )
    data, indices = load_split(name, split, data_dir, split_seed)
    if limit is not None:
        indices = indices[:limit]
    progress = progress or NullProgress()
    task = progress.task(f"infer {ensemble.path.name} ({ensemble.provider})", len(indices))
    labels, pred, member_pred, latencies = [], [], [], []
    if len(indices):
        x, _ = data.batch(indices[:batch_size])
        ensemble.predict(x)  # warm-up: first-run allocation and provider setup, untimed
    for start in range(0, len(indices), batch_size):
        x, y = data.batch(indices[start : start + batch_size])
        x = ensemble.check_images(x)
        t0 = time.perf_counter()
        out = ensemble.session.run(list(OUTPUT_NAMES[:3]), {INPUT_NAME: x})
        latencies.append(time.perf_counter() - t0)
        labels.append(y.numpy())
        pred.append(out[0])
        member_pred.append(out[2])
        progress.advance(task, len(y))
    progress.done(task)
    k = len(ensemble.member_ids)
    return DatasetRun(
        dataset=name,
        split=split,
        provider=ensemble.provider,
        batch_size=batch_size,
        member_ids=ensemble.member_ids,
        labels=np.concatenate(labels) if labels else np.zeros(0, np.int64),
        pred=np.concatenate(pred) if pred else np.zeros(0, np.int64),
        member_pred=np.concatenate(member_pred) if member_pred else np.zeros((0, k), np.int64),
        latencies_s=np.asarray(latencies, dtype=np.float64),
        messages=list(ensemble.messages),
    )


def load_image(path: str | Path, shape: tuple[int, int, int]) -> tuple[np.ndarray, list[int] | None]:
    """An image file as float32 [C, H, W] in [0, 1] in the model's channels and size.

    PNG/JPEG/...: converted to grayscale (C = 1) or RGB (C = 3), resized bilinearly when its
    size differs. Returns the array and the original [width, height] when it was resized.
    """
    from PIL import Image, UnidentifiedImageError

    c, h, w = shape
    if c not in (1, 3):
        raise UsageError(f"image files can feed 1- or 3-channel models, this one takes {c} channels")
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"no image file at {path}")
    try:
        with Image.open(path) as img:
            img = img.convert("L" if c == 1 else "RGB")
            original = list(img.size)
            resized = None
            if img.size != (w, h):
                img = img.resize((w, h), Image.Resampling.BILINEAR)
                resized = original
            arr = np.asarray(img, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as exc:
        raise UsageError(f"cannot read {path} as an image ({type(exc).__name__}: {exc})") from None
    arr = arr[None] if c == 1 else arr.transpose(2, 0, 1)
    return np.ascontiguousarray(arr), resized


def predict_files(ensemble: OnnxEnsemble, paths: Sequence[str | Path], batch_size: int = 256) -> list[dict[str, Any]]:
    """One JSON-ready row per image file: path, label, class, votes, each member's label."""
    if batch_size < 1:
        raise UsageError(f"batch_size must be at least 1, got {batch_size}")
    rows: list[dict[str, Any]] = []
    names = ensemble.class_names
    ids = ensemble.member_ids
    for start in range(0, len(paths), batch_size):
        chunk = list(paths[start : start + batch_size])
        loaded = [load_image(p, ensemble.input_shape) for p in chunk]
        out = ensemble.predict(np.stack([a for a, _ in loaded]))
        for i, (p, (_, resized)) in enumerate(zip(chunk, loaded)):
            label = int(out["label"][i])
            rows.append(
                {
                    "path": str(p),
                    "label": label,
                    "class": names[label] if label < len(names) else str(label),
                    "votes": [int(v) for v in out["votes"][i]],
                    "member_labels": {m: int(out["member_labels"][i, k]) for k, m in enumerate(ids)},
                    "resized_from": resized,
                }
            )
    return rows
