"""Square attack (attacks/square.py): schedule, honest query counts, parity with torchattacks."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from trendcli.attacks.square import Square, _windows, p_schedule
from trendcli.errors import UsageError


class Counting(nn.Module):
    """The wrapped model, counting how often each image (by batch position in x0) is forwarded."""

    def __init__(self, model: nn.Module, x0: torch.Tensor):
        super().__init__()
        self.model, self.x0 = model, x0
        self.counts = torch.zeros(len(x0), dtype=torch.int64)

    def forward(self, x):
        # an image's row is found by its distance to the clean images (the perturbation is < eps)
        dist = (x.flatten(1)[:, None] - self.x0.flatten(1)[None]).abs().amax(2)
        self.counts += torch.bincount(dist.argmin(1), minlength=len(self.x0))
        return self.model(x)


class NoGrad(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        with torch.no_grad():
            return self.model(x)


def test_p_schedule_by_hand():
    # n_queries 1000 -> i * 10; p halves after 10, 50, 200, ... of 10,000
    assert [p_schedule(i, 1000, 0.8) for i in (1, 2, 5, 6, 20, 21)] == [0.8, 0.4, 0.4, 0.2, 0.2, 0.1]
    assert p_schedule(9000, 10000, 0.8) == 0.8 / 512


def test_windows_are_squares_inside_the_image():
    masks = _windows(50, 6, 5, 3, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert masks.shape == (50, 1, 6, 5) and (masks.flatten(1).sum(1) == 9).all()
    rows, cols = masks[:, 0].any(2), masks[:, 0].any(1)
    assert (rows.sum(1) == 3).all() and (cols.sum(1) == 3).all()
    # every position is reachable: tops 0..3 and lefts 0..2 all appear
    assert set(rows.int().argmax(1).tolist()) == {0, 1, 2, 3} and set(cols.int().argmax(1).tolist()) == {0, 1, 2}


def test_square_counts_queries_honestly(tiny_model, batch):
    x, y = batch[0][:16], batch[1][:16]
    counting = Counting(tiny_model, x)
    attack = Square(eps=0.1, n_queries=50)
    adv = attack(counting, x, y)
    assert torch.equal(attack.last_queries, counting.counts)
    assert int(attack.last_queries.max()) <= 50 and int(attack.last_queries.min()) >= 1
    with torch.no_grad():
        fooled = tiny_model(adv).argmax(1) != y
    # an image that was never fooled used the whole budget; a fooled one stopped there
    assert (attack.last_queries[~fooled] == 50).all()


def test_square_within_eps_bounds_and_gradient_free(tiny_model, batch):
    x, y = batch[0][:16], batch[1][:16]
    adv = Square(eps=0.05, n_queries=30)(NoGrad(tiny_model), x, y)
    assert adv.dtype == torch.float32 and adv.min() >= 0 and adv.max() <= 1
    assert (adv - x).abs().max() <= 0.05 + 1e-6


def test_square_on_fp_model_at_1000_queries(tiny_model, batch, success_rate):
    x, y = batch
    rate = success_rate(tiny_model, Square(eps=0.1, n_queries=1000)(tiny_model, x, y), y)
    assert rate >= 0.4  # measured 0.56 (64 images; eps 8/255 gives about 0.13)


@pytest.mark.slow
def test_square_matches_torchattacks_over_seeds(tiny_model, batch, success_rate):
    torchattacks = pytest.importorskip("torchattacks")
    x, y = batch
    seeds = (0, 1, 2)  # both attacks are random: compare the mean success over three seeds
    ours = sum(success_rate(tiny_model, Square(eps=0.1, n_queries=300, seed=s)(tiny_model, x, y), y) for s in seeds)
    theirs = sum(
        success_rate(tiny_model, torchattacks.Square(tiny_model, eps=0.1, n_queries=300, seed=s)(x, y), y) for s in seeds
    )
    assert abs(ours - theirs) / len(seeds) <= 0.05


def test_square_targeted_and_seeded(tiny_model, batch):
    x, y = batch[0][:16], batch[1][:16]
    target = (y + 1) % 10
    a = Square(eps=0.5, n_queries=200, seed=3)(tiny_model, x, y, target=target)
    with torch.no_grad():
        assert (tiny_model(a).argmax(1) == target).float().mean() >= 0.5
    assert torch.equal(a, Square(eps=0.5, n_queries=200, seed=3)(tiny_model, x, y, target=target))


def test_square_rejects_bad_input():
    for budget in (0, -5, 2.5):
        with pytest.raises(UsageError, match="n_queries"):
            Square(n_queries=budget)
    with pytest.raises(UsageError, match="p_init"):
        Square(p_init=1.5)
    with pytest.raises(UsageError, match="unknown parameter 'loss' for attack 'square'; allowed: eps, n_queries, p_init, seed"):
        Square(loss="ce")


def test_square_params_round_trip():
    attack = Square(eps=0.03, n_queries=77, seed=5)
    assert json.loads(json.dumps(attack.params)) == attack.params
    assert Square(**attack.params) == attack and attack.norm == "linf"
