"""DeepFool, L2 and L-inf, batched (attacks/deepfool.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trendcli.attacks.deepfool import DeepFool
from trendcli.errors import UsageError


def _affine_model() -> nn.Module:
    # logits = [3 x_0 + 4 x_1 - 3, 0] on a 1x1x2 image: f' = Z_1 - Z_0 = 3 - 3 x_0 - 4 x_1
    lin = nn.Linear(2, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[3.0, 4.0], [0.0, 0.0]]))
        lin.bias.copy_(torch.tensor([-3.0, 0.0]))
    return nn.Sequential(nn.Flatten(), lin)


def test_deepfool_l2_one_step_on_an_affine_model_by_hand():
    # x = [0.8, 0.5]: Z_0 = 2.4 + 2.0 - 3 = 1.4 > 0 = Z_1, label 0. w' = [-3, -4], ||w'||_2 = 5,
    # |f'| = 1.4, distance 0.28; r = (0.28 + 1e-4) * w' / 5 = -0.2801 * [0.6, 0.8];
    # x_adv = x + 1.02 r = [0.8 - 0.17142, 0.5 - 0.22856]; then Z_0 < 0: done in one step.
    x = torch.tensor([[[[0.8, 0.5]]]])
    adv = DeepFool(norm="l2", overshoot=0.02)(_affine_model(), x, torch.tensor([0]))
    expected = torch.tensor([0.8, 0.5]) - 1.02 * 0.2801 * torch.tensor([0.6, 0.8])
    assert torch.allclose(adv.flatten(), expected, atol=1e-6)


def test_deepfool_linf_one_step_by_hand():
    # same point: ||w'||_1 = 7, distance 1.4 / 7 = 0.2; r = (0.2 + 1e-4) * sign(w') = -0.2001 * [1, 1]
    # x_adv = x - 1.02 * 0.2001 = [0.595898, 0.295898]
    x = torch.tensor([[[[0.8, 0.5]]]])
    adv = DeepFool(norm="linf", overshoot=0.02)(_affine_model(), x, torch.tensor([0]))
    assert torch.allclose(adv.flatten(), torch.tensor([0.8, 0.5]) - 1.02 * 0.2001, atol=1e-6)


def test_deepfool_eps_projects_the_result():
    # the L-inf step above is 0.2041 per pixel; eps = 0.1 clips it to 0.1
    x = torch.tensor([[[[0.8, 0.5]]]])
    adv = DeepFool(norm="linf", eps=0.1)(_affine_model(), x, torch.tensor([0]))
    assert torch.allclose(adv.flatten(), torch.tensor([0.7, 0.4]))


def test_deepfool_leaves_misclassified_images_alone(tiny_model, batch):
    x, y = batch[0][:8], batch[1][:8]
    wrong = (y + 1) % 10  # every image is "already misclassified" under these labels
    assert torch.equal(DeepFool()(tiny_model, x, wrong), x)


def test_deepfool_fools_the_tiny_model(tiny_model, batch, success_rate):
    x, y = batch
    for norm in ("l2", "linf"):
        assert success_rate(tiny_model, DeepFool(norm=norm)(tiny_model, x, y), y) >= 0.95


def test_deepfool_matches_torchattacks(tiny_model, fmnist_test):
    """Settings: overshoot 0.02, 50 steps, all 10 classes, 32 images mapped to [0.2, 0.8].
    On raw Fashion-MNIST torchattacks' DeepFool, which clips to [0, 1] after every step,
    fools only about half the images (the 0-valued background absorbs its steps), while the
    original algorithm (accumulate, then clip) fools all; inside the box the two agree."""
    torchattacks = pytest.importorskip("torchattacks")
    x_all, y_all = fmnist_test
    x_mid = 0.2 + 0.6 * x_all
    with torch.no_grad():
        ok = tiny_model(x_mid).argmax(1) == y_all
    x, y = x_mid[ok][:32], y_all[ok][:32]
    ours = DeepFool(norm="l2", overshoot=0.02, max_iter=50)(tiny_model, x, y)
    theirs = torchattacks.DeepFool(tiny_model, steps=50, overshoot=0.02)(x, y)
    with torch.no_grad():
        ok_ours, ok_theirs = tiny_model(ours).argmax(1) != y, tiny_model(theirs).argmax(1) != y
    assert ok_theirs.float().mean() >= 0.9
    assert abs(ok_ours.float().mean() - ok_theirs.float().mean()) <= 0.1 * ok_theirs.float().mean()
    l2_ours = (ours - x).flatten(1).norm(dim=1)[ok_ours].mean()
    l2_theirs = (theirs - x).flatten(1).norm(dim=1)[ok_theirs].mean()
    assert abs(l2_ours - l2_theirs) <= 0.1 * l2_theirs


def test_deepfool_validation():
    with pytest.raises(UsageError, match="norm"):
        DeepFool(norm="l1")
    with pytest.raises(UsageError, match="untargeted"):
        DeepFool()(_affine_model(), torch.rand(1, 1, 1, 2), torch.tensor([0]), target=torch.tensor([1]))
    assert DeepFool(norm="linf").norm == "linf" and DeepFool().params["norm"] == "l2"
