"""Gradient domination: shares of pixels where D-AG / A-GD equal each member's gradient sign."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from trendcli.attacks.ensemble import EnsemblePGD
from trendcli.ensemble.domination import Domination, directions, measure_domination, member_gradients, plot_domination
from trendcli.ensemble.members import vote_logits


class TwoClass(nn.Module):
    """Logits [z/2, -z/2] with z = a * (w . x - b): class 0 while z > 0; CE(y=0) = log(1 + e^-z)."""

    def __init__(self, w: list[float], b: float, a: float = 1.0):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))
        self.b, self.a = b, a

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.a * (x.flatten(1) @ self.w - self.b)
        return torch.stack([z / 2, -z / 2], 1)


def test_member_gradient_is_the_input_gradient_of_cross_entropy():
    # one pixel, z = 2x, y = 0: dCE/dx = -2 * sigmoid(-2x); at x = 0.5: -2 * sigmoid(-1) = -0.53788
    g = member_gradients([TwoClass([2.0], 0.0)], torch.full((1, 1, 1, 1), 0.5), torch.tensor([0]))
    assert g.shape == (1, 1, 1, 1, 1)
    assert float(g) == pytest.approx(-2 / (1 + math.e), abs=1e-6)


def test_shares_by_hand():
    # K = 3, one image of 4 pixels:
    #   G1 = [100, -100, 100, -100]  S1 = [ 1, -1,  1, -1]
    #   G2 = [ -1,   -1,   1,    1]  S2 = [-1, -1,  1,  1]
    #   G3 = [ -1,    1,  -1,    1]  S3 = [-1,  1, -1,  1]
    # D-AG = sign(sum G) = sign([98, -100, 100, -98]) = S1 -> shares 4/4, 2/4, 0/4
    # A-GD = sign(sum S) = sign([-1, -1, 1, 1]) = S2     -> shares 2/4, 4/4, 2/4
    grads = torch.tensor([[100.0, -100, 100, -100], [-1, -1, 1, 1], [-1, 1, -1, 1]]).view(3, 1, 1, 1, 4)
    result = Domination(["m1", "m2", "m3"], ["dag", "agd"])
    result.add(grads, directions(grads))
    assert result.share("dag") == [1.0, 0.5, 0.0]
    assert result.share("agd") == [0.5, 1.0, 0.5]
    assert result.dominant("dag") == "m1" and result.dominant("agd") == "m2"
    out = result.to_dict()
    assert out["share_zero"] == {"dag": 0.0, "agd": 0.0}
    # ||G||_1: 400, 4, 4 -> 400/408, 4/408, 4/408
    assert out["gradient_l1_share"]["m1"] == pytest.approx(400 / 408)


def dominated_ensemble() -> list[nn.Module]:
    # x = 0.5 on 4 pixels. Member 1: z = 1000 * (w.x - b) with w.x - b = 1e-4, so z = 0.1 and
    # |G1| = 1000 * sigmoid(-0.1) = 475 per pixel; its loss rises as pixels fall. Members 2, 3:
    # z = 0.05, |G| = sigmoid(-0.05) = 0.49; their loss rises as pixels rise.
    return [
        TwoClass([1.0, 1, 1, 1], 2 - 1e-4, a=1000.0),
        TwoClass([-1.0, -1, -1, -1], -2.05),
        TwoClass([-1.0, -1, -1, -0.5], -1.80),
    ]


def test_one_dominating_member_owns_dag_but_not_agd():
    models = dominated_ensemble()
    x, y = torch.full((1, 1, 2, 2), 0.5), torch.tensor([0])
    result = measure_domination(models, [(x, y)], ids=["big", "q1", "q2"])
    # D-AG = sign(-475 + 0.49 + 0.49) = -1 = S1 on every pixel; A-GD = sign(-1 + 1 + 1) = +1 = S2 = S3
    assert result.share("dag") == [1.0, 0.0, 0.0]
    assert result.share("agd") == [0.0, 1.0, 1.0]
    assert result.to_dict()["dominant"] == {"dag": "big", "agd": "q1"}


def test_agd_fools_the_vote_where_dag_cannot():
    # eps 0.05 on 4 pixels. D-AG lowers every pixel: z1 = 1000 * (1e-4 - 0.2) < 0 (member 1 fooled),
    # z2 = 0.05 + 0.2 > 0, z3 = 0.05 + 0.175 > 0: the vote stays 0. A-GD raises them: z2 = 0.05 - 0.2,
    # z3 = 0.05 - 0.175, both < 0, member 1 stays right: 2 of 3 votes for class 1, the attack succeeds.
    models = dominated_ensemble()
    x, y = torch.full((1, 1, 2, 2), 0.5), torch.tensor([0])
    success = {}
    for rule in ("dag", "agd"):
        adv = EnsemblePGD(rule, eps=0.05, alpha=0.01, steps=10, random_start=False)(models, x, y)
        with torch.no_grad():
            vote = vote_logits([m(adv) for m in models], "first")
        success[rule] = float((vote != y).float().mean())
    assert success == {"dag": 0.0, "agd": 1.0}
    assert success["agd"] >= success["dag"]


def test_figure_is_written(tmp_path):
    models = dominated_ensemble()
    x, y = torch.rand(2, 1, 2, 2), torch.tensor([0, 0])
    result = measure_domination(models, [(x, y)], ids=["big", "q1", "q2"])
    path = plot_domination(result, tmp_path / "fig" / "domination.png")
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.example["grads"].shape == (3, 1, 2, 2)
