"""Built-in architectures, registered through the trendcli entry-point group like any plugin."""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from trendcli.architectures import densenet, resnet20, resnet_cifar, smallcnn, torchvision_imagenet, vgg, wide_resnet
from trendcli.hookspecs import hookimpl


def architectures() -> dict[str, Callable[..., Any]]:
    """Every built-in architecture: ``{name: factory(in_channels, num_classes, image_size, width, pretrained)}``."""
    out: dict[str, Callable[..., Any]] = {
        "smallcnn": smallcnn.smallcnn,
        "resnet20": resnet20.resnet20,
        "densenet121": densenet.densenet121,
        "wrn28_10": wide_resnet.wrn28_10,
        "wrn16_4": wide_resnet.wrn16_4,
    }
    out.update({name: partial(resnet_cifar.cifar_resnet, name) for name in resnet_cifar.CONFIGS})
    out.update({name: partial(vgg.cifar_vgg, name) for name in vgg.CONFIGS})
    out.update({name: partial(torchvision_imagenet.torchvision_model, name) for name in torchvision_imagenet.MODELS})
    return out


@hookimpl
def trend_architectures() -> dict[str, Callable[..., Any]]:
    """The built-in architectures (see :func:`architectures`)."""
    return architectures()
