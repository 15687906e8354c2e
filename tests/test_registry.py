"""The plugin registry: loading, lookup, duplicates, and documented hooks."""

from __future__ import annotations

import inspect

import pytest

from trendcli import hookspecs
from trendcli.errors import DuplicateNameError, UnknownNameError
from trendcli.hookspecs import hookimpl
from trendcli.registry import KINDS, Registry, canonical, get_registry


class _PluginA:
    @hookimpl
    def trend_attacks(self):
        return {"shared_name": lambda: "a", "only_a": lambda: "a"}


class _PluginB:
    @hookimpl
    def trend_attacks(self):
        return {"shared_name": lambda: "b"}


def test_in_test_plugin_registers_on_a_fresh_manager():
    reg = Registry(load_entrypoints=False)
    reg.register(_PluginA(), name="plugin-a")
    assert reg.names("attack") == ["only_a", "shared_name"]
    entry = reg.get("attack", "only-a")  # hyphen accepted
    assert entry.plugin == "plugin-a" and entry.factory() == "a"


def test_duplicate_name_names_both_plugins():
    reg = Registry(load_entrypoints=False)
    reg.register(_PluginA(), name="plugin-a")
    reg.register(_PluginB(), name="plugin-b")
    with pytest.raises(DuplicateNameError) as exc:
        reg.entries()
    assert "plugin-a" in str(exc.value) and "plugin-b" in str(exc.value) and "shared_name" in str(exc.value)


def test_unknown_name_lists_the_known_ones():
    reg = Registry(load_entrypoints=False)
    reg.register(_PluginA(), name="plugin-a")
    with pytest.raises(UnknownNameError) as exc:
        reg.get("attack", "pdg")
    assert str(exc.value) == "unknown attack 'pdg'; known: only_a, shared_name"


def test_canonical_names():
    assert canonical("HT-FS") == "ht_fs"
    assert canonical(" cw-l2 ") == "cw_l2"


def test_every_hookspec_is_documented_and_has_a_kind():
    specs = [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("trend_")]
    assert sorted(specs) == sorted(KINDS.values())
    for name in specs:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert "factory" in doc or "rule" in doc, f"{name} docstring does not describe its contract"
        assert len(doc.splitlines()) >= 3, f"{name} is not documented"


def test_builtins_load_through_entry_points():
    reg = get_registry()
    builtin = {e.plugin for kind in KINDS for e in reg.entries()[kind].values()}
    assert "trendcli" in builtin
    for kind, expected in {
        "architecture": "smallcnn",
        "input quantizer": "q1",
        "weight quantizer": "dorefa",
        "activation quantizer": "dorefa",
        "dataset": "fashion_mnist",
        "attack": "pgd",
        "direction rule": "agd",
    }.items():
        assert reg.get(kind, expected).plugin == "trendcli"


def test_example_plugin_is_discovered():
    reg = get_registry()
    assert reg.get("architecture", "example_mlp").plugin == "trend-example"
    assert reg.get("input quantizer", "binarize").plugin == "trend-example"


def test_trend_plugins_env_limits_distributions(monkeypatch):
    monkeypatch.setenv("TREND_PLUGINS", "trendcli")
    reg = Registry()
    assert "example_mlp" not in reg.names("architecture")
    assert "smallcnn" in reg.names("architecture")
