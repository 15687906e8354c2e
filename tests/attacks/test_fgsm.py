"""FGSM: one signed step of size eps (attacks/fgsm.py)."""

from __future__ import annotations

import torch
from torch import nn

from trendcli.attacks.fgsm import FGSM


def _two_pixel_model() -> nn.Module:
    # logits = [x_0 - x_1, 0] for a 1x1x2 image
    lin = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -1.0], [0.0, 0.0]]))
    return nn.Sequential(nn.Flatten(), lin)


def test_fgsm_step_by_hand():
    # label 0: dCE/dx = -(1 - p_0) * [1, -1] -> sign [-1, +1]; x = [0.5, 0.5], eps = 0.1
    # -> [0.4, 0.6]. Second image [0, 1] moves to [-0.1, 1.1] and is clipped back to [0, 1].
    x = torch.tensor([[[[0.5, 0.5]]], [[[0.0, 1.0]]]])
    y = torch.tensor([0, 0])
    adv = FGSM(eps=0.1)(_two_pixel_model(), x, y)
    assert torch.allclose(adv[0].flatten(), torch.tensor([0.4, 0.6]))
    assert torch.equal(adv[1], x[1])


def test_fgsm_targeted_moves_toward_target():
    # target 0 from label 1: descend CE(., 0) -> step +eps * [1, -1]: [0.5, 0.5] -> [0.6, 0.4]
    x = torch.tensor([[[[0.5, 0.5]]]])
    adv = FGSM(eps=0.1)(_two_pixel_model(), x, torch.tensor([1]), target=torch.tensor([0]))
    assert torch.allclose(adv.flatten(), torch.tensor([0.6, 0.4]))


def test_fgsm_zero_eps_is_identity(tiny_model, batch):
    x, y = batch
    assert torch.equal(FGSM(eps=0.0)(tiny_model, x, y), x)
