"""torchvision's ImageNet models (``tv_*``), optionally with weights from the local torch hub cache.

The definitions are torchvision's, unchanged except that ``in_channels != 3`` replaces the first
conv and ``num_classes != 1000`` replaces the final classifier (``tv_densenet121`` also has its
last ReLU as a module, see :mod:`.densenet`). trendcli never downloads: with ``pretrained=True``
the weights torchvision would fetch (the ``DEFAULT`` entry of the model's ``Weights`` enum) are
read from ``torch.hub.get_dir()/checkpoints/<file name of the weights' URL>`` — where
torchvision itself caches them — with ``torch.load(..., weights_only=True)``.

With pretrained weights and ``in_channels != 3`` the new first conv starts from the pretrained
RGB kernel: summed over RGB for one channel (a grey image then gives what the RGB net gives on
that image repeated in R, G and B); for other counts the RGB kernels are repeated cyclically
and scaled by 3 / in_channels. The minimum image size is torchvision's ``meta["min_size"]``
(the five 2x2 pools of VGG need 32, DenseNet's stem and three transitions need 29).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision import models
from torchvision.models import WeightsEnum

from trendcli.errors import ModelFileError
from trendcli.architectures.arguments import check_arguments
from trendcli.architectures.densenet import BLOCK_CONFIG, GROWTH_RATE, INIT_FEATURES, ModuleReluDenseNet


def _densenet121(num_classes: int) -> nn.Module:
    return ModuleReluDenseNet(GROWTH_RATE, BLOCK_CONFIG, INIT_FEATURES, num_classes=num_classes)


@dataclass(frozen=True)
class TorchvisionModel:
    """How to build one tv_ model: torchvision builder, weights, and the layers that get replaced."""

    build: Callable[[int], nn.Module]  # num_classes -> model with random weights
    weights: WeightsEnum
    first_conv: str  # dotted module path
    classifier: str  # dotted module path


MODELS: dict[str, TorchvisionModel] = {
    "tv_resnet18": TorchvisionModel(
        lambda n: models.resnet18(weights=None, num_classes=n), models.ResNet18_Weights.DEFAULT, "conv1", "fc"
    ),
    "tv_resnet34": TorchvisionModel(
        lambda n: models.resnet34(weights=None, num_classes=n), models.ResNet34_Weights.DEFAULT, "conv1", "fc"
    ),
    "tv_resnet101": TorchvisionModel(
        lambda n: models.resnet101(weights=None, num_classes=n), models.ResNet101_Weights.DEFAULT, "conv1", "fc"
    ),
    "tv_vgg11": TorchvisionModel(
        lambda n: models.vgg11(weights=None, num_classes=n), models.VGG11_Weights.DEFAULT, "features.0", "classifier.6"
    ),
    "tv_vgg19": TorchvisionModel(
        lambda n: models.vgg19(weights=None, num_classes=n), models.VGG19_Weights.DEFAULT, "features.0", "classifier.6"
    ),
    "tv_densenet121": TorchvisionModel(
        _densenet121, models.DenseNet121_Weights.DEFAULT, "features.conv0", "classifier"
    ),
    "tv_wide_resnet50_2": TorchvisionModel(
        lambda n: models.wide_resnet50_2(weights=None, num_classes=n),
        models.Wide_ResNet50_2_Weights.DEFAULT,
        "conv1",
        "fc",
    ),
}

# Old DenseNet checkpoints name layers 'norm.1', 'conv.2', ...; the modules are now 'norm1', 'conv2'.
_OLD_DENSE_KEY = re.compile(r"(denselayer\d+\.(?:norm|relu|conv))\.([12])\.")


def weights_file(arch: str) -> Path:
    """Where the pretrained weights of ``arch`` must be: torch hub's checkpoints directory."""
    url = MODELS[arch].weights.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def rename_old_densenet_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map legacy DenseNet keys (``...denselayer1.norm.1.weight``) to current ones (``...norm1.weight``)."""
    return {_OLD_DENSE_KEY.sub(r"\1\2.", k): v for k, v in state.items()}


def load_pretrained(arch: str, model: nn.Module) -> None:
    """Load the cached torchvision weights of ``arch`` into ``model`` (1000 classes, 3 channels)."""
    path = weights_file(arch)
    if not path.is_file():
        raise ModelFileError(
            f"pretrained weights for {arch} not found: put {path.name} (from {MODELS[arch].weights.url}) "
            f"at {path}; trendcli never downloads"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a corrupt or foreign file
        raise ModelFileError(f"{path} is not a readable PyTorch state dict ({type(e).__name__}); replace it") from e
    if not isinstance(state, dict):
        raise ModelFileError(f"{path} holds a {type(state).__name__}, not a state dict; replace it")
    state = rename_old_densenet_keys(state)
    expected = model.state_dict()
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    wrong_shape = sorted(k for k in expected.keys() & state.keys() if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong_shape:
        first = (missing or unexpected or wrong_shape)[0]
        raise ModelFileError(
            f"{path} does not hold {arch} weights ({len(missing)} missing, {len(unexpected)} unexpected, "
            f"{len(wrong_shape)} mis-shaped tensors, e.g. {first!r}); replace it with {MODELS[arch].weights.url}"
        )
    model.load_state_dict(state)


def _replace(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(model.get_submodule(parent), name, module)


def _first_conv_for(old: nn.Conv2d, in_channels: int, pretrained: bool) -> nn.Conv2d:
    new = nn.Conv2d(
        in_channels,
        old.out_channels,
        kernel_size=old.kernel_size,
        stride=old.stride,
        padding=old.padding,
        bias=old.bias is not None,
    )
    with torch.no_grad():
        if pretrained:
            rgb = old.weight
            if in_channels == 1:
                new.weight.copy_(rgb.sum(dim=1, keepdim=True))
            else:
                idx = torch.arange(in_channels) % rgb.shape[1]
                new.weight.copy_(rgb[:, idx] * (rgb.shape[1] / in_channels))
            if old.bias is not None:
                new.bias.copy_(old.bias)
        else:
            nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
            if new.bias is not None:
                nn.init.zeros_(new.bias)
    return new


def torchvision_model(
    arch: str, in_channels: int, num_classes: int, image_size: int, width: float = 1.0, pretrained: bool = False
) -> nn.Module:
    """Build the torchvision ImageNet model ``arch`` (one of :data:`MODELS`)."""
    entry = MODELS[arch]
    check_arguments(
        arch,
        in_channels,
        num_classes,
        image_size,
        width,
        pretrained,
        min_image_size=entry.weights.meta["min_size"][0],
        has_width=False,
        has_pretrained=True,
    )
    imagenet_classes = len(entry.weights.meta["categories"])
    model = entry.build(imagenet_classes if pretrained else num_classes)
    if pretrained:
        load_pretrained(arch, model)
    if in_channels != 3:
        _replace(model, entry.first_conv, _first_conv_for(model.get_submodule(entry.first_conv), in_channels, pretrained))
    if pretrained and num_classes != imagenet_classes:
        old = model.get_submodule(entry.classifier)
        _replace(model, entry.classifier, nn.Linear(old.in_features, num_classes))
    return model
