"""The plugin manager: loads plugins lazily, once, and looks names up by kind."""

from __future__ import annotations

import importlib.metadata as md
import os
from dataclasses import dataclass
from typing import Any, Callable

import pluggy

from trendcli import hookspecs
from trendcli.errors import DuplicateNameError, UnknownNameError

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
class Entry:
    """One registered name: its factory and the distribution that provides it."""

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str  # distribution name (or the plugin's registered name for in-process plugins)
    version: str


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
        self._load_entrypoints = False
        allowed = os.environ.get("TREND_PLUGINS")
        allow = {a.strip() for a in allowed.split(",") if a.strip()} if allowed else None
        for ep in md.entry_points(group=GROUP):
            dist = ep.dist.name if ep.dist is not None else ep.module
            if allow is not None and dist not in allow:
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

    def entries(self) -> dict[str, dict[str, Entry]]:
        """All entries: kind -> name -> Entry. Raises on a name provided twice."""
        if self._entries is None:
            self._load()
            table: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
            for kind, hook in KINDS.items():
                caller = getattr(self.pm.hook, hook)
                for impl in caller.get_hookimpls():
                    pname = self.pm.get_name(impl.plugin) or repr(impl.plugin)
                    dist, version = self._dists.get(pname, (pname, ""))
                    for name, factory in (impl.function() or {}).items():
                        key = canonical(name)
                        if key in table[kind]:
                            other = table[kind][key].plugin
                            raise DuplicateNameError(
                                f"{kind} {key!r} is provided by both {other!r} and {dist!r}; "
                                f"uninstall one, or limit plugins with TREND_PLUGINS"
                            )
                        table[kind][key] = Entry(kind, key, factory, dist, version)
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
