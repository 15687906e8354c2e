"""Tiny Fashion-MNIST classifiers for the attack tests, trained once per session."""

from __future__ import annotations

import contextlib
import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

FMNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FMNIST_MEAN, FMNIST_STD = (0.2860,), (0.3530,)
N_TRAIN = 5000


@contextlib.contextmanager
def one_thread():
    """One intra-op thread: the machine's two cores are shared, and these models are tiny."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True, scope="module")
def _one_thread_per_module():
    with one_thread():
        yield


def _idx(name: str, offset: int) -> np.ndarray:
    with gzip.open(FMNIST_DIR / name, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def load_fmnist(split: str, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``count`` images of a split as float [count, 1, 28, 28] in [0, 1], labels int64."""
    prefix = "train" if split == "train" else "t10k"
    if not (FMNIST_DIR / f"{prefix}-images-idx3-ubyte.gz").exists():
        pytest.skip("Fashion-MNIST not installed at /usr/share/datasets/fashion-mnist")
    images = _idx(f"{prefix}-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)[:count]
    labels = _idx(f"{prefix}-labels-idx1-ubyte.gz", 8)[:count]
    return torch.from_numpy(images.astype(np.float32) / 255.0), torch.from_numpy(labels.astype(np.int64))


def tiny_net() -> nn.Module:
    """Two 3x3 conv + ReLU + 2x2 max-pool stages and a linear classifier (~9k parameters)."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 7 * 7, 10),
    )


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int, epochs: int = 1) -> nn.Module:
    """Adam, batch 100, a fixed shuffle per seed; returns the model in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(100):
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    opt.zero_grad(set_to_none=True)
    return model.eval()


def trained_tiny(seed: int, train: tuple[torch.Tensor, torch.Tensor]) -> nn.Module:
    """A tiny net on [0, 1] images, initialised and shuffled with ``seed``."""
    torch.manual_seed(seed)
    with one_thread():
        return fit(tiny_net(), *train, seed=seed)


def correct_subset(model: nn.Module, x: torch.Tensor, y: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``count`` images the model classifies correctly."""
    with torch.no_grad():
        ok = model(x).argmax(1) == y
    return x[ok][:count], y[ok][:count]


@pytest.fixture(scope="session")
def fmnist_train() -> tuple[torch.Tensor, torch.Tensor]:
    return load_fmnist("train", N_TRAIN)


@pytest.fixture(scope="session")
def fmnist_test() -> tuple[torch.Tensor, torch.Tensor]:
    return load_fmnist("test", 1000)


@pytest.fixture(scope="session")
def tiny_model(fmnist_train) -> nn.Module:
    """A tiny CNN trained on 5k Fashion-MNIST images for 1 epoch (about 75% test accuracy)."""
    return trained_tiny(0, fmnist_train)


@pytest.fixture(scope="session")
def batch(tiny_model, fmnist_test) -> tuple[torch.Tensor, torch.Tensor]:
    """64 test images the tiny model classifies correctly (64: a power of two, so a mean loss
    is an exact rescaling of a summed one)."""
    x, y = correct_subset(tiny_model, *fmnist_test, 64)
    assert len(x) == 64
    return x, y


@pytest.fixture(scope="session")
def three_models(fmnist_train) -> list[nn.Module]:
    """Three tiny CNNs from different seeds (an ensemble)."""
    return [trained_tiny(seed, fmnist_train) for seed in (1, 2, 3)]


def _success_rate(model: nn.Module, x_adv: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x_adv).argmax(1) != y).float().mean())


@pytest.fixture(scope="session")
def success_rate():
    """success_rate(model, x_adv, y): the share of images the model misclassifies."""
    return _success_rate


@pytest.fixture(scope="session")
def quantized_model(fmnist_train, fmnist_test):
    """quantized_model(name) -> (TrendModel with input quantizer ``name`` from the registry,
    trained for 1 epoch; 64 test images it classifies correctly)."""
    from trendcli.zoo.model import TrendModel
    from trendcli.registry import get_registry
    from trendcli.zoo.spec import ModelSpec

    cache: dict[str, tuple[nn.Module, torch.Tensor, torch.Tensor]] = {}

    def build(name: str):
        if name not in cache:
            spec = ModelSpec(
                arch="tiny", dataset="fashion_mnist", in_channels=1, image_size=28, num_classes=10,
                mean=FMNIST_MEAN, std=FMNIST_STD, input_quant=name,
            )
            quantizer = get_registry().factory("input quantizer", name)()
            torch.manual_seed(7)
            with one_thread():
                model = fit(TrendModel(spec, tiny_net(), quantizer), *fmnist_train, seed=7)
            x, y = correct_subset(model, *fmnist_test, 64)
            cache[name] = (model, x, y)
        return cache[name]

    return build
