"""Auto-PGD (APGD) under an L-inf bound: step-size schedule, momentum, restarts; APGD-T."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

import torch
from torch import nn

from trendcli.attacks.base import Attack, check_count, check_nonnegative, check_positive, input_memory_format, make_generator
from trendcli.attacks.objectives import GRADIENT_LOSSES, check_choice, fooled, forward_all, gradient_loss, strict_params
from trendcli.errors import UsageError

__all__ = ["APGD", "APGDT", "checkpoints"]

MOMENTUM = 0.75  # alpha of the paper's update (arXiv:2003.01690 eq. 3)


def checkpoints(n_iter: int) -> list[int]:
    """w_j = ceil(p_j * n_iter) with p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06).

    Croce & Hein 2020 sec. 3.2; p is kept in integer hundredths so that ceil() is exact. Only
    the checkpoints strictly inside (0, n_iter) act; for n_iter = 100: 22, 41, 57, 70, 80, 87, 93, 99.
    """
    p_prev, p, out = 0, 22, []
    while p <= 100:
        w = -(-p * n_iter // 100)
        if 0 < w < n_iter and (not out or w > out[-1]):
            out.append(w)
        p_prev, p = p, p + max(p - p_prev - 3, 6)
    return out


def _project(xa: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """clip_[0,1]( x + clip_[-eps,eps](xa - x) ), in place on xa."""
    return xa.sub_(x).clamp_(-eps, eps).add_(x).clamp_(0.0, 1.0)


@dataclass
class _Run:
    """One APGD run's output, per image of the run."""

    adv: torch.Tensor  # the last iterate that fooled, else the start
    won: torch.Tensor  # bool: some iterate fooled
    best: torch.Tensor  # the iterate of highest loss
    best_loss: torch.Tensor
    curve: torch.Tensor  # [n_iter + 1]: the batch mean of f(x^(k))


def apgd_run(
    members: Sequence[nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    target: torch.Tensor | None,
    success_target: torch.Tensor | None,
    cfg: "APGD",
    tie_break: str,
    gen: torch.Generator,
) -> _Run:
    """One APGD run from a random start (Croce & Hein 2020, Algorithm 1), L-inf.

    f = the mean over members of ``cfg.loss`` (toward ``target`` when given); success is the
    prediction leaving y (or reaching ``success_target``). n_iter + 1 forwards and backwards
    per member; the step-size checks run on the device (no host sync inside the loop).
    """
    eps, n_iter, rho = cfg.eps, cfg.n_iter, cfg.rho
    per_image = (len(x), 1, 1, 1)

    def evaluate(xa: torch.Tensor):
        xa.requires_grad_(True)
        logits = forward_all(members, xa, cfg.name, need_grad=True)
        loss = torch.stack([gradient_loss(z, cfg.loss, y, target) for z in logits]).mean(0)
        (grad,) = torch.autograd.grad(loss.sum(), xa)
        xa.requires_grad_(False)
        return loss.detach(), fooled(logits, y, success_target, tie_break, cfg.seed), grad

    # x_0 = x + eps * t / ||t||_inf, t ~ U(-1, 1)^d (the authors' start), drawn in the default layout
    t = torch.rand(x.shape, generator=gen, device=x.device, dtype=x.dtype).mul_(2).sub_(1)
    t = t.div_(t.flatten(1).abs().amax(1).clamp_min(1e-12).view(per_image)).contiguous(memory_format=input_memory_format(x))
    x_cur = t.mul_(eps).add_(x).clamp_(0.0, 1.0)
    loss, won, grad = evaluate(x_cur)
    curve = torch.empty(n_iter + 1, device=x.device)
    curve[0] = loss.mean()
    adv, best, best_loss, grad_best = x_cur.clone(), x_cur.clone(), loss.clone(), grad.clone()
    x_prev, prev_loss = x_cur.clone(), loss
    step = torch.full(per_image, 2 * eps, device=x.device, dtype=x.dtype)
    rises = torch.zeros(len(x), device=x.device)
    reduced = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    loss_at_check = best_loss.clone()
    marks, last_mark = set(checkpoints(n_iter)), 0
    for k in range(n_iter):
        a = 1.0 if k == 0 else MOMENTUM
        with torch.no_grad():
            # z = P(x_k + eta * sign(grad)); x_{k+1} = P(x_k + a (z - x_k) + (1 - a)(x_k - x_{k-1}))
            z = _project(x_cur + step * grad.sign(), x, eps)
            x_new = _project(x_cur + a * (z - x_cur) + (1 - a) * (x_cur - x_prev), x, eps)
        x_prev = x_cur
        loss, ok, grad = evaluate(x_new)
        curve[k + 1] = loss.mean()
        adv = torch.where(ok.view(per_image), x_new, adv)
        won |= ok
        rises += (loss > prev_loss).to(rises.dtype)
        prev_loss = loss
        better = loss > best_loss
        best = torch.where(better.view(per_image), x_new, best)
        grad_best = torch.where(better.view(per_image), grad, grad_best)
        best_loss = torch.where(better, loss, best_loss)
        x_cur = x_new
        if k + 1 in marks:
            # Condition 1: the loss rose in fewer than rho * h of the last h steps.
            # Condition 2: the step was not reduced at the last checkpoint and f_max did not grow.
            h = k + 1 - last_mark
            halve = (rises < rho * h) | (~reduced & (best_loss <= loss_at_check))
            step = torch.where(halve.view(per_image), step / 2, step)
            x_cur = torch.where(halve.view(per_image), best, x_cur)
            grad = torch.where(halve.view(per_image), grad_best, grad)
            prev_loss = torch.where(halve, best_loss, prev_loss)  # f(x_k) is now f_max
            reduced, loss_at_check, last_mark = halve, best_loss.clone(), k + 1
            rises.zero_()
    return _Run(adv=adv, won=won, best=best, best_loss=best_loss, curve=curve)


class _Restarts:
    """Keeps per image the first success over runs, else the highest-loss point."""

    def __init__(self, x: torch.Tensor, done: torch.Tensor):
        self.adv, self.done = x.clone(), done.clone()
        self.loss = torch.full((len(x),), float("-inf"), device=x.device)
        self.curve: torch.Tensor | None = None

    def todo(self) -> torch.Tensor:
        """Indices of the images not fooled yet (one host sync per run)."""
        return (~self.done).nonzero().squeeze(1)

    def add(self, idx: torch.Tensor, run: _Run) -> None:
        if self.curve is None:
            self.curve = run.curve
        fresh = ~run.won & (run.best_loss > self.loss[idx])
        point = torch.where(run.won.view(-1, 1, 1, 1), run.adv, run.best)
        take = run.won | fresh
        self.adv[idx] = torch.where(take.view(-1, 1, 1, 1), point, self.adv[idx])
        self.loss[idx] = torch.where(fresh, run.best_loss, self.loss[idx])
        self.done[idx] = self.done[idx] | run.won


@strict_params
@dataclass(frozen=True)
class APGD(Attack):
    """Auto-PGD, L-inf (Croce & Hein 2020, arXiv:2003.01690), with the CE or the DLR loss.

    From x_0 = x + eps * t / ||t||_inf (t uniform in [-1, 1]^d), with eta_0 = 2 eps:
        z_{k+1} = P(x_k + eta_k * sign(grad f(x_k)))
        x_{k+1} = P(x_k + alpha (z_{k+1} - x_k) + (1 - alpha)(x_k - x_{k-1})),  alpha = 0.75 (0 momentum at k = 0)
    P the projection on the eps-ball and [0, 1]. At the checkpoints w_j = ceil(p_j * n_iter)
    (p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)) eta halves and the
    iterate returns to the highest-loss point x_max when (1) f rose in fewer than rho * (w_j -
    w_{j-1}) of the steps since w_{j-1}, or (2) eta was not halved at w_{j-1} and f_max has not
    grown since. Restarts run on the images not yet fooled. Targeted (``target=``): CE toward
    t (loss ce) or the targeted DLR (loss dlr; it lifts z_t over z_y, not necessarily over
    every class, so CE is the stronger targeted choice); success = argmax = t.

    Output per image: the last iterate that fooled the model over all restarts; an image never
    fooled gets its highest-loss iterate (the authors return the clean image there; a
    perturbed one is what a transfer study needs). Images the model already gets wrong are
    returned unchanged.

    After a call, ``last_loss_curve`` holds the batch mean of f(x_k), k = 0..n_iter, of the
    first run (n_iter + 1 floats): a flat curve flags gradient masking.

    Parameters (pixel units on the [0, 1] scale):
        eps: L-inf bound, default 8/255.
        n_iter: iterations per run, default 100 (the authors'); n_iter + 1 gradients per run.
        loss: "ce" (cross-entropy) or "dlr" (difference of logits ratio, eq. 5), default "ce".
        restarts: random restarts, default 1.
        rho: step-halving threshold of condition 1, default 0.75.
        seed: seed of the random starts (a ``torch.Generator`` on the input's device), default 0.

    Call ``attack(model, x, y, target=None)``: x float [N, C, H, W] in [0, 1], y int64 [N];
    returns float32 [N, C, H, W] in [0, 1] with ||x_adv - x||_inf <= eps.
    """

    eps: float = 8 / 255
    n_iter: int = 100
    loss: str = "ce"
    restarts: int = 1
    rho: float = 0.75
    seed: int = 0

    name: ClassVar[str] = "apgd"
    norm: ClassVar[str] = "linf"

    def __post_init__(self) -> None:
        check_nonnegative(eps=self.eps)
        check_positive(rho=self.rho)
        check_count(n_iter=self.n_iter, restarts=self.restarts)
        check_choice("loss", self.loss, GRADIENT_LOSSES)
        if self.rho > 1:
            raise UsageError(f"rho must lie in (0, 1], got {self.rho}")

    def _run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        return self._attack([model], x, y, target, "first")

    def _start(self, members: Sequence[nn.Module], x, y, target, tie_break) -> _Restarts:
        with torch.no_grad():
            logits = forward_all(members, x, self.name, need_grad=False)
            return _Restarts(x, fooled(logits, y, target, tie_break, self.seed))

    def _attack(self, members: Sequence[nn.Module], x, y, target, tie_break: str) -> torch.Tensor:
        state = self._start(members, x, y, target, tie_break)
        gen = make_generator(x.device, self.seed)
        for _ in range(self.restarts):
            idx = state.todo()
            if not len(idx):
                break
            t = None if target is None else target[idx]
            state.add(idx, apgd_run(members, x[idx], y[idx], t, t, self, tie_break, gen))
        self._record(state)
        return state.adv

    def _record(self, state: _Restarts) -> None:
        curve = () if state.curve is None else tuple(state.curve.tolist())
        object.__setattr__(self, "last_loss_curve", curve)


@strict_params
@dataclass(frozen=True)
class APGDT(APGD):
    """Targeted APGD-DLR over the top classes, an untargeted attack (Croce & Hein 2020, arXiv:2003.01690).

    For each of the ``n_target_classes`` classes ranked 2nd, 3rd, ... by the clean logits,
    APGD (L-inf, the update and step-size schedule of :class:`APGD`) ascends the targeted
    DLR loss -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12) toward that class, on the
    images not yet fooled; success = argmax != y. Cost: up to n_target_classes * restarts
    runs of n_iter + 1 gradients. The model needs n_target_classes + 1 classes (and >= 4).
    ``last_loss_curve`` is the first run's (toward the 2nd class).

    Parameters (pixel units on the [0, 1] scale):
        eps: L-inf bound, default 8/255.  n_iter: iterations per run, default 100.
        n_target_classes: target classes tried, default 9 (the authors').
        restarts: runs per target class, default 1.  rho: default 0.75.  seed: default 0.
        loss: fixed "dlr" (the targeted DLR), kept for the shared schedule.

    Call ``attack(model, x, y)`` (untargeted): x float [N, C, H, W] in [0, 1], y int64 [N];
    returns float32 [N, C, H, W] in [0, 1] with ||x_adv - x||_inf <= eps.
    """

    loss: str = "dlr"
    n_target_classes: int = 9

    name: ClassVar[str] = "apgd_t"
    supports_target: ClassVar[bool] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        check_count(n_target_classes=self.n_target_classes)
        if self.loss != "dlr":
            raise UsageError(f"apgd_t uses the targeted DLR loss; loss must be 'dlr', got {self.loss!r}")

    def _attack(self, members: Sequence[nn.Module], x, y, target, tie_break: str) -> torch.Tensor:
        state = self._start(members, x, y, None, tie_break)
        with torch.no_grad():
            clean = torch.stack(forward_all(members, x, self.name, need_grad=False)).mean(0)
        if clean.shape[1] < self.n_target_classes + 1:
            raise UsageError(
                f"n_target_classes must be below the number of classes ({clean.shape[1]}), got {self.n_target_classes}"
            )
        # the classes ranked below y by the clean logits (the mean of the members' for an ensemble)
        ranked = clean.scatter(1, y[:, None], float("-inf")).argsort(1, descending=True)
        gen = make_generator(x.device, self.seed)
        for rank in range(self.n_target_classes):
            for _ in range(self.restarts):
                idx = state.todo()
                if not len(idx):
                    break
                t = ranked[idx, rank]
                state.add(idx, apgd_run(members, x[idx], y[idx], t, None, self, tie_break, gen))
        self._record(state)
        return state.adv
