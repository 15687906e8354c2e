"""Ensemble prediction: majority vote over members' argmax, with explicit tie-break policies.

docs/method.md "Ensemble prediction and TREND design". All functions are vectorized over
images (no Python loop over N).
"""

from __future__ import annotations

from typing import Sequence

import torch

from trendcli.errors import UsageError

TIE_BREAKS = ("paper", "first", "confidence")

__all__ = ["TIE_BREAKS", "predict", "votes"]


def _stack(logits_list: Sequence[torch.Tensor]) -> torch.Tensor:
    if len(logits_list) == 0:
        raise UsageError("an ensemble vote needs at least one member's logits")
    shapes = {tuple(t.shape) for t in logits_list}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise UsageError(f"members' logits must share one shape [N, classes], got {sorted(shapes)}")
    return torch.stack(list(logits_list))  # [K, N, classes]


def _counts(preds: torch.Tensor, classes: int) -> torch.Tensor:
    """votes[n, c] = sum_k 1[preds[k, n] == c]; preds [K, N] -> [N, classes] int64."""
    out = torch.zeros(preds.shape[1], classes, dtype=torch.int64, device=preds.device)
    return out.scatter_add_(1, preds.T, torch.ones_like(preds.T))


def votes(logits_list: Sequence[torch.Tensor]) -> torch.Tensor:
    """votes = sum_k one_hot(argmax f_k(x)): int64 counts [N, classes]."""
    stacked = _stack(logits_list)
    return _counts(stacked.argmax(2), stacked.shape[2])


def predict(logits_list: Sequence[torch.Tensor], tie_break: str = "first", seed: int = 0) -> torch.Tensor:
    """The ensemble's labels [N] int64: the most-voted class, ties broken by ``tie_break``.

    - ``paper`` (the authors' rule, seeded): when every member votes differently (max votes
      = 1), a uniformly random member's label (torch.Generator seeded with ``seed``, one
      draw per image); otherwise the most-voted class, ties to the lowest class index.
    - ``first``: among the tied top classes, the one voted by the earliest-listed member.
    - ``confidence``: among the tied top classes, the one with the highest mean softmax
      over members (ties of that to the lowest class index).
    """
    if tie_break not in TIE_BREAKS:
        raise UsageError(f"unknown tie-break {tie_break!r}; known: {', '.join(TIE_BREAKS)}")
    stacked = _stack(logits_list)
    k, n, classes = stacked.shape
    preds = stacked.argmax(2)  # [K, N]
    counts = _counts(preds, classes)
    top = counts.max(1).values  # [N]
    if tie_break == "paper":
        label = counts.argmax(1)  # argmax returns the first maximum: the lowest class index
        gen = torch.Generator(device=stacked.device).manual_seed(int(seed))
        member = torch.randint(k, (n,), generator=gen, device=stacked.device)
        random_vote = preds.gather(0, member[None]).squeeze(0)
        return torch.where(top == 1, random_vote, label)
    tied = counts == top[:, None]  # [N, classes]: the top classes
    if tie_break == "first":
        in_top = tied.gather(1, preds.T)  # [N, K]: member k's class is a top class
        first = in_top.to(torch.int8).argmax(1)  # the earliest such member
        return preds.T.gather(1, first[:, None]).squeeze(1)
    confidence = stacked.float().softmax(2).mean(0)  # [N, classes]
    return confidence.masked_fill(~tied, float("-inf")).argmax(1)
