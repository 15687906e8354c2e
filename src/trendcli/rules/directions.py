"""Ensemble attack direction rules: how K members' input gradients become one step direction.

Every rule is ``rule(grads, mask) -> direction`` with ``grads`` the members' gradients
G_k = grad_x L(f_k(x_n), y) stacked as [K, N, C, H, W] and ``mask`` a float [K, N] (1 where
member k still predicts the ensemble's fixed label) or None; the direction is [N, C, H, W].
S_k = sign(G_k). Formulas: docs/method.md "Attacks on an ensemble".
"""

from __future__ import annotations

from typing import Callable

import torch

from trendcli.errors import UsageError

__all__ = ["RULES", "agd", "dag", "eadg", "empir", "ugd"]


def _check(grads: torch.Tensor, mask: torch.Tensor | None, name: str, needs_mask: bool) -> None:
    if grads.ndim != 5:
        raise UsageError(f"rule {name!r} needs gradients [K, N, C, H, W], got {tuple(grads.shape)}")
    if needs_mask and mask is None:
        raise UsageError(f"rule {name!r} needs the members' mask [K, N]; pass mask=")
    if mask is not None and tuple(mask.shape) != tuple(grads.shape[:2]):
        raise UsageError(f"rule {name!r}: mask shape {tuple(mask.shape)} != [K, N] {tuple(grads.shape[:2])}")


def _weights(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.to(like.dtype).view(*mask.shape, 1, 1, 1)


def dag(grads: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """D-AG (paper eq. 5), the average-gradient attack: g = sign( sum_k G_k )."""
    _check(grads, mask, "dag", False)
    return grads.sum(0).sign_()


def agd(grads: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """A-GD (paper eq. 7): g = sign( sum_k S_k ), the per-pixel majority sign, 0 on ties."""
    _check(grads, mask, "agd", False)
    return grads.sign().sum(0).sign_()


def ugd(grads: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """U-GD (paper eq. 6): A = (1/K) sum_k S_k; g = A * floor(|A|) — a step only where all K agree.

    sum_k S_k is an exact small integer in floating point, so |A| == 1 exactly when all K
    signs agree (and are non-zero).
    """
    _check(grads, mask, "ugd", False)
    mean = grads.sign().mean(0)
    return mean * mean.abs().floor()


def empir(grads: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """EMPIR-style: g = sign( sum_k m_k G_k ), m_k = 1 while member k still votes the fixed label."""
    _check(grads, mask, "empir", True)
    return (grads * _weights(mask, grads)).sum(0).sign_()


def eadg(grads: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """EADG (authors' code, not the paper): g = sign( sum_k m_k S_k )."""
    _check(grads, mask, "eadg", True)
    return (grads.sign() * _weights(mask, grads)).sum(0).sign_()


for _rule in (dag, agd, ugd):
    _rule.needs_mask = False  # type: ignore[attr-defined]
for _rule in (empir, eadg):
    _rule.needs_mask = True  # type: ignore[attr-defined]

#: The built-in rules by registry name.
RULES: dict[str, Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]] = {
    "dag": dag,
    "agd": agd,
    "ugd": ugd,
    "empir": empir,
    "eadg": eadg,
}
