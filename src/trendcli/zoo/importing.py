"""Import an existing model as a zoo member directory (``trend import``).

Sources: a Python factory ``package.module:function`` plus a checkpoint (safetensors, or a
torch file read with ``weights_only=True``), a TorchScript archive, or an ONNX file (white-box
through onnx2torch when the conversion gives the same logits as onnxruntime, else black-box:
run in onnxruntime, no gradients). The user states the dataset, the input normalization (mean
and std in the model's input units, or "the model normalizes itself"), the input range the
model expects and the order of its outputs' classes; trendcli folds range and normalization
into the member's mean/std and reorders the logits into the dataset's class order, so every
stage sees an ordinary TrendModel on [0, 1] images.

The import measures clean accuracy on the test split and refuses a model at chance (the Wilson
95 % interval of its accuracy reaches down to 1/K), which almost always means a wrong
normalization or class order. Nothing is written unless every check passes; importing the same
file with the same statement into the same directory again is a no-op.
"""

from __future__ import annotations

import pickle
import re
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from trendcli.data import get_dataset, load_split
from trendcli.datasets.base import DatasetInfo
from trendcli.errors import ModelFileError, TrendError, UsageError
from trendcli.fsio import atomic_dir, check_output, sha256_file, write_json_atomic
from trendcli.stats import wilson_interval
from trendcli.versions import library_versions
from trendcli.zoo.blackbox import open_session, run_session
from trendcli.zoo.files import CARD, FORMAT, WEIGHTS, load_model, read_card, state_tensors
from trendcli.zoo.imported import (
    IMPORTER, KINDS, NETWORK_FILES, ImportedNetwork, call_factory, convert_onnx, load_torchscript,
)
from trendcli.zoo.model import TrendModel
from trendcli.zoo.predict import predict_split
from trendcli.zoo.spec import ModelSpec

#: Images of the test split used to compare logits (white-box ONNX) and check shapes.
CHECK_BATCH = 16
_OWN_FILES = (CARD, WEIGHTS, *NETWORK_FILES.values())


def import_model(
    source: str | Path,
    out_dir: str | Path,
    *,
    dataset: str,
    checkpoint: str | Path | None = None,
    factory_args: dict[str, Any] | None = None,
    kind: str = "auto",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    normalizes_itself: bool = False,
    input_range: tuple[float, float] = (0.0, 1.0),
    class_order: Sequence[str | int] | None = None,
    black_box: bool = False,
    name: str | None = None,
    data_dir: str | Path | None = None,
    limit_test: int | None = None,
    force: bool = False,
) -> TrendModel:
    """Import ``source`` into the member directory ``out_dir`` and return it as ``load_model`` loads it.

    ``source``: ``package.module:function`` (with ``checkpoint`` and optional ``factory_args``),
    a TorchScript archive or an ``.onnx`` file; ``kind`` "auto" tells them apart. ``mean``/``std``
    (per channel, or one value for all) are in the units of ``input_range``, the range the model
    expects its pixels in; ``normalizes_itself=True`` instead feeds it the raw range.
    ``class_order``: the dataset's class (name or index) of each model output, in output order.
    ``black_box``: run an ONNX file in onnxruntime without trying onnx2torch. ``limit_test``:
    measure accuracy on the first N test images only.
    """
    out_dir = Path(out_dir)
    info = get_dataset(dataset).info
    kind = _source_kind(source, checkpoint, kind)
    spec_mean, spec_std, statement = _normalization(info, mean, std, normalizes_itself, input_range)
    class_index = _class_index(info, class_order)
    original = Path(checkpoint if kind == "factory" else source)
    if not original.is_file():
        raise UsageError(f"no file at {original}; give the {'checkpoint' if kind == 'factory' else kind + ' file'} to import")
    request = {
        "kind": kind, "dataset": info.name, "factory": str(source) if kind == "factory" else None,
        "factory_args": dict(factory_args or {}), "input": statement,
        "class_order": None if class_order is None else list(class_order), "black_box": bool(black_box),
        "limit_test": limit_test,
    }
    digest = sha256_file(original)
    if _same_import(out_dir, digest, request):
        return load_model(out_dir)
    check_output(out_dir, "model directory", _is_model_dir, force=force, directory=True, own_files=_OWN_FILES)
    label = name or _default_name(source if kind != "factory" else str(source).rpartition(":")[2])
    spec = ModelSpec(
        arch=f"imported_{kind}", dataset=info.name, in_channels=info.channels, image_size=info.image_size,
        num_classes=info.num_classes, mean=spec_mean, std=spec_std,
    )
    test_data, test_idx = load_split(info.name, "test", Path(data_dir) if data_dir else None)
    if limit_test is not None:
        if limit_test < 1:
            raise UsageError(f"limit_test must be at least 1, got {limit_test}")
        test_idx = test_idx[:limit_test]
    x_check, _ = test_data.batch(test_idx[:CHECK_BATCH])
    inner, details = _read_source(kind, source, original, spec, x_check, factory_args or {}, black_box, label)
    model = _compose(spec, inner, class_index)
    _check_logits(model, x_check, info, original)
    pred, labels = predict_split(model, test_data, test_idx)
    accuracy = _check_accuracy(int((pred == labels).sum()), len(labels), info, original)
    source_record = {
        **request, "file": str(original.resolve()), "sha256": digest, "importer": IMPORTER,
        "class_index": None if class_index is None else list(class_index), **details,
    }
    _write_member(out_dir, model, kind, original, source_record, accuracy, label)
    return load_model(out_dir)


# -- what the user states ----------------------------------------------------------------------


def _source_kind(source: str | Path, checkpoint: str | Path | None, kind: str) -> str:
    """factory, torchscript or onnx; "auto": an ONNX suffix, a ``module:function`` with a checkpoint, else TorchScript."""
    if kind not in ("auto", *KINDS):
        raise UsageError(f"unknown source kind {kind!r}; use auto, {', '.join(KINDS)}")
    text = str(source)
    if kind == "auto":
        if text.lower().endswith(".onnx"):
            kind = "onnx"
        elif ":" in text and not Path(text).exists():
            kind = "factory"
        else:
            kind = "torchscript"
    if kind == "factory" and checkpoint is None:
        raise UsageError(f"a factory source ({text!r}) needs a checkpoint: pass checkpoint= (a .safetensors or torch file)")
    if kind != "factory" and checkpoint is not None:
        raise UsageError(f"checkpoint= goes with a factory source (package.module:function), not with a {kind} file")
    return kind


def _per_channel(values: Sequence[float], channels: int, what: str) -> tuple[float, ...]:
    values = tuple(float(v) for v in values)
    if len(values) == 1:
        values = values * channels
    if len(values) != channels:
        raise UsageError(f"{what} needs 1 or {channels} values (one per channel), got {len(values)}")
    return values


def _normalization(
    info: DatasetInfo, mean, std, normalizes_itself: bool, input_range: tuple[float, float]
) -> tuple[tuple[float, ...], tuple[float, ...], dict[str, Any]]:
    """The member's mean/std on [0, 1] pixels and the user's statement as the card records it.

    The model expects u = lo + x (hi - lo) and z = (u - m) / s; so z = (x - m') / s' with
    m' = (m - lo) / (hi - lo), s' = s / (hi - lo). A model that normalizes itself has m = 0, s = 1.
    """
    lo, hi = (float(v) for v in input_range)
    if not hi > lo:
        raise UsageError(f"input_range must be (low, high) with high > low, got {input_range!r}")
    if normalizes_itself:
        if mean is not None or std is not None:
            raise UsageError("give mean/std or normalizes_itself=True, not both")
        m, s = (0.0,) * info.channels, (1.0,) * info.channels
    else:
        if mean is None or std is None:
            raise UsageError(
                "say how the model expects its input: mean= and std= (in the units of input_range), "
                "or normalizes_itself=True when the model normalizes its input itself"
            )
        m, s = _per_channel(mean, info.channels, "mean"), _per_channel(std, info.channels, "std")
        if any(not v > 0 for v in s):
            raise UsageError(f"std must be positive, got {list(s)}")
    statement = {
        "mean": None if normalizes_itself else list(m), "std": None if normalizes_itself else list(s),
        "normalizes_itself": bool(normalizes_itself), "range": [lo, hi],
    }
    width = hi - lo
    return tuple((v - lo) / width for v in m), tuple(v / width for v in s), statement


def _class_index(info: DatasetInfo, class_order: Sequence[str | int] | None) -> list[int] | None:
    """``index[c]``: the model output holding dataset class c (None: the dataset's own order)."""
    if class_order is None:
        return None
    names = [n.lower() for n in info.class_names]
    order = []
    for entry in class_order:
        text = str(entry).strip()
        if text.isdigit():
            order.append(int(text))
        elif text.lower() in names:
            order.append(names.index(text.lower()))
        else:
            raise UsageError(f"class_order: {entry!r} is neither a class index nor a class of {info.name} ({', '.join(info.class_names)})")
    if sorted(order) != list(range(info.num_classes)):
        raise UsageError(f"class_order must name each of {info.name}'s {info.num_classes} classes once, got {list(class_order)}")
    index = [order.index(c) for c in range(info.num_classes)]
    return None if index == list(range(info.num_classes)) else index


def _default_name(text: str | Path) -> str:
    stem = Path(str(text)).stem
    return re.sub(r"[^a-z0-9_.-]+", "_", stem.lower()).strip("_.-") or "imported"


def _is_model_dir(path: Path) -> bool:
    try:
        read_card(path)
    except TrendError:
        return False
    return True


def _same_import(out_dir: Path, digest: str, request: dict[str, Any]) -> bool:
    """True when ``out_dir`` already holds this import: the same file (sha256) and the same statement."""
    if not (out_dir / CARD).is_file() or not _is_model_dir(out_dir):
        return False
    source = read_card(out_dir).get("source") or {}
    return source.get("sha256") == digest and {k: source.get(k) for k in request} == request


# -- reading the source ------------------------------------------------------------------------


def _read_source(kind, source, original: Path, spec: ModelSpec, x_check: torch.Tensor, factory_args, black_box: bool,
                 label: str) -> tuple[nn.Module, dict[str, Any]]:
    """The user's network and what the card records about how it was read."""
    if kind == "factory":
        network = call_factory(str(source), dict(factory_args))
        _load_checkpoint(network, original, str(source))
        return network, {"checkpoint_format": "safetensors" if _is_safetensors(original) else "torch"}
    if kind == "torchscript":
        return load_torchscript(original), {}
    return _read_onnx(original, spec, x_check, black_box, label)


def _is_safetensors(path: Path) -> bool:
    return path.suffix.lower() == ".safetensors"


def _checkpoint_state(path: Path) -> dict[str, torch.Tensor]:
    """The state dict in a checkpoint: safetensors, or a torch file read with ``weights_only=True``."""
    if _is_safetensors(path):
        try:
            return load_file(str(path))
        except Exception as exc:  # safetensors' own error types
            raise ModelFileError(f"{path} is not a readable safetensors file ({exc})") from None
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        why = next((line.strip() for line in str(exc).splitlines() if "GLOBAL" in line or "global" in line), "")
        raise ModelFileError(
            f"{path} is a pickled checkpoint that torch.load(weights_only=True) refuses ({why or 'it holds Python objects'}); "
            "trendcli never unpickles: where it was made, save the weights alone, "
            "safetensors.torch.save_file(model.state_dict(), 'model.safetensors') or torch.save(model.state_dict(), path)"
        ) from None
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelFileError(f"{path} is not a torch checkpoint (torch.load: {first})") from None
    for key in ("state_dict", "model_state_dict", "model"):  # common training-script wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{path} holds no state dict (a mapping of names to tensors)")
    return state


def _load_checkpoint(network: nn.Module, path: Path, factory: str) -> None:
    state = _checkpoint_state(path)
    expected = network.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ModelFileError(
            f"{path}'s keys do not match {factory}'s network: missing {missing[:3]}, unexpected {unexpected[:3]}; "
            "check factory_args and that the checkpoint belongs to this network"
        )
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = [line.strip() for line in str(exc).strip().splitlines() if line.strip()][-1]
        raise ModelFileError(f"{path} does not fit {factory}'s network: {first}") from None


def _onnx_signature(path: Path, info: DatasetInfo) -> None:
    """One rank-4 float input whose fixed C/H/W are the dataset's, one output; else UsageError."""
    session = open_session(path)
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) < 1:
        raise UsageError(f"{path} has {len(inputs)} inputs; trendcli serves one image input [N, C, H, W]")
    shape = list(inputs[0].shape)
    want = [info.channels, info.image_size, info.image_size]
    fixed_mismatch = len(shape) == 4 and any(isinstance(d, int) and d != w for d, w in zip(shape[1:], want))
    if len(shape) != 4 or fixed_mismatch:
        raise UsageError(
            f"{path} takes input of shape {shape}; {info.name} images are [N, {', '.join(map(str, want))}]"
        )
    out_shape = list(outputs[0].shape)
    if len(out_shape) == 2 and isinstance(out_shape[1], int) and out_shape[1] != info.num_classes:
        raise UsageError(f"{path} gives {out_shape[1]} logits but {info.name} has {info.num_classes} classes")


def _read_onnx(path: Path, spec: ModelSpec, x_check: torch.Tensor, black_box: bool,
               label: str) -> tuple[nn.Module, dict[str, Any]]:
    """onnx2torch's module when it reproduces onnxruntime's logits, else the onnxruntime network."""
    from trendcli.zoo.blackbox import OnnxRuntimeNetwork

    info = get_dataset(spec.dataset).info
    _onnx_signature(path, info)
    z = ((x_check - torch.tensor(spec.mean).view(1, -1, 1, 1)) / torch.tensor(spec.std).view(1, -1, 1, 1)).numpy()
    try:
        reference = run_session(open_session(path), z.astype(np.float32))
    except Exception as exc:  # onnxruntime's error for a graph that cannot take this batch
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(
            f"onnxruntime cannot run {path} on a batch {list(z.shape)} ({first[:200]}); trendcli serves [N, C, H, W] "
            "batches: export with a dynamic batch axis and no batch-size-dependent reshapes"
        ) from None
    if reference.ndim != 2 or reference.shape[1] != info.num_classes:
        raise UsageError(f"{path} gives logits of shape {list(reference.shape)}; {info.name} has {info.num_classes} classes")
    if black_box:
        return OnnxRuntimeNetwork(path, label), {"white_box": False, "black_box_reason": "asked for (black_box=True)"}
    reason = None
    try:
        converted = convert_onnx(path).eval()
        with torch.inference_mode():
            got = converted(torch.from_numpy(z))
        got = got[0] if isinstance(got, (tuple, list)) else got
        diff = float(np.abs(got.numpy() - reference).max()) if tuple(got.shape) == reference.shape else float("inf")
        tolerance = 1e-4 * max(1.0, float(np.abs(reference).max()))
        if diff <= tolerance:
            return converted, {"white_box": True, "onnx2torch_max_abs_diff": diff}
        reason = f"onnx2torch's logits differ from onnxruntime's by {diff:.3g} (tolerance {tolerance:.3g})"
    except UsageError as exc:  # onnx2torch not installed
        reason = str(exc)
    except Exception as exc:  # onnx2torch raises plain exceptions for unsupported operators
        reason = f"onnx2torch cannot convert it ({(str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]})"
    return OnnxRuntimeNetwork(path, label), {"white_box": False, "black_box_reason": reason}


# -- checks and writing ------------------------------------------------------------------------


def _compose(spec: ModelSpec, inner: nn.Module, class_index: list[int] | None) -> TrendModel:
    from trendcli.registry import get_registry

    input_quant = get_registry().factory("input quantizer", "fp")(per_image=False)
    return TrendModel(spec, ImportedNetwork(inner, class_index), input_quant).eval()


def _check_logits(model: TrendModel, x: torch.Tensor, info: DatasetInfo, path: Path) -> None:
    try:
        with torch.inference_mode():
            logits = model(x)
    except TrendError:
        raise
    except Exception as exc:  # the user's network failing on the dataset's images
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"{path}: the model fails on {info.name} images {list(x.shape)}: {first[:200]}") from None
    if logits.ndim != 2 or logits.shape[1] != info.num_classes:
        raise UsageError(f"{path}: the model gives outputs of shape {list(logits.shape)}; {info.name} has {info.num_classes} classes")


def _check_accuracy(correct: int, n: int, info: DatasetInfo, path: Path) -> dict[str, Any]:
    """The accuracy record; UsageError when it is at chance (the Wilson 95 % interval reaches 1/K)."""
    lo, hi = wilson_interval(correct, n)
    chance = 1.0 / info.num_classes
    if lo <= chance:
        raise UsageError(
            f"{path} scores {correct / n:.3f} on {n} {info.name} test images, chance is {chance:.3f}: almost always a "
            "wrong normalization (mean/std, normalizes_itself, input_range) or class order; nothing written"
        )
    return {"test": correct / n, "test_correct": correct, "test_n": n, "test_interval": [lo, hi]}


def _write_member(out_dir: Path, model: TrendModel, kind: str, original: Path, source: dict[str, Any],
                  accuracy: dict[str, Any], label: str) -> None:
    """The member directory, atomically: the kept source copy, the weights (torch modules), the card."""
    black = kind == "onnx" and not source.get("white_box")
    with atomic_dir(out_dir) as tmp:
        if kind in NETWORK_FILES:
            shutil.copyfile(original, tmp / NETWORK_FILES[kind])
        weights = NETWORK_FILES["onnx"] if black else WEIGHTS
        if not black:
            save_file(state_tensors(model), str(tmp / WEIGHTS))
        card = {
            "format": FORMAT, "id": label, "source": source, "accuracy": accuracy,
            "versions": library_versions(), "spec": model.spec.to_dict(),
            "weights": weights, "weights_sha256": sha256_file(tmp / weights),
        }
        write_json_atomic(tmp / CARD, card)
