"""Imported zoo members (``trend import``): how their networks are rebuilt when loaded.

A member imported from a Python factory, a TorchScript archive or an ONNX file is a
``TrendModel`` like a trained one: normalization (the user's statement, folded with the input
range into mean/std), the ``fp`` input quantizer, and a network: the user's network inside
:class:`ImportedNetwork`, which puts its logits into the dataset's class order. Its card has a
``source`` object (docs/formats.md, "Imported members") that says how to rebuild the network:

- ``factory``: ``package.module:function`` called with ``factory_args``; weights from
  ``model.safetensors``.
- ``torchscript``: ``network.torchscript`` (a copy of the archive) for the code; weights from
  ``model.safetensors``.
- ``onnx`` with ``white_box``: ``network.onnx`` converted again by onnx2torch; weights from
  ``model.safetensors``.
- ``onnx`` black-box: ``network.onnx`` run in onnxruntime (:mod:`trendcli.zoo.blackbox`); no
  safetensors, the card's ``weights`` names the ONNX file.
"""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from trendcli.errors import ModelFileError, UsageError
from trendcli.fsio import sha256_file
from trendcli.zoo.blackbox import OnnxRuntimeNetwork

#: The importer's version, recorded in every imported card.
IMPORTER = "trendcli-import/1"
KINDS = ("factory", "torchscript", "onnx")
#: The copy of the source file a member directory keeps, by kind (a factory is code on the path).
NETWORK_FILES = {"torchscript": "network.torchscript", "onnx": "network.onnx"}


class ImportedNetwork(nn.Module):
    """The user's network; ``class_index[c]`` is the output of the dataset's class c (None: the same order)."""

    def __init__(self, inner: nn.Module, class_index: Sequence[int] | None = None):
        super().__init__()
        self.inner = inner
        index = None if class_index is None else torch.tensor(list(class_index), dtype=torch.long)
        self.register_buffer("class_index", index, persistent=False)  # the card holds it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner(x)
        if isinstance(out, (tuple, list)):  # a converted graph with several outputs: the logits come first
            out = out[0]
        return out if self.class_index is None else out.index_select(1, self.class_index)


def resolve_factory(target: str) -> Callable[..., Any]:
    """The callable ``package.module:function`` names; UsageError saying why it is not importable."""
    module_name, sep, attribute = target.partition(":")
    if not (module_name and sep and attribute):
        raise UsageError(f"factory must look like 'package.module:function', got {target!r}")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            obj = getattr(obj, part)
    except ImportError as exc:
        raise UsageError(
            f"factory {target!r} is not importable ({exc}); install its package or put it on PYTHONPATH"
        ) from None
    except AttributeError:
        raise UsageError(f"factory {target!r} is not importable: {module_name} has no {attribute!r}") from None
    if not callable(obj):
        raise UsageError(f"factory {target!r} is a {type(obj).__name__}, not a callable")
    return obj


def call_factory(target: str, factory_args: dict[str, Any]) -> nn.Module:
    """``factory(**factory_args)``, checked to be an ``nn.Module``."""
    factory = resolve_factory(target)
    try:
        network = factory(**factory_args)
    except TypeError as exc:
        raise UsageError(f"factory {target!r} does not take factory_args {sorted(factory_args)}: {exc}") from None
    if not isinstance(network, nn.Module):
        raise UsageError(f"factory {target!r} returned a {type(network).__name__}, not a torch nn.Module")
    return network


def load_torchscript(path: Path) -> nn.Module:
    """A TorchScript archive on the CPU; anything else is a ModelFileError naming the file."""
    try:
        with warnings.catch_warnings():  # torch.jit's deprecation notice: the archive is the user's format
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # torch.jit.load raises RuntimeError or ValueError variants
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelFileError(f"{path} is not a TorchScript archive (torch.jit.load: {first})") from None


def convert_onnx(path: Path) -> nn.Module:
    """``onnx2torch.convert`` of ``path``; UsageError when onnx2torch is absent."""
    try:
        from onnx2torch import convert
    except ImportError:
        raise UsageError("white-box ONNX import needs onnx2torch: pip install 'trendcli[onnx2torch]'") from None
    import onnx

    return convert(onnx.load(str(path)))


def build_inner(source: dict[str, Any], model_dir: Path, label: str) -> nn.Module:
    """The user's network as the card's ``source`` describes it (weights still to be loaded)."""
    kind = source.get("kind")
    if kind == "factory":
        return call_factory(source["factory"], dict(source.get("factory_args") or {}))
    path = model_dir / NETWORK_FILES.get(kind, "")
    if kind == "torchscript":
        return load_torchscript(path)
    if kind == "onnx":
        return convert_onnx(path) if source.get("white_box") else OnnxRuntimeNetwork(path, label)
    raise ModelFileError(f"{model_dir}: unknown source kind {kind!r} in the card; known: {', '.join(KINDS)}")


def check_network_file(model_dir: Path, source: dict[str, Any]) -> None:
    """The kept copy of the source file must match the sha256 recorded at import."""
    name = NETWORK_FILES.get(source.get("kind"))
    if name is None:
        return
    path = model_dir / name
    if not path.is_file():
        raise ModelFileError(f"{model_dir} is not a complete imported model (needs {name}); re-import it")
    if sha256_file(path) != source.get("sha256"):
        raise ModelFileError(f"{path} does not match the sha256 in model.json; the file changed after import")


def load_imported(model_dir: Path, card: dict[str, Any], spec, registry, verify: bool):
    """The TrendModel of an imported member directory (called by ``trendcli.zoo.files.load_model``)."""
    from trendcli.registry import get_registry
    from trendcli.zoo.files import WEIGHTS, load_weights
    from trendcli.zoo.model import TrendModel

    source = card["source"]
    if not isinstance(source, dict):
        raise ModelFileError(f"{model_dir / 'model.json'}: 'source' must be a JSON object")
    if verify:
        check_network_file(model_dir, source)
    inner = build_inner(source, model_dir, str(card.get("id") or model_dir.name))
    network = ImportedNetwork(inner, source.get("class_index"))
    input_quant = (registry or get_registry()).factory("input quantizer", "fp")(per_image=False)
    model = TrendModel(spec, network, input_quant)
    if card.get("weights", WEIGHTS) == WEIGHTS:
        load_weights(model, model_dir / WEIGHTS, spec)
    return model
