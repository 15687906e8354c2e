"""Built-in datasets, registered through the trendcli entry-point group like any plugin.

Every value is a :func:`~trendcli.registry.lazy` reference: listing the names imports no torch.
"""

from __future__ import annotations

from trendcli.hookspecs import hookimpl
from trendcli.registry import Lazy, lazy


@hookimpl
def trend_datasets() -> dict[str, Lazy]:
    """fashion_mnist, cifar10, cifar100 and imagenet."""
    return {
        "fashion_mnist": lazy("trendcli.datasets.fashion_mnist:FashionMNIST", "Fashion-MNIST, 28x28 grey, 10 classes"),
        "cifar10": lazy("trendcli.datasets.cifar:cifar10", "CIFAR-10, 32x32 colour, 10 classes"),
        "cifar100": lazy("trendcli.datasets.cifar:cifar100", "CIFAR-100, 32x32 colour, 100 classes"),
        "imagenet": lazy("trendcli.datasets.imagenet:ImageNet", "ImageNet from ImageFolder trees (never downloaded)"),
    }
