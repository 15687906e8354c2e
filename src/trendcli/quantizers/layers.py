"""Weight and activation quantization for any network (docs/method.md, "Weight and activation
quantization", "Layers")."""

from __future__ import annotations

from typing import Any, Callable

from torch import nn
from torch.nn.utils import parametrize

WEIGHT_LAYERS = (nn.Conv2d, nn.Linear)


def _weight_layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, WEIGHT_LAYERS)]


def _is_full_precision(module: nn.Module) -> bool:
    return isinstance(module, nn.Identity)


def quantize_network(
    net: nn.Module,
    weight_quant: Callable[[], nn.Module] | None,
    act_quant: Callable[[], nn.Module] | None,
    quantize_first: bool = True,
) -> nn.Module:
    """Quantize ``net``'s weights and activations in place and return it.

    Weights: every nn.Conv2d / nn.Linear gets ``weight_quant()`` as a parametrization of its
    ``weight`` (the float weight stays the trained parameter, under
    ``parametrizations.weight.original`` in the state_dict), except the final classifier
    (the last such layer in registration order), which stays full precision, and, with
    ``quantize_first=False``, the first one (the stem conv; the authors' VGG choice).
    BatchNorm and biases stay full precision. A factory that returns ``nn.Identity`` (full
    precision) registers nothing.
    Activations: every nn.ReLU module is replaced by a fresh ``act_quant()`` (a factory that
    returns a plain ``nn.ReLU`` leaves the ReLUs as they are). ReLUs applied functionally
    (``F.relu``) are not modules and are not seen; trendcli's architectures use modules.
    ``None`` for either factory leaves that part full precision.
    """
    if weight_quant is not None:
        layers = _weight_layers(net)
        chosen = layers[:-1] if quantize_first else layers[1:-1]
        for layer in chosen:
            quantizer = weight_quant()
            if _is_full_precision(quantizer):
                break
            parametrize.register_parametrization(layer, "weight", quantizer)
    if act_quant is not None:
        relus = [
            (parent, child_name)
            for parent in net.modules()
            for child_name, child in parent.named_children()
            if isinstance(child, nn.ReLU)
        ]
        for parent, child_name in relus:
            replacement = act_quant()
            if type(replacement) is nn.ReLU:
                break
            setattr(parent, child_name, replacement)
    return net


def fold_weight_quantization(net: nn.Module) -> nn.Module:
    """Replace each parametrized weight by its quantized value, in place (before ONNX export).

    The forward is unchanged; the float "original" weights are dropped, so fold a copy when
    the network is still to be trained.
    """
    for module in net.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return net


def _label(module: nn.Module) -> str:
    name = getattr(module, "name", type(module).__name__)
    bits = getattr(module, "bits", None)
    return f"{name}{bits}" if bits is not None else str(name)


def describe_quantization(net: nn.Module) -> dict[str, Any]:
    """Counts for a model card: quantized and full-precision weight layers and activations.

    ``weight_quantizers`` / ``act_quantizers`` list the distinct quantizers as name + bits
    (e.g. ``dorefa4``). An activation quantizer is a module with ``role == "activation"``.
    Describe before ``fold_weight_quantization``: folded weights read as full precision.
    """
    layers = _weight_layers(net)
    weight_labels: set[str] = set()
    quantized_layers = 0
    for layer in layers:
        if parametrize.is_parametrized(layer, "weight"):
            quantized_layers += 1
            weight_labels.update(_label(p) for p in layer.parametrizations["weight"])
    act_modules = [m for m in net.modules() if getattr(m, "role", None) == "activation"]
    return {
        "weight_layers": len(layers),
        "quantized_weight_layers": quantized_layers,
        "full_precision_weight_layers": len(layers) - quantized_layers,
        "quantized_activations": len(act_modules),
        "relu_activations": sum(isinstance(m, nn.ReLU) for m in net.modules()),
        "weight_quantizers": sorted(weight_labels),
        "act_quantizers": sorted({_label(m) for m in act_modules}),
    }
