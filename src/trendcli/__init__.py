"""trendcli: transferability-based robust ensemble design (TREND).

The public API, one importable function per stage::

    import trendcli
    model = trendcli.train(trendcli.TrainConfig(arch="smallcnn", epochs=1), "runs/models/fp")
    model = trendcli.load_model("runs/models/fp")
    result = trendcli.attack(["runs/models/fp"], "pgd", {"eps": 8 / 255}, limit=1000)

Names resolve on first access (``_SUBMOD_ATTRS`` and ``__getattr__``), so ``import trendcli``
imports no torch; the imports under ``TYPE_CHECKING`` give type checkers and editors the same
names statically (a test checks that the three lists agree).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: module -> the public names it provides.
_SUBMOD_ATTRS: dict[str, list[str]] = {
    "trendcli.adversarial.generate": ["AttackResult", "attack"],
    "trendcli.adversarial.store": ["AdvSet", "AdvStore"],
    "trendcli.data": ["get_dataset", "load_split"],
    "trendcli.deploy.export": ["export_ensemble", "run_export"],
    "trendcli.deploy.runtime": ["OnnxEnsemble"],
    "trendcli.ensemble.evaluation": ["EvalConfig", "evaluate"],
    "trendcli.ensemble.members": ["Ensemble"],
    "trendcli.ensemble.selection": ["design", "design_from_matrix", "run_design"],
    "trendcli.errors": ["TrendError", "UsageError"],
    "trendcli.hookspecs": ["hookimpl"],
    "trendcli.registry": ["get_registry", "lazy"],
    "trendcli.report.html": ["write_report"],
    "trendcli.study": ["load_study", "run_study"],
    "trendcli.transfer.audit": ["run_audit"],
    "trendcli.transfer.matrix": ["TransferMatrix", "compute_matrix", "run_matrix"],
    "trendcli.transfer.sweep": ["run_sweep", "sweep"],
    "trendcli.zoo.files": ["build_model", "load_model", "save_model"],
    "trendcli.zoo.importing": ["import_model"],
    "trendcli.zoo.model": ["TrendModel"],
    "trendcli.zoo.spec": ["ModelSpec", "model_id", "parse_model_id"],
    "trendcli.zoo.training": ["TrainConfig", "train"],
}

#: public name -> the module that defines it.
_ATTR_MODULE: dict[str, str] = {name: module for module, names in _SUBMOD_ATTRS.items() for name in names}

__all__ = sorted(["__version__", *_ATTR_MODULE])


def __getattr__(name: str) -> Any:
    module = _ATTR_MODULE.get(name)
    if module is None:
        raise AttributeError(f"module 'trendcli' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # resolved once; later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover
    from trendcli.adversarial.generate import AttackResult, attack
    from trendcli.adversarial.store import AdvSet, AdvStore
    from trendcli.data import get_dataset, load_split
    from trendcli.deploy.export import export_ensemble, run_export
    from trendcli.deploy.runtime import OnnxEnsemble
    from trendcli.ensemble.evaluation import EvalConfig, evaluate
    from trendcli.ensemble.members import Ensemble
    from trendcli.ensemble.selection import design, design_from_matrix, run_design
    from trendcli.errors import TrendError, UsageError
    from trendcli.hookspecs import hookimpl
    from trendcli.registry import get_registry, lazy
    from trendcli.report.html import write_report
    from trendcli.study import load_study, run_study
    from trendcli.transfer.audit import run_audit
    from trendcli.transfer.matrix import TransferMatrix, compute_matrix, run_matrix
    from trendcli.transfer.sweep import run_sweep, sweep
    from trendcli.zoo.files import build_model, load_model, save_model
    from trendcli.zoo.importing import import_model
    from trendcli.zoo.model import TrendModel
    from trendcli.zoo.spec import ModelSpec, model_id, parse_model_id
    from trendcli.zoo.training import TrainConfig, train
