"""trendcli: transferability-based robust ensemble design (TREND).

The public API, one importable function per stage::

    import trendcli
    model = trendcli.zoo.training(trendcli.TrainConfig(arch="smallcnn", epochs=1), "runs/models/fp")
    model = trendcli.load_model("runs/models/fp")
    result = trendcli.adversarial.generate("runs/models/fp", "pgd", {"eps": 8 / 255}, limit=1000)
"""

from __future__ import annotations

__version__ = "0.1.0"

# Imported eagerly on purpose: several stage functions share their module's name
# (trendcli.zoo.training, trendcli.adversarial.generate, ...), and a lazily resolved name would be shadowed by the
# submodule as soon as anything imports it.
from trendcli.adversarial.generate import AttackResult, attack
from trendcli.data import get_dataset, load_split
from trendcli.ensemble.selection import design, design_from_matrix
from trendcli.ensemble.members import Ensemble
from trendcli.errors import TrendError, UsageError
from trendcli.ensemble.evaluation import EvalConfig, evaluate
from trendcli.deploy.export import export_ensemble
from trendcli.hookspecs import hookimpl
from trendcli.deploy.runtime import OnnxEnsemble
from trendcli.transfer.matrix import TransferMatrix, compute_matrix
from trendcli.zoo.model import TrendModel
from trendcli.registry import get_registry
from trendcli.report.html import write_report
from trendcli.zoo.spec import ModelSpec, model_id, parse_model_id
from trendcli.adversarial.store import AdvSet, AdvStore
from trendcli.study import load_study, run_study
from trendcli.transfer.sweep import sweep
from trendcli.zoo.training import TrainConfig, train
from trendcli.zoo.files import build_model, load_model, save_model

__all__ = [
    "AdvSet", "AdvStore", "AttackResult", "Ensemble", "EvalConfig", "ModelSpec", "OnnxEnsemble", "TrainConfig",
    "TransferMatrix", "TrendError", "TrendModel", "UsageError", "__version__", "attack", "build_model",
    "compute_matrix", "design", "design_from_matrix", "evaluate", "export_ensemble", "get_dataset", "get_registry",
    "hookimpl", "load_model", "load_split", "load_study", "model_id", "parse_model_id", "run_study", "save_model",
    "sweep", "train", "write_report",
]
