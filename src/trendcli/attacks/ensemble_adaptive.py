"""APGD, APGD-T, Square and MI-FGSM on an ensemble, called like EnsemblePGD: ``attack(models, x, y)``.

What each optimises (docs/method.md "Attacks on an ensemble"):

- APGD, APGD-T, MI-FGSM: the surrogate loss f(x) = (1/K) sum_k L(f_k(x), y), each member's
  loss computed through that member (its quantizers' BPDA backward included), so the
  gradient is the mean of the members' gradients: with the sign step this is D-AG's
  direction (paper eq. 5). APGD's step-size checks read this mean loss; APGD-T ranks the
  target classes by the members' mean clean logits.
- Square: the vote score S = (V_y - max_{c != y} V_c) + tanh(mean_k m_k) / 2
  (:func:`trendcli.attacks.objectives.vote_score`): the vote margin decides, the mean logit
  margin breaks its ties. One query = one forward of every member.

Success everywhere is the ensemble's vote (``trendcli.ensemble.vote.predict`` with
``tie_break``, seeded by ``seed``) leaving the label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

import torch
from torch import nn

from trendcli.attacks.apgd import APGD, APGDT
from trendcli.attacks.base import attack_mode, check_batch, common_memory_format, gradients_on, input_memory_format
from trendcli.attacks.mifgsm import MIFGSM
from trendcli.attacks.objectives import check_tie_break, strict_params
from trendcli.attacks.square import Square
from trendcli.errors import UsageError

__all__ = ["ENSEMBLE_VARIANTS", "EnsembleAPGD", "EnsembleAPGDT", "EnsembleMIFGSM", "EnsembleSquare"]


class _OnEnsemble:
    """``attack(models, x, y)``: checks, attack mode for every member, one layout for all."""

    tie_break: str

    def __post_init__(self) -> None:
        super().__post_init__()  # type: ignore[misc]
        check_tie_break(self.tie_break)

    def __call__(self, models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Adversarial images for ``x`` (labels ``y``) against the vote of ``models``."""
        single = isinstance(models, nn.Module) and not isinstance(models, nn.ModuleList)
        members = [models] if single else list(models)
        if not members:
            raise UsageError("an ensemble attack needs at least one model")
        check_batch(x, y)
        out_format = input_memory_format(x)
        with gradients_on(), attack_mode(members):
            xc = x.detach().to(torch.float32).clone(memory_format=common_memory_format(members))
            adv = self._attack(members, xc, y.clone(), None, self.tie_break)  # type: ignore[attr-defined]
        return adv.detach().contiguous(memory_format=out_format)


@strict_params
@dataclass(frozen=True)
class EnsembleAPGD(_OnEnsemble, APGD):
    """APGD (arXiv:2003.01690) on the members' mean loss; success = the vote leaves y.

    Parameters: those of :class:`trendcli.attacks.apgd.APGD` (eps 8/255, n_iter 100, loss
    "ce", restarts 1, rho 0.75, seed 0) and tie_break, default "paper" (the authors' vote).
    Call ``attack(models, x, y)``; returns float32 [N, C, H, W] in [0, 1] within eps (L-inf).
    """

    tie_break: str = "paper"
    name: ClassVar[str] = "ensemble_apgd"


@strict_params
@dataclass(frozen=True)
class EnsembleAPGDT(_OnEnsemble, APGDT):
    """APGD-T (arXiv:2003.01690) on the members' mean targeted DLR loss; success = the vote leaves y.

    Parameters: those of :class:`trendcli.attacks.apgd.APGDT` (n_target_classes 9, ...) and
    tie_break, default "paper". Call ``attack(models, x, y)``; L-inf within eps, in [0, 1].
    """

    tie_break: str = "paper"
    name: ClassVar[str] = "ensemble_apgd_t"


@strict_params
@dataclass(frozen=True)
class EnsembleSquare(_OnEnsemble, Square):
    """Square attack (arXiv:1912.00049) on the vote score; success = the vote leaves y.

    Parameters: those of :class:`trendcli.attacks.square.Square` (eps 8/255, n_queries 1000
    per image, p_init 0.8, seed 0) and tie_break, default "paper". ``last_queries`` counts
    ensemble queries (each one forward of every member). Call ``attack(models, x, y)``;
    L-inf within eps, in [0, 1].
    """

    tie_break: str = "paper"
    name: ClassVar[str] = "ensemble_square"


@strict_params
@dataclass(frozen=True)
class EnsembleMIFGSM(_OnEnsemble, MIFGSM):
    """MI-FGSM / DI / TI (arXiv:1710.06081, 1803.06978, 1904.02884) on the members' mean CE.

    Parameters: those of :class:`trendcli.attacks.mifgsm.MIFGSM` (eps 8/255, steps 10, alpha
    eps/steps, decay 1.0, diversity_prob 0, resize_rate 0.9, ti_kernel 0, seed 0) and
    tie_break, default "paper" (unused by the update; kept so every ensemble attack takes
    it). Call ``attack(models, x, y)``; L-inf within eps, in [0, 1].
    """

    tie_break: str = "paper"
    name: ClassVar[str] = "ensemble_mifgsm"


#: The ensemble variant of each single-model attack name.
ENSEMBLE_VARIANTS: dict[str, type] = {
    "apgd": EnsembleAPGD,
    "apgd_t": EnsembleAPGDT,
    "square": EnsembleSquare,
    "mifgsm": EnsembleMIFGSM,
}
