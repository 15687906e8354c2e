"""batched_pgd: K sources at once equals PGD on each, up to float rounding; architectures are checked."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trendcli.attacks.batched import batched_pgd, check_same_architecture
from trendcli.attacks.pgd import PGD
from trendcli.errors import UsageError


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))


def test_batched_equals_sequential_pgd_up_to_rounding():
    models = [_net(s) for s in range(3)]
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand((8, 1, 6, 6), generator=g), torch.randint(0, 10, (8,), generator=g)
    eps = 0.1
    out = batched_pgd(models, x, y, eps=eps, alpha=0.02, steps=5, seed=3)
    assert out.shape == (3, 8, 1, 6, 6)
    for k, m in enumerate(models):
        ref = PGD(eps=eps, alpha=0.02, steps=5, seed=3)(m, x, y)
        # a sign step flips only where a gradient entry is within rounding of 0: compare the share
        assert (out[k] - ref).abs().gt(1e-5).float().mean() < 0.02
        assert (out[k] - x).abs().max() <= eps + 1e-6 and out[k].min() >= 0 and out[k].max() <= 1
    assert not torch.equal(out[0], out[1])  # each source gets its own gradients


def test_other_architectures_are_refused():
    other = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
    with pytest.raises(UsageError, match="architecture"):
        check_same_architecture([_net(0), other])
