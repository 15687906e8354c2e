"""The public API: every documented name resolves to the callable, lazily, and the lists agree."""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_mapping_all_and_type_checking_imports_agree():
    tree = ast.parse(Path(trendcli.__file__).read_text(encoding="utf-8"))
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    static = {(imp.module, alias.name) for imp in block.body if isinstance(imp, ast.ImportFrom) for alias in imp.names}
    mapped = {(module, name) for module, names in trendcli._SUBMOD_ATTRS.items() for name in names}
    assert static == mapped
    assert sorted(trendcli.__all__) == sorted(["__version__", *(name for _, name in mapped)])
    assert len(mapped) == len({name for _, name in mapped}), "a public name is mapped to two modules"


def test_public_names_are_defined_where_the_mapping_says():
    for module, names in trendcli._SUBMOD_ATTRS.items():
        for name in names:
            obj = getattr(trendcli, name)
            assert obj is getattr(importlib.import_module(module), name), name


def test_import_trendcli_imports_no_torch():
    code = "import sys, trendcli; print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'h5py', 'onnx'}))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert proc.stdout.strip() == "[]"


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        trendcli.no_such_name  # noqa: B018
