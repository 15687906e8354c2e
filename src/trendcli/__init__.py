"""trendcli: transferability-based robust ensemble design (TREND).

The public API, one importable function per stage (STYLE.md section 1)::

    import trendcli
    model = trendcli.train(trendcli.TrainConfig(arch="smallcnn", epochs=1), "runs/models/fp")
    model = trendcli.load_model("runs/models/fp")
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> module that defines it; imported on first use so `import trendcli` stays light.
_API = {
    "hookimpl": "hookspecs",
    "TrendError": "errors",
    "UsageError": "errors",
    "ModelSpec": "spec",
    "model_id": "spec",
    "parse_model_id": "spec",
    "TrendModel": "model",
    "build_model": "zoo",
    "load_model": "zoo",
    "save_model": "zoo",
    "TrainConfig": "train",
    "train": "train",
    "get_registry": "registry",
    "load_split": "data",
    "get_dataset": "data",
    "attack": "attack",
    "AdvStore": "store",
    "compute_matrix": "matrix",
    "TransferMatrix": "matrix",
    "sweep": "sweep",
    "Ensemble": "ensemble",
    "design": "design",
    "evaluate": "evaluate",
    "export_ensemble": "export",
    "OnnxEnsemble": "infer",
    "run_study": "study",
    "write_report": "report",
}

__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'trendcli' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
