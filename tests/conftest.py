"""Shared fixtures: a fresh registry per test when asked, and Fashion-MNIST availability."""

from __future__ import annotations

import contextlib
import os
import subprocess
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


@contextlib.contextmanager
def mounted_tmpfs(path: Path, size: str = "4m"):
    """A small tmpfs at ``path`` (root only; the test is skipped elsewhere). Yields a remount(ro) helper."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root and mount(8) for a real read-only or full filesystem")

    def read_only() -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True, capture_output=True)

    try:
        yield read_only
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)
