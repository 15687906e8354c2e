"""PGD on several same-architecture sources at once: stacked weights through torch.func.

Opt-in, not used by the attack stage: benchmarks/batched_sources.py measures it against the
same sources attacked one after another (benchmarks/README.md, "Batched sources"). The
iteration is PGD's (docs/method.md eq. 4; trendcli.attacks.pgd) with the K sources' weights
stacked (``torch.func.stack_module_state``) and the forward vmapped over them
(``functional_call`` + ``vmap``): one forward and one backward per step for all K sources.
Every source starts from the same random start a sequential PGD with the same seed draws.
vmap computes a convolution over stacked weights as one grouped convolution, whose float
rounding can differ from K separate convolutions, so results agree with sequential PGD up to
rounding, not bit for bit (the benchmark measures by how much, and the effect on TM).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from trendcli.attacks.base import ce_sum, make_generator, random_start
from trendcli.errors import UsageError

__all__ = ["batched_pgd", "check_same_architecture"]


def check_same_architecture(models: Sequence[nn.Module]) -> None:
    """UsageError unless every model has the first one's class and parameter/buffer shapes."""
    if len(models) < 1:
        raise UsageError("models is empty; give one or more source models")
    ref = {k: (v.shape, v.dtype) for k, v in models[0].state_dict().items()}
    for i, m in enumerate(models[1:], 1):
        if type(m) is not type(models[0]) or {k: (v.shape, v.dtype) for k, v in m.state_dict().items()} != ref:
            raise UsageError(f"models[{i}] differs in architecture from models[0]; batched attacks need one architecture")


def batched_pgd(
    models: Sequence[nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float = 8 / 255,
    alpha: float = 0.01,
    steps: int = 40,
    random_start_: bool = True,
    seed: int = 0,
) -> torch.Tensor:
    """Untargeted L-inf PGD on each of K models at once: float32 [K, N, C, H, W] in [0, 1].

    x float [N, C, H, W] in [0, 1], y int64 [N]. Equals ``PGD(eps, alpha, steps,
    random_start_, seed)(models[k], x, y)`` for every k up to float rounding.
    """
    check_same_architecture(models)
    for m in models:
        m.eval().requires_grad_(False)
    params, buffers = torch.func.stack_module_state(list(models))
    base = copy.deepcopy(models[0]).to("meta")

    def forward(p: dict, b: dict, xx: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(base, (p, b), (xx,))

    many = torch.func.vmap(forward)
    k = len(models)
    x = x.float()
    start = random_start(x, eps, make_generator(x.device, seed)) if random_start_ else x
    xs = x.unsqueeze(0).expand(k, *x.shape)
    labels = y.repeat(k)
    xa = start.unsqueeze(0).repeat(k, *([1] * x.ndim)).requires_grad_(True)
    for _ in range(steps):
        logits = many(params, buffers, xa)
        (grad,) = torch.autograd.grad(ce_sum(logits.flatten(0, 1), labels), xa)
        with torch.no_grad():
            xa.add_(grad.sign_(), alpha=alpha).sub_(xs).clamp_(-eps, eps).add_(xs).clamp_(0.0, 1.0)
    return xa.detach()
