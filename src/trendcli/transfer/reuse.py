"""Matrix reuse: the entries of a previous matrix that a new one can take over unchanged.

A pair (s, t) is reused when both models match a previous matrix's models (weights sha256 +
spec) and the evaluation settings (attack, parameters, split, limit, batch size) are the same;
only the missing rows and columns are then attacked and evaluated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from trendcli.registry import canonical
from trendcli.transfer.streaming import normalize_params

__all__ = ["Reused", "attack_settings", "identity", "previous_matrix_path", "reuse_pairs", "same_settings"]


def attack_settings(method: str, params: dict | None, split: str, limit: int | None, batch_size: int | None) -> dict[str, Any]:
    """The settings two matrices must share for their pairs to be interchangeable."""
    return {
        "method": canonical(method),
        "params": normalize_params(params),
        "split": split,
        "limit": limit,
        "batch_size": batch_size,
    }


def same_settings(previous_attack: dict[str, Any], settings: dict[str, Any]) -> bool:
    """True when a previous matrix's ``attack`` record holds every one of ``settings``."""
    return all(previous_attack.get(k) == v for k, v in settings.items())


def identity(entry: dict[str, Any]) -> str:
    """What makes two model entries the same model for reuse: weights and spec."""
    return entry["weights_sha256"] + json.dumps(entry["spec"], sort_keys=True)


def previous_matrix_path(prefix: Path) -> Path | None:
    """PREFIX.json when it exists: the matrix a rerun of the same stage extends."""
    path = prefix.with_name(prefix.name + ".json")
    return path if path.is_file() else None


@dataclass
class Reused:
    """Counts of a k-model matrix, -1 where still to compute, and what came with the reused rows."""

    n_c: np.ndarray
    n_g: np.ndarray
    n_t: np.ndarray
    clean_accuracy: dict[str, float] = field(default_factory=dict)
    sources: list[dict[str, Any] | None] = field(default_factory=list)
    n_images: int | None = None

    @classmethod
    def empty(cls, k: int) -> "Reused":
        full = lambda: np.full((k, k), -1, dtype=np.int64)  # noqa: E731
        return cls(full(), full(), full(), {}, [None] * k)

    @property
    def count(self) -> int:
        return int((self.n_c >= 0).sum())

    def todo(self) -> list[tuple[int, list[int]]]:
        """(source, targets still missing) for every source with something to compute."""
        k = len(self.n_c)
        rows = [(s, [t for t in range(k) if self.n_c[s, t] < 0]) for s in range(k)]
        return [(s, ts) for s, ts in rows if ts]


def reuse_pairs(previous: Any, entries: Sequence[dict[str, Any]], names: Sequence[str], settings: dict[str, Any]) -> Reused:
    """The pairs of ``entries`` that ``previous`` (a TransferMatrix, or None) already holds."""
    reused = Reused.empty(len(entries))
    if previous is None or not same_settings(previous.attack, settings):
        return reused
    old = {identity(e): i for i, e in enumerate(previous.models)}
    where = [old.get(identity(e)) for e in entries]
    for s, ws in enumerate(where):
        if ws is None:
            continue
        for t, wt in enumerate(where):
            if wt is not None:
                reused.n_c[s, t] = previous.n_c[ws, wt]
                reused.n_g[s, t] = previous.n_g[ws, wt]
                reused.n_t[s, t] = previous.n_t[ws, wt]
        old_name = previous.names[ws]
        reused.clean_accuracy[names[s]] = previous.clean_accuracy.get(old_name, float("nan"))
        src = next((d for d in previous.sources if d.get("name") == old_name), None)
        if src is not None:
            reused.sources[s] = {**src, "name": names[s], "reused": True}
    reused.n_images = previous.attack.get("n_images")
    return reused
