"""Library versions recorded with every artifact."""

from __future__ import annotations

import importlib.metadata as md
import platform


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("trendcli", "torch", "torchvision", "numpy", "h5py", "safetensors", "onnx", "onnxruntime"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out
