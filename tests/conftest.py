"""Shared fixtures: a fresh registry per test when asked, and Fashion-MNIST availability."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

FMNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
needs_fmnist = pytest.mark.skipif(
    not (FMNIST_DIR / "train-images-idx3-ubyte.gz").exists(), reason="Debian dataset-fashion-mnist not installed"
)


@pytest.fixture(autouse=True, scope="session")
def _threads():
    torch.set_num_threads(2)
