"""Built-in datasets, registered through the trendcli entry-point group like any plugin."""

from __future__ import annotations

from typing import Any, Callable

from trendcli.datasets.cifar import cifar10, cifar100
from trendcli.datasets.fashion_mnist import FashionMNIST
from trendcli.datasets.imagenet import ImageNet
from trendcli.hookspecs import hookimpl


@hookimpl
def trend_datasets() -> dict[str, Callable[..., Any]]:
    """fashion_mnist, cifar10, cifar100 and imagenet."""
    return {"fashion_mnist": FashionMNIST, "cifar10": cifar10, "cifar100": cifar100, "imagenet": ImageNet}
