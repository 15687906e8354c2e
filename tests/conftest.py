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


def sigint_default() -> None:
    """``preexec_fn`` of a child a test interrupts: SIGINT back to its default, whatever the test
    runner inherited (a shell starts background jobs with SIGINT ignored, and children keep that)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(autouse=True, scope="session")
def _threads():
    torch.set_num_threads(2)


CLONE_NEWNET = 0x40000000


def _isolate_network() -> bool:
    """Move this process into a new network namespace with only loopback (root only).

    Ray advertises the machine's own address even for nodes started on 127.0.0.1; in a
    namespace whose only interface is ``lo`` every socket a test opens stays on loopback.
    Subprocesses started afterwards inherit the namespace.
    """
    if os.geteuid() != 0 or os.environ.get("TREND_TEST_NETNS") == "0":
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        return False
    return subprocess.run(["ip", "link", "set", "lo", "up"], capture_output=True).returncode == 0


LOOPBACK_ONLY = {"isolated": False}


@pytest.fixture(autouse=True, scope="session")
def _loopback_only_network():
    LOOPBACK_ONLY["isolated"] = _isolate_network()
    yield


def needs_loopback_only_network() -> None:
    """Skip a test that starts network services unless the session runs in a loopback-only namespace."""
    if not LOOPBACK_ONLY["isolated"]:
        pytest.skip("starts Ray services: needs root to run them in a loopback-only network namespace")


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
