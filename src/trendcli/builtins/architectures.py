"""Built-in architectures, registered through the trendcli entry-point group like any plugin.

Every value is a :func:`~trendcli.registry.lazy` reference: listing the names imports no torch.
"""

from __future__ import annotations

from trendcli.hookspecs import hookimpl
from trendcli.registry import Lazy, lazy

_PKG = "trendcli.architectures"

#: CIFAR-style ResNets built by resnet_cifar.cifar_resnet(name, ...) (its CONFIGS).
CIFAR_RESNETS = {"resnet18": "ResNet-18", "resnet34": "ResNet-34", "resnet50": "ResNet-50", "resnet101": "ResNet-101"}
#: CIFAR-form VGGs built by vgg.cifar_vgg(name, ...) (its CONFIGS).
CIFAR_VGGS = [f"vgg{depth}{bn}" for bn in ("", "_bn") for depth in (11, 13, 16, 19)]
#: torchvision ImageNet models built by torchvision_imagenet.torchvision_model(name, ...) (its MODELS).
TORCHVISION = ["tv_resnet18", "tv_resnet34", "tv_resnet101", "tv_vgg11", "tv_vgg19", "tv_densenet121", "tv_wide_resnet50_2"]


def architectures() -> dict[str, Lazy]:
    """Every built-in architecture: ``{name: factory(in_channels, num_classes, image_size, width, pretrained)}``."""
    out = {
        "smallcnn": lazy(f"{_PKG}.smallcnn:smallcnn", "SmallCNN: two conv blocks and two 2x2 max-pools (any image >= 4 px)"),
        "resnet20": lazy(f"{_PKG}.resnet20:resnet20", "CIFAR ResNet-20 with option A (zero-pad) shortcuts"),
        "densenet121": lazy(f"{_PKG}.densenet:densenet121", "CIFAR-form DenseNet-121 (images of at least 8x8)"),
        "wrn28_10": lazy(f"{_PKG}.wide_resnet:wrn28_10", "Wide ResNet WRN-28-10 (36.5M parameters for 10 classes)"),
        "wrn16_4": lazy(f"{_PKG}.wide_resnet:wrn16_4", "Wide ResNet WRN-16-4 (2.7M parameters for 10 classes)"),
    }
    for name, title in CIFAR_RESNETS.items():
        out[name] = lazy(f"{_PKG}.resnet_cifar:cifar_resnet", f"CIFAR-style {title} (3x3 stride-1 stem, no max-pool)", name)
    for name in CIFAR_VGGS:
        bn = " with batch norm" if name.endswith("_bn") else ""
        out[name] = lazy(f"{_PKG}.vgg:cifar_vgg", f"CIFAR-form VGG-{name[3:5]}{bn} (conv stack, one linear layer)", name)
    for name in TORCHVISION:
        out[name] = lazy(
            f"{_PKG}.torchvision_imagenet:torchvision_model", f"torchvision's {name[3:]} (pretrained from the local hub cache)", name
        )
    return out


@hookimpl
def trend_architectures() -> dict[str, Lazy]:
    """The built-in architectures (see :func:`architectures`)."""
    return architectures()
