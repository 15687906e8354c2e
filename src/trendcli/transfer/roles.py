"""Sources and targets of a transfer matrix: the square matrix (every model both) or a rectangle.

A rectangular matrix (``compute_matrix(sources, targets=...)``) holds the sources, then the
targets that are not also sources (one model, by weights and spec, as reuse identifies them);
only the pairs sources x targets are computed, every other pair keeps zero counts.
"""

from __future__ import annotations

from typing import Any, Sequence

from trendcli.errors import UsageError
from trendcli.transfer import streaming
from trendcli.transfer.reuse import Reused, identity
from trendcli.zoo.model import TrendModel

__all__ = ["forget_unasked", "prepare_roles"]


def _identity(model: TrendModel) -> str:
    return identity({"weights_sha256": model.meta["weights_sha256"], "spec": model.spec.to_dict()})


def prepare_roles(models: Sequence[Any], targets: Sequence[Any] | None, device: str
                  ) -> tuple[list[TrendModel], list[str], list[int] | None, list[int] | None]:
    """The matrix's models, their names, and the rows (sources) and columns (targets) to compute.

    Square (``targets`` None): every model both, rows = columns = None.
    """
    if targets is None:
        loaded, names = streaming.prepare_models(models, device)
        return loaded, names, None, None
    if not models or not targets:
        raise UsageError("a rectangular matrix needs at least one source and one target model")
    loaded, _ = streaming.prepare_models([*models, *targets], device)
    keys = [_identity(m) for m in loaded]
    first: dict[str, int] = {}
    kept: list[TrendModel] = []
    for m, key in zip(loaded, keys):
        if key not in first:
            first[key] = len(kept)
            kept.append(m)
    rows = sorted({first[k] for k in keys[: len(models)]})
    cols = sorted({first[k] for k in keys[len(models):]})
    return kept, streaming.unique_names(kept), rows, cols


def forget_unasked(previous: Any, entries: Sequence[dict[str, Any]], counts: Reused) -> None:
    """Mark as still to compute the pairs a rectangular ``previous`` matrix holds zeros for (never computed)."""
    if previous.source_names is None and previous.target_names is None:
        return
    rows = {previous.index(n) for n in previous.source_names or previous.names}
    cols = {previous.index(n) for n in previous.target_names or previous.names}
    old = {identity(e): i for i, e in enumerate(previous.models)}
    where = [old.get(identity(e)) for e in entries]
    for s, ws in enumerate(where):
        for t, wt in enumerate(where):
            if ws is not None and wt is not None and not (ws in rows and wt in cols):
                counts.n_c[s, t] = counts.n_g[s, t] = counts.n_t[s, t] = -1
