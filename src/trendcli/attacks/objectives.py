"""What the adaptive attacks (APGD, Square, MI-FGSM) share: losses, success, strict parameters.

Each attack works on a list of members: one model, or an ensemble's members. For gradient
attacks the surrogate loss of an ensemble is the mean of the members' per-image losses, each
computed through that member (its quantizers' BPDA backward included); for the score-based
Square attack it is the vote score :func:`vote_score`. Success on an ensemble is the vote
(``trendcli.ensemble.vote.predict``) leaving the label (or reaching the target).
Formulas: docs/method.md "Attacks on one model" and "Attacks on an ensemble".
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from trendcli.attacks.base import margin, success_mask
from trendcli.ensemble.vote import TIE_BREAKS, predict, votes
from trendcli.errors import UsageError

__all__ = [
    "GRADIENT_LOSSES",
    "check_choice",
    "dlr",
    "dlr_targeted",
    "fooled",
    "forward_all",
    "gradient_loss",
    "strict_params",
    "vote_score",
]

#: Losses the gradient attacks can ascend.
GRADIENT_LOSSES = ("ce", "dlr")
_DLR_EPS = 1e-12  # the authors' guard against a zero denominator


def strict_params(cls: type) -> type:
    """Make a dataclass attack reject unknown keyword parameters with a UsageError naming the allowed ones."""
    init = cls.__init__
    allowed = tuple(f.name for f in dataclasses.fields(cls))

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):  # noqa: N807 - replaces the dataclass __init__
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            raise UsageError(
                f"unknown parameter {unknown[0]!r} for attack {cls.name!r}; allowed: {', '.join(allowed)}"
            )
        init(self, *args, **kwargs)

    cls.__init__ = __init__
    return cls


def check_choice(name: str, value: str, known: Sequence[str]) -> None:
    """Raise UsageError unless ``value`` is one of ``known``."""
    if value not in known:
        raise UsageError(f"unknown {name} {value!r}; known: {', '.join(known)}")


def check_tie_break(tie_break: str) -> None:
    """Raise UsageError unless ``tie_break`` is a known vote tie-break."""
    check_choice("tie_break", tie_break, TIE_BREAKS)


# -- losses -----------------------------------------------------------------------------------


def _need_classes(logits: torch.Tensor, count: int, what: str) -> None:
    if logits.shape[1] < count:
        raise UsageError(f"{what} needs at least {count} classes, the model has {logits.shape[1]}")


def dlr(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """DLR(z, y) = -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3 + 1e-12), per image [N].

    Croce & Hein 2020 (arXiv:2003.01690) eq. 5; z_pi1 >= z_pi2 >= ... the sorted logits.
    Invariant to shifting and scaling the logits, so a rescaled softmax cannot flatten it.
    """
    _need_classes(logits, 3, "the DLR loss")
    top = logits.topk(3, dim=1).values
    return -margin(logits, y) / (top[:, 0] - top[:, 2] + _DLR_EPS)


def dlr_targeted(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Targeted DLR = -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12), per image [N] (arXiv:2003.01690 eq. 6)."""
    _need_classes(logits, 4, "the targeted DLR loss")
    top = logits.topk(4, dim=1).values
    own = logits.gather(1, y[:, None]).squeeze(1)
    aim = logits.gather(1, target[:, None]).squeeze(1)
    return -(own - aim) / (top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + _DLR_EPS)


def gradient_loss(logits: torch.Tensor, loss: str, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """The per-image loss [N] a gradient attack ascends.

    ce: CE(z, y), or -CE(z, t) toward a target.  dlr: DLR(z, y), or the targeted DLR toward t.
    """
    if loss == "ce":
        if target is None:
            return F.cross_entropy(logits, y, reduction="none")
        return -F.cross_entropy(logits, target, reduction="none")
    return dlr(logits, y) if target is None else dlr_targeted(logits, y, target)


# -- members: forward, success, scores ----------------------------------------------------------


def forward_all(members: Sequence[nn.Module], x: torch.Tensor, attack: str, need_grad: bool) -> list[torch.Tensor]:
    """Every member's logits at x; with ``need_grad``, a UsageError when a member's output has no gradient."""
    out = [m(x) for m in members]
    if need_grad:
        for i, logits in enumerate(out):
            if not (isinstance(logits, torch.Tensor) and logits.requires_grad):
                raise UsageError(
                    f"attack {attack!r} needs gradients, but member {i}'s output does not depend "
                    "differentiably on its input; use a gradient-free attack such as 'square'"
                )
    return out


def fooled(
    logits: Sequence[torch.Tensor], y: torch.Tensor, target: torch.Tensor | None, tie_break: str, seed: int
) -> torch.Tensor:
    """Bool [N]: the (ensemble's) prediction left y, or reached the target when one is given."""
    if len(logits) == 1:
        return success_mask(logits[0].detach(), y, target)
    pred = predict([z.detach() for z in logits], tie_break, seed)
    return pred == target if target is not None else pred != y


def vote_score(logits: Sequence[torch.Tensor], y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """The score [N] the Square attack lowers (success near or below 0).

    One model: its margin z_y - max_{i != y} z_i (targeted: max_{i != t} z_i - z_t).
    An ensemble: S = (V_y - max_{c != y} V_c) + tanh(mean_k m_k) / 2, with V_c the members'
    votes for class c and m_k member k's margin (targeted: S = (max_{c != t} V_c - V_t) +
    tanh(mean_k -m_k(t)) / 2). The vote difference moves in steps of 1 and the logit term
    stays inside (-1/2, 1/2), so a change of votes always outweighs any change of logits;
    between vote changes the mean margin guides the search.
    """
    if len(logits) == 1:
        return margin(logits[0], y) if target is None else -margin(logits[0], target)
    counts = votes(logits).to(logits[0].dtype)
    label = y if target is None else target
    sign = 1.0 if target is None else -1.0
    vote_margin = margin(counts, label) * sign
    mean_margin = torch.stack([margin(z, label) for z in logits]).mean(0) * sign
    return vote_margin + 0.5 * torch.tanh(mean_margin)
