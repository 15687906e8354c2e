"""SmallCNN: shapes through the layers, and its one-epoch Fashion-MNIST accuracy."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from trendcli.architectures.smallcnn import SmallCNN, smallcnn

FMNIST = Path("/usr/share/datasets/fashion-mnist")


def test_28x28_reaches_the_classifier_as_7x7_without_extra_pooling():
    # 28 -> pool -> 14 -> pool -> 7: already the classifier's 7x7, so no adaptive pooling.
    net = smallcnn(in_channels=1, num_classes=10, image_size=28)
    assert not any(isinstance(m, nn.AdaptiveAvgPool2d) for m in net.modules())
    assert net.features(torch.zeros(2, 1, 28, 28)).shape == (2, 32, 7, 7)
    assert net.classifier.in_features == 32 * 7 * 7


def test_other_sizes_are_pooled_to_7x7():
    # 32 -> 16 -> 8, averaged to 7x7 so the classifier is the same as for 28x28.
    net = smallcnn(in_channels=3, num_classes=10, image_size=32, width=0.5)
    assert net.features(torch.zeros(2, 3, 32, 32)).shape == (2, 16, 7, 7)


def test_width_scales_every_conv():
    net = SmallCNN(in_channels=1, num_classes=10, width=2.0)
    assert [m.out_channels for m in net.modules() if isinstance(m, nn.Conv2d)] == [32, 64, 64]


def _idx(name: str, offset: int) -> np.ndarray:
    with gzip.open(FMNIST / name) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


@pytest.mark.slow
@pytest.mark.skipif(not (FMNIST / "train-images-idx3-ubyte.gz").exists(), reason="Fashion-MNIST not installed")
def test_one_sgd_epoch_on_fashion_mnist_reaches_85_percent():
    # One thread: on a shared 2-core machine a second one mostly spin-waits (about 11 CPU s).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _train_one_epoch_and_check()
    finally:
        torch.set_num_threads(threads)


def _train_one_epoch_and_check() -> None:
    torch.manual_seed(0)
    x = torch.from_numpy(_idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28).copy()).float() / 255
    y = torch.from_numpy(_idx("train-labels-idx1-ubyte.gz", 8).astype(np.int64))
    xt = torch.from_numpy(_idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28).copy()).float() / 255
    yt = torch.from_numpy(_idx("t10k-labels-idx1-ubyte.gz", 8).astype(np.int64))
    mean, std = 0.2860, 0.3530  # Fashion-MNIST train-set pixel mean / std
    x, xt = (x - mean) / std, (xt - mean) / std
    keep = torch.randperm(len(x))[:54_000]  # the 90% training part of a 90/10 split
    x, y = x[keep], y[keep]
    net = smallcnn(in_channels=1, num_classes=10, image_size=28)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    net.train()
    start = time.process_time()
    for i in range(0, len(x), 128):
        loss = nn.functional.cross_entropy(net(x[i : i + 128]), y[i : i + 128])
        opt.zero_grad()
        loss.backward()
        opt.step()
    cpu_seconds = time.process_time() - start
    net.eval()
    with torch.inference_mode():
        acc = (net(xt).argmax(1) == yt).float().mean().item()
    assert acc >= 0.85, f"accuracy {acc:.3f} after one epoch ({cpu_seconds:.0f} CPU s)"
