"""Built-in attacks, registered through the trendcli entry-point group like any plugin."""

from __future__ import annotations

from typing import Any, Callable

from trendcli.hookspecs import hookimpl


@hookimpl
def trend_attacks() -> dict[str, Callable[..., Any]]:
    """fgsm, bim, pgd (L-inf); cw_l2, cw_linf (Carlini–Wagner); deepfool (norm="l2" | "linf")."""
    from trendcli.attacks.bim import BIM
    from trendcli.attacks.cw import CWL2, CWLinf
    from trendcli.attacks.deepfool import DeepFool
    from trendcli.attacks.fgsm import FGSM
    from trendcli.attacks.pgd import PGD

    return {"fgsm": FGSM, "bim": BIM, "pgd": PGD, "cw_l2": CWL2, "cw_linf": CWLinf, "deepfool": DeepFool}
