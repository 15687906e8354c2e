"""Built-in attacks, registered through the trendcli entry-point group like any plugin.

Every value is a :func:`~trendcli.registry.lazy` reference: listing the names imports no torch.
"""

from __future__ import annotations

from trendcli.hookspecs import hookimpl
from trendcli.registry import Lazy, lazy


@hookimpl
def trend_attacks() -> dict[str, Lazy]:
    """fgsm, bim, pgd (L-inf); cw_l2, cw_linf (Carlini-Wagner); deepfool (norm="l2" | "linf");
    apgd, apgd_t (Auto-PGD), square (gradient-free), mifgsm (MI-FGSM with DI / TI options)."""
    return {
        "fgsm": lazy("trendcli.attacks.fgsm:FGSM", "FGSM, L-inf (Goodfellow et al. 2015, arXiv:1412.6572)"),
        "bim": lazy("trendcli.attacks.bim:BIM", "BIM, L-inf (Kurakin et al. 2017, arXiv:1607.02533)"),
        "pgd": lazy("trendcli.attacks.pgd:PGD", "PGD, L-inf (Madry et al. 2018, arXiv:1706.06083)"),
        "cw_l2": lazy("trendcli.attacks.cw:CWL2", "Carlini-Wagner L2 (Carlini & Wagner 2017, arXiv:1608.04644)"),
        "cw_linf": lazy("trendcli.attacks.cw:CWLinf", "Carlini-Wagner loss under an L-inf bound (after arXiv:1608.04644)"),
        "deepfool": lazy("trendcli.attacks.deepfool:DeepFool", "DeepFool, L2 or L-inf (Moosavi-Dezfooli et al. 2016, arXiv:1511.04599)"),
        "apgd": lazy("trendcli.attacks.apgd:APGD", "Auto-PGD, CE or DLR loss, L-inf (Croce & Hein 2020, arXiv:2003.01690)"),
        "apgd_t": lazy("trendcli.attacks.apgd:APGDT", "APGD-T, targeted DLR over the top classes, L-inf (arXiv:2003.01690)"),
        "square": lazy("trendcli.attacks.square:Square", "Square attack, score-based, L-inf (Andriushchenko et al. 2020, arXiv:1912.00049)"),
        "mifgsm": lazy("trendcli.attacks.mifgsm:MIFGSM", "MI-FGSM with DI / TI options, L-inf (Dong et al. 2018, arXiv:1710.06081)"),
    }
