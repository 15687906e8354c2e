"""BIM: PGD started at x (attacks/bim.py)."""

from __future__ import annotations

import torch
from torch import nn

from trendcli.attacks.bim import BIM
from trendcli.attacks.pgd import PGD


def test_bim_projects_each_step_by_hand():
    # logits = [x_0 - x_1, 0], label 0: each step moves x_0 by -alpha and x_1 by +alpha.
    # alpha 0.1, eps 0.15: x_0 = 0.5 -> 0.4 -> 0.3, projected to 0.35 -> 0.25, projected 0.35.
    lin = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -1.0], [0.0, 0.0]]))
    x = torch.tensor([[[[0.5, 0.5]]]])
    adv = BIM(eps=0.15, alpha=0.1, steps=3)(nn.Sequential(nn.Flatten(), lin), x, torch.tensor([0]))
    assert torch.allclose(adv.flatten(), torch.tensor([0.35, 0.65]))


def test_bim_equals_pgd_without_random_start(tiny_model, batch):
    x, y = batch
    a = BIM(eps=0.05, alpha=0.01, steps=10)(tiny_model, x, y)
    b = PGD(eps=0.05, alpha=0.01, steps=10, random_start=False)(tiny_model, x, y)
    assert torch.equal(a, b)
