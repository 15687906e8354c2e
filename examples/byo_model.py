"""A model trained outside trendcli, for the README's "bring your own model" example.

Plain torch on Fashion-MNIST (the Debian files), no trendcli import: a small CNN that
normalizes its own input ((x - 0.5) / 0.5 on [0, 1] pixels), two Adam epochs on the first
20,000 training images, exported with torch.onnx with a dynamic batch axis.

    python examples/byo_model.py runs/byo/deployed.onnx
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np
import torch
from torch import nn

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def read_idx(path: Path, header: int) -> np.ndarray:
    """The bytes of a gzipped IDX file after its header."""
    return np.frombuffer(gzip.open(path).read(), np.uint8, offset=header)


class SelfNormalizingCNN(nn.Module):
    """Two conv blocks and a linear head; the input is [0, 1] pixels."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 7 * 7, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features((x - 0.5) / 0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the ONNX file to write")
    parser.add_argument("--data-dir", type=Path, default=FASHION_MNIST)
    args = parser.parse_args()
    torch.manual_seed(0)
    images = read_idx(args.data_dir / "train-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)[:20000]
    x = torch.tensor(images, dtype=torch.float32) / 255
    y = torch.tensor(read_idx(args.data_dir / "train-labels-idx1-ubyte.gz", 8)[:20000], dtype=torch.int64)
    net = SelfNormalizingCNN()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(2):
        order = torch.randperm(len(x))
        for start in range(0, len(x), 128):
            batch = order[start : start + 128]
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[batch]), y[batch]).backward()
            opt.step()
    net.eval()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(net, (torch.zeros(1, 1, 28, 28),), str(args.out), input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}}, opset_version=17, dynamo=False)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
