"""The public API: every documented name resolves to the callable, not a same-named submodule."""

from __future__ import annotations

import importlib
import inspect

import trendcli


def test_stage_functions_are_functions_even_after_submodule_imports():
    modules = ["trendcli.zoo.training", "trendcli.adversarial.generate", "trendcli.transfer.sweep",
               "trendcli.ensemble.selection", "trendcli.ensemble.evaluation"]
    for module in modules:
        importlib.import_module(module)
    for name in ("train", "attack", "sweep", "design", "evaluate"):
        assert inspect.isfunction(getattr(trendcli, name)), name


def test_all_names_exist():
    for name in trendcli.__all__:
        assert getattr(trendcli, name) is not None, name
