"""docs/plugins.md: every hook has its own section, and every example runs.

Blocks whose first line is ``# <path>`` are the files of the documented package (trend-noise):
they are written to a temporary folder, imported, registered and their tests run. Every other
Python block runs in its section's namespace, in order; a section whose code defines a hook
implementation is registered as a plugin on a fresh process-wide registry before the next block.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
import tomllib
import types
from pathlib import Path

import pytest

from trendcli import hookspecs, registry
from trendcli.registry import KINDS, Registry

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
TEXT = DOC.read_text(encoding="utf-8")
HOOKS = sorted(n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("trend_"))
KIND_OF = {hook: kind for kind, hook in KINDS.items()}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
PATH_LINE = re.compile(r"^# ([\w./-]+\.(?:py|toml))\n")

#: hook -> the Protocol its section must name.
PROTOCOLS = {
    "trend_architectures": "ArchitectureFactory",
    "trend_input_quantizers": "InputQuantizerFactory",
    "trend_weight_quantizers": "WeightQuantizerFactory",
    "trend_act_quantizers": "ActivationQuantizerFactory",
    "trend_datasets": "DatasetFactory",
    "trend_attacks": "AttackFactory",
    "trend_direction_rules": "DirectionRule",
}


def sections() -> dict[str, str]:
    """Heading text -> the section's text up to the next heading of any level (fences skipped)."""
    out: dict[str, str] = {}
    heading, lines, fenced = "", [], False
    for line in TEXT.splitlines(keepends=True):
        if line.startswith("```"):
            fenced = not fenced
        m = None if fenced else re.match(r"#{1,6}\s+(.+?)\s*$", line)
        if m:
            out[heading] = "".join(lines)
            heading, lines = m.group(1).strip("` "), []
        else:
            lines.append(line)
    out[heading] = "".join(lines)
    return out


SECTIONS = sections()


def blocks(text: str, lang: str | None = None) -> list[str]:
    return [code for kind, code in FENCE.findall(text) if lang is None or kind == lang]


def package_files() -> dict[str, str]:
    """Relative path -> content for every block that starts with its path."""
    files = {}
    for code in blocks(TEXT):
        m = PATH_LINE.match(code)
        if m:
            files[m.group(1)] = code
    return files


def test_every_hookspec_has_its_own_section_naming_its_protocol():
    assert sorted(PROTOCOLS) == HOOKS
    for hook in HOOKS:
        assert hook in SECTIONS, f"docs/plugins.md has no section '### `{hook}`'"
        body = SECTIONS[hook]
        assert f"trendcli.protocols.{PROTOCOLS[hook]}" in body, f"the {hook} section does not name its Protocol"
        assert blocks(body, "python"), f"the {hook} section has no Python example"


def test_the_topics_a_plugin_author_needs_are_covered():
    for topic in ("TREND_PLUGINS", "DuplicateNameError", "trendcli.testing", "lazy(", "[project.entry-points.trendcli]"):
        assert topic in TEXT, topic
    testing = importlib.import_module("trendcli.testing")
    for check in [n for n in testing.__all__ if n.startswith("check_")]:
        assert f"`{check}(" in TEXT, f"the kit table does not list {check}"


def test_every_python_block_compiles():
    for i, code in enumerate(blocks(TEXT, "python")):
        compile(code, f"docs/plugins.md block {i}", "exec")


@pytest.fixture
def fresh_registry(monkeypatch):
    """Install a process-wide registry; hand back a function that registers a plugin on it."""
    reg = Registry()
    monkeypatch.setattr(registry, "_default", reg)
    return reg


@pytest.mark.parametrize("heading", [h for h in SECTIONS if any(not PATH_LINE.match(b) for b in blocks(SECTIONS[h], "python"))])
def test_section_examples_run(heading, fresh_registry, monkeypatch):
    module = types.ModuleType("plugins_doc_" + re.sub(r"\W", "_", heading))
    monkeypatch.setitem(sys.modules, module.__name__, module)
    registered = False
    for code in blocks(SECTIONS[heading], "python"):
        if PATH_LINE.match(code):
            continue
        exec(compile(code, f"docs/plugins.md: {heading}", "exec"), module.__dict__)
        hooks = [h for h in HOOKS if hasattr(getattr(module, h, None), "trendcli_impl")]
        if hooks and not registered:
            fresh_registry.register(module, name="docs-example")
            registered = True
            for hook in hooks:
                names = fresh_registry.entries()[KIND_OF[hook]]
                assert any(e.plugin == "docs-example" for e in names.values()), hook
    if heading in HOOKS:
        assert registered, f"the {heading} example defines no {heading} hook implementation"


def test_the_documented_package_installs_registers_and_passes_its_tests(tmp_path, fresh_registry, monkeypatch):
    files = package_files()
    assert set(files) == {
        "pyproject.toml", "src/trend_noise/__init__.py", "src/trend_noise/attack.py", "tests/test_trend_noise.py",
    }
    for path, code in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(code, encoding="utf-8")
    project = tomllib.loads(files["pyproject.toml"])["project"]
    assert project["entry-points"]["trendcli"] == {"noise": "trend_noise"}
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    try:
        package = importlib.import_module("trend_noise")
        assert "trend_noise.attack" not in sys.modules  # registered lazily: nothing imported yet
        fresh_registry.register(package, name="trend-noise", dist=project["name"], version=project["version"])
        assert fresh_registry.get("attack", "uniform-noise").plugin == "trend-noise"
        tests = types.ModuleType("test_trend_noise")
        exec(compile(files["tests/test_trend_noise.py"], "tests/test_trend_noise.py", "exec"), tests.__dict__)
        ran = [name for name, fn in vars(tests).items() if name.startswith("test_") and callable(fn)]
        for name in ran:
            getattr(tests, name)()
        assert len(ran) == 2
    finally:
        for name in [m for m in sys.modules if m == "trend_noise" or m.startswith("trend_noise.")]:
            del sys.modules[name]
