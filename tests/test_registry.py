"""The plugin registry: loading, lookup, duplicates, and documented hooks."""

from __future__ import annotations

import importlib.metadata as md
import inspect
import subprocess
import sys

import pytest

from trendcli import hookspecs
from trendcli.errors import DuplicateNameError, UnknownNameError, UsageError
from trendcli.hookspecs import hookimpl
from trendcli.registry import KINDS, Lazy, Registry, canonical, get_registry, lazy


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


# -- lazy references ------------------------------------------------------------------------------
NO_TORCH = """
import sys
{body}
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & {{"torch", "torchvision", "onnx", "h5py"}})
print(",".join(heavy))
"""


def imported_heavy(body: str) -> str:
    proc = subprocess.run([sys.executable, "-c", NO_TORCH.format(body=body)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


class _LazyPlugin:
    @hookimpl
    def trend_attacks(self):
        return {"lazy_one": lazy("colorsys:rgb_to_hls", "the lazy one"), "plain": _plain}

    @hookimpl
    def trend_direction_rules(self):
        return {"agd2": lazy("trendcli.rules.directions:agd", "A-GD again")}


def _plain():
    """A plain factory: its first docstring line is the description.

    More text that is not shown.
    """
    return "plain"


def test_lazy_entry_imports_on_first_factory_access_only(monkeypatch):
    reg = Registry(load_entrypoints=False)
    reg.register(_LazyPlugin(), name="lazy-plugin")
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)  # a module nothing else here imports
    entry = reg.get("attack", "lazy_one")
    assert entry.description == "the lazy one" and "colorsys" not in sys.modules
    factory = entry.factory
    import colorsys

    assert factory is colorsys.rgb_to_hls and entry.factory is factory  # resolved once, cached
    assert reg.get("attack", "plain").description == "A plain factory: its first docstring line is the description."
    assert reg.factory("attack", "plain") is _plain


def test_lazy_rule_resolves_to_the_real_rule_object():
    from trendcli.rules.directions import agd, empir

    reg = Registry(load_entrypoints=False)
    reg.register(_LazyPlugin(), name="lazy-plugin")
    assert reg.factory("direction rule", "agd2") is agd and agd.needs_mask is False
    assert get_registry().factory("direction rule", "empir") is empir and empir.needs_mask is True


def test_lazy_binds_leading_arguments():
    ref = lazy("trendcli.registry:canonical", "canonical with a bound name", "HT-FS")
    assert ref.load()() == "ht_fs"
    with pytest.raises(UsageError, match="package.module:attribute"):
        lazy("trendcli.registry.canonical", "no colon")


def test_builtin_hook_modules_and_listing_import_no_torch():
    body = "import trendcli.builtins.architectures, trendcli.builtins.attacks, trendcli.builtins.datasets, " \
           "trendcli.builtins.quantizers, trendcli.builtins.rules\n" \
           "from trendcli.registry import KINDS, Registry\nreg = Registry()\n" \
           "[e.description for k in KINDS for e in reg.entries()[k].values()]"
    assert imported_heavy(body) == ""


def test_builtin_names_match_the_implementations():
    from trendcli.architectures import resnet_cifar, torchvision_imagenet, vgg
    from trendcli.builtins import architectures, quantizers
    from trendcli.quantizers.uniform import MAX_INPUT_BITS
    from trendcli.rules.directions import RULES

    assert set(architectures.CIFAR_RESNETS) == set(resnet_cifar.CONFIGS)
    assert set(architectures.CIFAR_VGGS) == set(vgg.CONFIGS)
    assert set(architectures.TORCHVISION) == set(torchvision_imagenet.MODELS)
    assert list(quantizers.INPUT_BITS) == list(range(1, MAX_INPUT_BITS + 1))
    reg = get_registry()
    assert {n: reg.factory("direction rule", n) for n in RULES} == RULES
    vgg11 = reg.factory("architecture", "vgg11")
    assert vgg11.func is vgg.cifar_vgg and vgg11.args == ("vgg11",)


def test_every_builtin_entry_resolves_and_is_described():
    reg = get_registry()
    for kind in KINDS:
        for entry in reg.entries()[kind].values():
            if entry.plugin == "trendcli":
                assert isinstance(entry.source, Lazy), f"{kind} {entry.name} is not lazy"
                assert callable(entry.factory) and entry.description, f"{kind} {entry.name}"


# -- plugins and TREND_PLUGINS ----------------------------------------------------------------------
def test_plugins_report_distribution_version_and_hooks(monkeypatch):
    monkeypatch.setenv("TREND_PLUGINS", "trendcli")
    plugins = {p.name: p for p in Registry().plugins()}
    assert plugins["trendcli:quantizers"].dist == "trendcli"
    assert plugins["trendcli:quantizers"].version == md.version("trendcli")
    assert plugins["trendcli:quantizers"].hooks == ("trend_act_quantizers", "trend_input_quantizers", "trend_weight_quantizers")
    assert {p.dist for p in plugins.values()} == {"trendcli"}


def test_trend_plugins_naming_an_unknown_distribution_lists_the_installed(monkeypatch):
    monkeypatch.setenv("TREND_PLUGINS", "trendcli, Trend_Example, nope")
    with pytest.raises(UsageError) as exc:
        Registry().entries()
    assert str(exc.value).startswith("TREND_PLUGINS names nope, not an installed trendcli plugin; installed: ")
    assert "trend-example" in str(exc.value)
    monkeypatch.setenv("TREND_PLUGINS", "trendcli,Trend_Example")  # names compare as pip does
    assert "example_mlp" in Registry().names("architecture")
