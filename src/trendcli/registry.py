"""The plugin manager: loads plugins lazily, once, and looks names up by kind.

A hook returns ``{name: factory}``. A factory is either a callable or a :func:`lazy` reference
(``lazy("trendcli.attacks.pgd:PGD", "PGD, L-inf (Madry et al. 2018)")``): the registry then
knows the name and its one-line description without importing the implementation, which is
imported on first use of :attr:`Entry.factory`. Listing names (``trend plugins``) therefore
imports no torch as long as the plugins hand over lazy references.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata as md
import inspect
import os
import re
from dataclasses import dataclass
from typing import Any, Callable

import pluggy

from trendcli import hookspecs
from trendcli.errors import DuplicateNameError, UnknownNameError, UsageError

GROUP = "trendcli"

#: kind -> hook name. The kind is what error messages and ``trend plugins`` call it.
KINDS: dict[str, str] = {
    "architecture": "trend_architectures",
    "input quantizer": "trend_input_quantizers",
    "weight quantizer": "trend_weight_quantizers",
    "activation quantizer": "trend_act_quantizers",
    "dataset": "trend_datasets",
    "attack": "trend_attacks",
    "direction rule": "trend_direction_rules",
}


def canonical(name: str) -> str:
    """Registry names are lower_snake; the CLI also accepts hyphens (``ht-fs``, ``cw-l2``)."""
    return name.strip().lower().replace("-", "_")


@dataclass(frozen=True)
class Lazy:
    """A factory named by where it lives (``"package.module:attribute"``), imported on first use."""

    target: str
    description: str
    args: tuple[Any, ...] = ()

    def load(self) -> Any:
        """Import the target; with ``args``, the target with them bound first (``functools.partial``)."""
        module, _, attribute = self.target.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attribute.split("."):
            obj = getattr(obj, part)
        return functools.partial(obj, *self.args) if self.args else obj


def lazy(target: str, description: str, *args: Any) -> Lazy:
    """A registry value that names its factory instead of holding it.

    ``target`` is ``"package.module:attribute"``; ``description`` is the one line ``trend plugins``
    shows; ``args`` are bound first, so ``lazy("pkg.vgg:cifar_vgg", "VGG-11", "vgg11")`` stands for
    ``functools.partial(cifar_vgg, "vgg11")``.
    """
    module, sep, attribute = target.partition(":")
    if not (module and sep and attribute):
        raise UsageError(f"lazy target must look like 'package.module:attribute', got {target!r}")
    return Lazy(target, description, tuple(args))


def _first_doc_line(obj: Any) -> str:
    if isinstance(obj, functools.partial):
        obj = obj.func
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


@dataclass(frozen=True)
class Entry:
    """One registered name: where its factory comes from and the distribution that provides it."""

    kind: str
    name: str
    source: Any  # the hook's value: a callable (or rule object), or a Lazy reference
    plugin: str  # distribution name (or the plugin's registered name for in-process plugins)
    version: str

    @functools.cached_property
    def factory(self) -> Any:
        """The factory (or rule) itself; a lazy one is imported here, once."""
        return self.source.load() if isinstance(self.source, Lazy) else self.source

    @property
    def description(self) -> str:
        """One line: the lazy reference's description, else the factory's first docstring line."""
        if isinstance(self.source, Lazy):
            return self.source.description
        return _first_doc_line(self.source)


@dataclass(frozen=True)
class PluginInfo:
    """One registered plugin module: its distribution, version and the hooks it implements."""

    name: str
    dist: str
    version: str
    hooks: tuple[str, ...]


class Registry:
    """Names by kind, gathered from every registered plugin."""

    def __init__(self, pm: pluggy.PluginManager | None = None, load_entrypoints: bool = True):
        self.pm = pm or pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self._dists: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, version)
        self._entries: dict[str, dict[str, Entry]] | None = None
        self._load_entrypoints = load_entrypoints

    # -- loading -------------------------------------------------------------------------
    def _load(self) -> None:
        if not self._load_entrypoints:
            return
        points = list(md.entry_points(group=GROUP))
        allow = _allowed({_dist_name(ep) for ep in points})
        self._load_entrypoints = False
        for ep in points:
            dist = _dist_name(ep)
            if allow is not None and _normal(dist) not in allow:
                continue
            module = ep.load()
            pname = f"{dist}:{ep.name}"
            if self.pm.is_registered(module) or self.pm.has_plugin(pname):
                continue
            self.pm.register(module, name=pname)
            self._dists[pname] = (dist, ep.dist.version if ep.dist is not None else "")

    def register(self, plugin: object, name: str, dist: str | None = None, version: str = "") -> None:
        """Register an in-process plugin (tests, notebooks)."""
        self.pm.register(plugin, name=name)
        self._dists[name] = (dist or name, version)
        self._entries = None

    def plugins(self) -> list[PluginInfo]:
        """Every registered plugin module with its distribution, version and hooks, by name."""
        self._load()
        out = []
        for plugin in self.pm.get_plugins():
            pname = self.pm.get_name(plugin) or repr(plugin)
            dist, version = self._dists.get(pname, (pname, ""))
            hooks = tuple(sorted(c.name for c in self.pm.get_hookcallers(plugin) or [] if c.name in KINDS.values()))
            out.append(PluginInfo(pname, dist, version, hooks))
        return sorted(out, key=lambda p: p.name)

    def entries(self) -> dict[str, dict[str, Entry]]:
        """All entries: kind -> name -> Entry. Raises on a name provided twice."""
        if self._entries is None:
            self._load()
            table: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
            for kind, hook in KINDS.items():
                for impl in getattr(self.pm.hook, hook).get_hookimpls():
                    pname = self.pm.get_name(impl.plugin) or repr(impl.plugin)
                    dist, version = self._dists.get(pname, (pname, ""))
                    for name, source in (impl.function() or {}).items():
                        key = canonical(name)
                        if key in table[kind]:
                            other = table[kind][key].plugin
                            raise DuplicateNameError(
                                f"{kind} {key!r} is provided by both {other!r} and {dist!r}; "
                                f"uninstall one, or limit plugins with TREND_PLUGINS"
                            )
                        table[kind][key] = Entry(kind, key, source, dist, version)
            self._entries = table
        return self._entries

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries()[kind])

    def get(self, kind: str, name: str) -> Entry:
        table = self.entries()[kind]
        key = canonical(name)
        if key not in table:
            raise UnknownNameError(kind, name, list(table))
        return table[key]

    def factory(self, kind: str, name: str) -> Callable[..., Any]:
        return self.get(kind, name).factory


def _dist_name(ep: md.EntryPoint) -> str:
    return ep.dist.name if ep.dist is not None else ep.module


def _normal(dist: str) -> str:
    """A distribution name as pip compares them: case, ``-``, ``_`` and ``.`` do not matter."""
    return re.sub(r"[-_.]+", "-", dist.strip()).lower()


def _allowed(installed: set[str]) -> set[str] | None:
    """The distributions TREND_PLUGINS allows (None: all); naming one not installed is an error."""
    value = os.environ.get("TREND_PLUGINS")
    if not value:
        return None
    allow = {_normal(a) for a in value.split(",") if a.strip()}
    missing = sorted(allow - {_normal(d) for d in installed})
    if missing:
        raise UsageError(
            f"TREND_PLUGINS names {', '.join(missing)}, not an installed trendcli plugin; "
            f"installed: {', '.join(sorted(installed))}"
        )
    return allow


_default: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry (entry points loaded on first use)."""
    global _default
    if _default is None:
        _default = Registry()
    return _default


def set_registry(registry: Registry | None) -> None:
    """Replace the process-wide registry (tests use a fresh one)."""
    global _default
    _default = registry
