"""trendcli: transferability-based robust ensemble design (TREND).

The public API, one importable function per stage (STYLE.md section 1)::

    import trendcli
    model = trendcli.train(trendcli.TrainConfig(arch="smallcnn", epochs=1), "runs/models/fp")
    model = trendcli.load_model("runs/models/fp")
    result = trendcli.attack("runs/models/fp", "pgd", {"eps": 8 / 255}, limit=1000)
"""

from __future__ import annotations

__version__ = "0.1.0"

# Imported eagerly on purpose: several stage functions share their module's name
# (trendcli.train, trendcli.attack, ...), and a lazily resolved name would be shadowed by the
# submodule as soon as anything imports it.
from .attack import AttackResult, attack
from .data import get_dataset, load_split
from .design import design, design_from_matrix
from .ensemble import Ensemble
from .errors import TrendError, UsageError
from .evaluate import EvalConfig, evaluate
from .export import export_ensemble
from .hookspecs import hookimpl
from .infer import OnnxEnsemble
from .matrix import TransferMatrix, compute_matrix
from .model import TrendModel
from .registry import get_registry
from .report import write_report
from .spec import ModelSpec, model_id, parse_model_id
from .store import AdvSet, AdvStore
from .study import load_study, run_study
from .sweep import sweep
from .train import TrainConfig, train
from .zoo import build_model, load_model, save_model

__all__ = [
    "AdvSet", "AdvStore", "AttackResult", "Ensemble", "EvalConfig", "ModelSpec", "OnnxEnsemble", "TrainConfig",
    "TransferMatrix", "TrendError", "TrendModel", "UsageError", "__version__", "attack", "build_model",
    "compute_matrix", "design", "design_from_matrix", "evaluate", "export_ensemble", "get_dataset", "get_registry",
    "hookimpl", "load_model", "load_split", "load_study", "model_id", "parse_model_id", "run_study", "save_model",
    "sweep", "train", "write_report",
]
