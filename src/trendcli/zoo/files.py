"""Build, save and load zoo members (a model directory: model.safetensors + model.json).

Card formats: ``trendcli-model/2`` (written) adds the optional ``source`` object of imported
members (:mod:`trendcli.zoo.imported`) and ``weights``, the file ``weights_sha256`` covers
(``model.safetensors`` unless set); ``trendcli-model/1`` cards (no ``source``) still load.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import torch
from safetensors.torch import load_file, save_file

from trendcli.errors import IncompatibleModelsError, ModelFileError, UsageError
from trendcli.fsio import atomic_dir, public_mode, sha256_file, write_json_atomic
from trendcli.zoo.model import TrendModel
from trendcli.registry import Registry, get_registry
from trendcli.zoo.spec import FULL_PRECISION, ModelSpec

WEIGHTS = "model.safetensors"
CARD = "model.json"
FORMAT = "trendcli-model/2"
#: Card formats load_model reads: /1 is /2 without ``source`` and ``weights``.
FORMATS = ("trendcli-model/1", FORMAT)


def build_model(spec: ModelSpec, registry: Registry | None = None) -> TrendModel:
    """A fresh (untrained) model for ``spec``, every part looked up in the registry."""
    reg = registry or get_registry()
    try:
        network = reg.factory("architecture", spec.arch)(
            in_channels=spec.in_channels,
            num_classes=spec.num_classes,
            image_size=spec.image_size,
            width=spec.width,
            pretrained=spec.pretrained,
            **spec.arch_args,
        )
    except TypeError as exc:  # an arch_args key the factory does not take
        if not spec.arch_args:
            raise
        raise UsageError(f"architecture {spec.arch!r} does not accept arch_args {sorted(spec.arch_args)}: {exc}") from None
    weight_q = act_q = None
    if spec.weight_bits != FULL_PRECISION:
        wf = reg.factory("weight quantizer", spec.weight_quant)
        weight_q = lambda: wf(bits=spec.weight_bits)  # noqa: E731
    if spec.act_bits != FULL_PRECISION:
        if not any(isinstance(m, torch.nn.ReLU) for m in network.modules()):
            # Activation quantizers replace nn.ReLU modules; without one act_bits would change nothing.
            raise UsageError(
                f"architecture {spec.arch!r} has no nn.ReLU modules, so act_bits={spec.act_bits} would quantize "
                "nothing; use act_bits=32, or a ReLU form of the network"
            )
        af = reg.factory("activation quantizer", spec.act_quant)
        act_q = lambda: af(bits=spec.act_bits)  # noqa: E731
    if weight_q or act_q:
        from trendcli.quantizers.layers import quantize_network

        quantize_network(network, weight_q, act_q, quantize_first=spec.quantize_first)
    input_quant = reg.factory("input quantizer", spec.input_quant)(per_image=spec.per_image)
    return TrendModel(spec, network, input_quant)


def state_tensors(model: torch.nn.Module, copy: bool = False) -> dict[str, torch.Tensor]:
    """The state dict as contiguous CPU tensors, ready for safetensors.

    ``copy=True`` returns tensors that share no memory with the model (a snapshot that later
    training steps cannot change).
    """
    return {k: v.detach().to("cpu", copy=copy).contiguous() for k, v in model.state_dict().items()}


def save_model(model: TrendModel, out_dir: Path, card: dict[str, Any], extra_files: dict[str, str] | None = None) -> Path:
    """Write ``out_dir`` atomically: weights, then the card with the weights' sha256.

    The directory appears complete or not at all (temp directory + rename).
    """
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        save_file(state_tensors(model), str(tmp / WEIGHTS))
        public_mode(tmp / WEIGHTS, 0o666)  # safetensors creates the file private (0600)
        card = {"format": FORMAT, **card, "spec": model.spec.to_dict(), "weights_sha256": sha256_file(tmp / WEIGHTS)}
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
        write_json_atomic(tmp / CARD, card)
    return out_dir


def read_card(model_dir: Path) -> dict[str, Any]:
    """The model card (model.json) of a model directory, validated."""
    model_dir = Path(model_dir)
    card_path = model_dir / CARD
    if not model_dir.is_dir():
        raise ModelFileError(f"no model directory at {model_dir} (train one with `trend train --out {model_dir}`)")
    if not card_path.is_file():
        raise ModelFileError(f"{model_dir} is not a complete trendcli model (needs {CARD} and {WEIGHTS})")
    try:
        card = json.loads(card_path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise ModelFileError(f"{card_path} is not UTF-8 text; it is not a trendcli model card") from None
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{card_path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except OSError as exc:
        raise ModelFileError(f"cannot read {card_path}: {exc.strerror}") from None
    if not isinstance(card, dict):
        raise ModelFileError(f"{card_path} holds a JSON {type(card).__name__}, not a trendcli model card (an object)")
    if card.get("format") not in FORMATS or "spec" not in card:
        raise ModelFileError(f"{card_path} is not a trendcli model card (format {card.get('format')!r})")
    if not isinstance(card["spec"], dict):
        raise ModelFileError(f"{card_path}: 'spec' must be a JSON object, got {type(card['spec']).__name__}")
    if not isinstance(card.get("weights_sha256"), str):
        raise ModelFileError(f"{card_path}: 'weights_sha256' must be a string; retrain or re-import the model")
    weights = card.get("weights", WEIGHTS)
    if not isinstance(weights, str) or "/" in weights or not (model_dir / weights).is_file():
        raise ModelFileError(f"{model_dir} is not a complete trendcli model (needs {CARD} and {weights})")
    return card


def load_model(
    model_dir: Path | str,
    device: str | torch.device = "cpu",
    per_image: bool | None = None,
    verify: bool = True,
    registry: Registry | None = None,
) -> TrendModel:
    """Load a model directory as an eval-mode TrendModel with its quantizers.

    ``per_image`` overrides the input quantizer's statistics form (deployment uses per-image
    Qb; docs/method.md "Input quantization"). ``verify`` checks the weights' sha256.
    """
    model_dir = Path(model_dir)
    card = read_card(model_dir)
    weights = model_dir / card.get("weights", WEIGHTS)
    digest = sha256_file(weights) if verify else card.get("weights_sha256")
    if verify and digest != card.get("weights_sha256"):
        raise ModelFileError(f"{weights} does not match the sha256 in {CARD}; the file changed after training or import")
    spec_dict = dict(card["spec"])
    if per_image is not None:
        spec_dict["per_image"] = per_image
    try:
        spec = ModelSpec.from_dict(spec_dict)
    except UsageError as exc:
        raise ModelFileError(f"{model_dir / CARD}: {exc}") from None
    if "source" in card:  # an imported member (trend import)
        from trendcli.zoo.imported import load_imported

        model = load_imported(model_dir, card, spec, registry, verify)
    else:
        model = build_model(spec, registry)
        load_weights(model, weights, spec)
    model.meta = {**card, "path": str(model_dir), "weights_sha256": digest}
    return model.to(device).eval()


def load_weights(model: TrendModel, weights: Path, spec: ModelSpec) -> None:
    """Load safetensors weights into ``model``; any mismatch is a ModelFileError naming the file."""
    try:
        state = load_file(str(weights))
    except Exception as exc:  # safetensors raises its own error types for a malformed header
        raise ModelFileError(f"{weights} is not a readable safetensors file ({exc}); retrain or re-import the model") from None
    expected = model.state_dict()
    for name, tensor in state.items():
        if name in expected and tensor.dtype != expected[name].dtype:
            raise ModelFileError(
                f"{weights}: tensor {name!r} is {tensor.dtype}, the model needs {expected[name].dtype}; "
                "the file is corrupt or was edited; retrain or re-import the model"
            )
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shapes that do not fit, e.g. 5 classes in the card and 10 in the weights
        first = str(exc).strip().splitlines()[-1].strip()
        raise ModelFileError(f"{weights} does not fit the spec in {CARD} (arch {spec.arch!r}): {first}") from None
    if missing or unexpected:
        raise ModelFileError(
            f"{weights} does not fit architecture {spec.arch!r}: missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}"
        )


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; ``cuda`` without a GPU is a usage error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but no CUDA device is available; use --device cpu or auto")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise UsageError(f"unknown device {device!r}; use auto, cpu or cuda")
    return torch.device(device)


def state_digest(model: torch.nn.Module) -> str:
    """sha256 over a model's state dict (names and exact values), for models not read from disk."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def load_models(models: Sequence[TrendModel | str | Path], device: str | torch.device = "cpu") -> list[TrendModel]:
    """Model directories (or loaded TrendModels) as eval-mode models on ``device``, each with ``.meta``."""
    if not models:
        raise UsageError("no model given; pass --model DIR (several for an ensemble or a matrix)")
    out = []
    for m in models:
        if isinstance(m, TrendModel):
            if not m.meta.get("weights_sha256"):  # an in-memory model: identify it by its state
                m.meta = {**m.meta, "weights_sha256": state_digest(m)}
            out.append(m.to(device).eval())
        elif isinstance(m, (str, Path)):
            out.append(load_model(m, device))
        else:
            raise UsageError(f"a model is a model directory or a TrendModel, got {type(m).__name__}")
    return out


def check_compatible(models: Sequence[TrendModel], names: Sequence[str] | None = None) -> None:
    """Raise IncompatibleModelsError unless all models share dataset, input shape and classes."""
    if not models:
        raise UsageError("no models given; pass --model DIR (twice or more) or --models-dir DIR")
    names = list(names) if names is not None else [m.name for m in models]
    ref, ref_name = models[0].spec, names[0]
    for m, name in zip(models[1:], names[1:]):
        spec = m.spec
        if spec.dataset != ref.dataset:
            raise IncompatibleModelsError(
                f"{name} was trained on {spec.dataset} but {ref_name} on {ref.dataset}; these models must share one dataset"
            )
        if tuple(spec.input_shape) != tuple(ref.input_shape):
            raise IncompatibleModelsError(
                f"{name} takes inputs of shape {tuple(spec.input_shape)} but {ref_name} {tuple(ref.input_shape)}; "
                "these models must share one input shape"
            )
        if spec.num_classes != ref.num_classes:
            raise IncompatibleModelsError(
                f"{name} has {spec.num_classes} classes but {ref_name} {ref.num_classes}; these models must share one label set"
            )
