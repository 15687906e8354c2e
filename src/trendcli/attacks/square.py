"""Square attack under an L-inf bound: score-based random search, no gradients."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Sequence

import torch
from torch import nn

from trendcli.attacks.base import Attack, check_nonnegative, make_generator
from trendcli.attacks.objectives import fooled, forward_all, strict_params, vote_score
from trendcli.errors import UsageError

__all__ = ["Square", "p_schedule"]

# p halves at these iterations of a 10,000-query run (the authors' schedule), rescaled to n_queries
_P_STEPS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def p_schedule(i: int, n_queries: int, p_init: float) -> float:
    """p at iteration i: p_init / 2^m, m = the number of marks in (10, 50, 200, ..., 8000) below i * 10000 / n_queries.

    Andriushchenko et al. 2020 (arXiv:1912.00049) sec. 3 and their code; e.g. n_queries =
    1000, p_init = 0.8: p = 0.8 up to i = 1, 0.4 for i = 2..5, 0.2 for i = 6..20.
    """
    it = int(i / n_queries * 10000)
    return p_init / 2 ** sum(it > mark for mark in _P_STEPS)


def _signs(shape: tuple[int, ...], gen: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """Uniform +-1 of ``shape``."""
    bits = torch.randint(0, 2, shape, generator=gen, device=like.device)
    return bits.to(like.dtype).mul_(2).sub_(1)


def _windows(n: int, h: int, w: int, s: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """Bool [n, 1, h, w]: one s x s square per image at a uniform position inside the image."""
    top = torch.randint(0, h - s + 1, (n, 1), generator=gen, device=device)
    left = torch.randint(0, w - s + 1, (n, 1), generator=gen, device=device)
    rows = torch.arange(h, device=device)[None]
    cols = torch.arange(w, device=device)[None]
    in_rows = (rows >= top) & (rows < top + s)
    in_cols = (cols >= left) & (cols < left + s)
    return (in_rows[:, None, :, None] & in_cols[:, None, None, :])


@strict_params
@dataclass(frozen=True)
class Square(Attack):
    """Square attack, L-inf, score-based (Andriushchenko et al. 2020, arXiv:1912.00049).

    Gradient-free random search on the margin score L = z_y - max_{i != y} z_i (targeted:
    max_{i != t} z_i - z_t); on an ensemble the vote score of
    :func:`trendcli.attacks.objectives.vote_score`. Start: vertical stripes, x_0 = clip_[0,1](x
    + eps * s) with one uniform sign per channel and column. Iteration i: per image, a square
    of side s_i = max(round(sqrt(p_i * H * W)), 1) at a uniform position gets, per channel, a
    uniform sign: x' = P(x_best + 2 eps * sign * window) (P: the eps-ball and [0, 1]); x' is
    kept when it lowers L or fools the model. p_i follows :func:`p_schedule`. An image leaves
    the search as soon as it is fooled.

    Queries are counted honestly: one query is one forward pass of one image (of every
    member, for an ensemble), the start included, and no image gets more than ``n_queries``.
    After a call ``last_queries`` holds the int64 count per image [N] (on the CPU). The
    active set shrinks as images are fooled, which costs one host sync per iteration.
    Images never fooled come back at their best (lowest-score) point, still within eps.

    Parameters (pixel units on the [0, 1] scale):
        eps: L-inf bound, default 8/255.
        n_queries: the query budget per image, default 1000.
        p_init: initial fraction of pixels per square, default 0.8 (AutoAttack's and
            torchattacks' L-inf setting).
        seed: seed of the stripes, squares and signs (a ``torch.Generator`` on the input's
            device), default 0.

    Call ``attack(model, x, y, target=None)``: x float [N, C, H, W] in [0, 1], y int64 [N];
    returns float32 [N, C, H, W] in [0, 1] with ||x_adv - x||_inf <= eps.
    """

    eps: float = 8 / 255
    n_queries: int = 1000
    p_init: float = 0.8
    seed: int = 0

    name: ClassVar[str] = "square"
    norm: ClassVar[str] = "linf"

    def __post_init__(self) -> None:
        check_nonnegative(eps=self.eps)
        if isinstance(self.n_queries, bool) or not isinstance(self.n_queries, int) or self.n_queries < 1:
            raise UsageError(f"n_queries (the query budget per image) must be an integer >= 1, got {self.n_queries!r}")
        if not 0 < self.p_init <= 1:
            raise UsageError(f"p_init must lie in (0, 1], got {self.p_init}")

    def _run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        return self._attack([model], x, y, target, "first")

    def _attack(self, members: Sequence[nn.Module], x, y, target, tie_break: str) -> torch.Tensor:
        with torch.no_grad():
            adv, queries = self._search(members, x, y, target, tie_break)
        object.__setattr__(self, "last_queries", queries.cpu())
        return adv

    def _search(self, members, x, y, target, tie_break):
        n, c, h, w = x.shape
        gen = make_generator(x.device, self.seed)

        def query(xq: torch.Tensor, idx: torch.Tensor):
            logits = forward_all(members, xq, self.name, need_grad=False)
            t = None if target is None else target[idx]
            return vote_score(logits, y[idx], t), fooled(logits, y[idx], t, tie_break, self.seed)

        everyone = torch.arange(n, device=x.device)
        best = (x + self.eps * _signs((n, c, 1, w), gen, x)).clamp_(0.0, 1.0)
        score, done = query(best, everyone)
        queries = torch.ones(n, dtype=torch.int64, device=x.device)
        for i in range(1, self.n_queries):
            idx = (~done).nonzero().squeeze(1)
            if not len(idx):
                break
            s = min(max(round(math.sqrt(p_schedule(i, self.n_queries, self.p_init) * h * w)), 1), h, w)
            x_i, best_i = x[idx], best[idx]
            step = _windows(len(idx), h, w, s, gen, x.device) * _signs((len(idx), c, 1, 1), gen, x)
            cand = (best_i + 2 * self.eps * step).sub_(x_i).clamp_(-self.eps, self.eps).add_(x_i).clamp_(0.0, 1.0)
            new_score, ok = query(cand, idx)
            queries[idx] += 1
            take = (new_score < score[idx]) | ok
            best[idx] = torch.where(take.view(-1, 1, 1, 1), cand, best_i)
            score[idx] = torch.where(take, new_score, score[idx])
            done[idx] = ok
        return best, queries
