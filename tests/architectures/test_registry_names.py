"""The registry lists every built-in architecture through the trendcli entry point."""

from __future__ import annotations

from trendcli.registry import Registry

EXPECTED = [
    "smallcnn",
    "resnet18", "resnet34", "resnet50", "resnet101",
    "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
    "densenet121",
    "wrn28_10", "wrn16_4",
    "resnet20",
    "tv_resnet18", "tv_resnet34", "tv_resnet101", "tv_vgg11", "tv_vgg19", "tv_densenet121",
    "tv_wide_resnet50_2",
]  # fmt: skip


def test_registry_lists_every_builtin_architecture(monkeypatch):
    # Only trendcli's own entry points, so other installed plugins cannot interfere.
    monkeypatch.setenv("TREND_PLUGINS", "trendcli")
    names = Registry().names("architecture")
    assert set(EXPECTED) <= set(names)
    entries = Registry().entries()["architecture"]
    assert {entries[n].plugin for n in EXPECTED} == {"trendcli"}


def test_hyphenated_names_resolve():
    from trendcli.registry import get_registry

    assert get_registry().factory("architecture", "tv-resnet18") is get_registry().factory("architecture", "tv_resnet18")
