"""Built-in attacks, registered through the trendcli entry-point group like any plugin."""

from __future__ import annotations

from typing import Any, Callable

from ..hookspecs import hookimpl


@hookimpl
def trend_attacks() -> dict[str, Callable[..., Any]]:
    """fgsm, bim, pgd (L-inf); cw_l2, cw_linf (Carlini–Wagner); deepfool (norm="l2" | "linf")."""
    from ..attacks.bim import BIM
    from ..attacks.cw import CWL2, CWLinf
    from ..attacks.deepfool import DeepFool
    from ..attacks.fgsm import FGSM
    from ..attacks.pgd import PGD

    return {"fgsm": FGSM, "bim": BIM, "pgd": PGD, "cw_l2": CWL2, "cw_linf": CWLinf, "deepfool": DeepFool}
