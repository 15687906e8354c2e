"""Built-in direction rules, registered through the trendcli entry-point group like any plugin.

Every value is a :func:`~trendcli.registry.lazy` reference to the rule function itself (with its
``needs_mask`` attribute): listing the names imports no torch.
"""

from __future__ import annotations

from trendcli.hookspecs import hookimpl
from trendcli.registry import Lazy, lazy

_MODULE = "trendcli.rules.directions"


@hookimpl
def trend_direction_rules() -> dict[str, Lazy]:
    """Ensemble direction rules: dag (D-AG), agd (A-GD), ugd (U-GD), empir, eadg."""
    return {
        "dag": lazy(f"{_MODULE}:dag", "D-AG (paper eq. 5): sign of the summed gradients"),
        "agd": lazy(f"{_MODULE}:agd", "A-GD (paper eq. 7): per-pixel majority of the gradient signs"),
        "ugd": lazy(f"{_MODULE}:ugd", "U-GD (paper eq. 6): a step only where all members' signs agree"),
        "empir": lazy(f"{_MODULE}:empir", "EMPIR-style: summed gradients of the members still voting the label"),
        "eadg": lazy(f"{_MODULE}:eadg", "EADG (authors' code): summed signs of the members still voting the label"),
    }
