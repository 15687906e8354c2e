"""Models a user brings, built by the tests themselves: small MLPs trained with plain torch on
Fashion-MNIST, imported white-box (a factory in a temporary package) or black-box (an ONNX file
exported by torch.onnx, run in onnxruntime)."""

from __future__ import annotations

import contextlib
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Iterator

import torch
from safetensors.torch import save_file
from torch import nn

from trendcli.data import load_split
from trendcli.zoo.importing import import_model

MEAN, STD = 0.2860, 0.3530
COMMON = dict(dataset="fashion_mnist", mean=[MEAN], std=[STD], limit_test=1000)

PACKAGE = '''
from torch import nn


def mlp(hidden=32):
    return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))
'''


def train_zscored(net: nn.Module, seed: int, steps: int = 120) -> nn.Module:
    """``net`` trained for ``steps`` Adam steps on batches of 128 z-scored training images, in eval mode."""
    data, idx = load_split("fashion_mnist", "train")
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x, y = data.batch(idx[torch.randint(len(idx), (128,), generator=g)])
        loss = nn.functional.cross_entropy(net((x - MEAN) / STD), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def train_mlp(seed: int, hidden: int) -> nn.Module:
    """The package's MLP (initialized from ``seed``) trained by :func:`train_zscored`."""
    from byo_models import mlp

    torch.manual_seed(seed)
    return train_zscored(mlp(hidden), seed)


@contextlib.contextmanager
def byo_package(root: Path) -> Iterator[Path]:
    """``byo_models`` (the MLP factory) importable from ``root`` while the context lasts."""
    (root / "byo_models").mkdir(exist_ok=True)
    (root / "byo_models" / "__init__.py").write_text(textwrap.dedent(PACKAGE))
    sys.path.insert(0, str(root))
    try:
        yield root
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("byo_models", None)


def import_white_box(root: Path, out: Path, seed: int, hidden: int) -> Path:
    """A trained MLP saved as safetensors and imported through the factory as ``out`` (id: its name)."""
    save_file(train_mlp(seed, hidden).state_dict(), str(root / f"{out.name}.safetensors"))
    import_model("byo_models:mlp", out, checkpoint=root / f"{out.name}.safetensors", factory_args={"hidden": hidden},
                 name=out.name, **COMMON)
    return out


def import_black_box(root: Path, out: Path, seed: int, hidden: int) -> tuple[Path, Path]:
    """A trained MLP exported to ONNX (dynamic batch) and imported black-box; (member dir, ONNX file)."""
    onnx_path = root / f"{out.name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(train_mlp(seed, hidden), (torch.zeros(2, 1, 28, 28),), str(onnx_path), dynamo=False,
                          input_names=["x"], dynamic_axes={"x": {0: "n"}})
    import_model(onnx_path, out, black_box=True, **COMMON)
    return out, onnx_path
