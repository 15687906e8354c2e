"""Contract over every registered attack: shape, dtype, [0, 1], its norm bound, its params."""

from __future__ import annotations

import json

import pytest
import torch

from trendcli.registry import get_registry

ATTACKS = get_registry().names("attack")
FAST = {"steps": 5, "binary_steps": 2, "max_iter": 5}  # keep every attack quick
EXTRA = [("deepfool", {"norm": "linf", "eps": 0.05}), ("deepfool", {"norm": "l2", "eps": 0.5})]


def _build(name: str, **overrides):
    factory = get_registry().factory("attack", name)
    params = factory().params
    params.update({k: v for k, v in FAST.items() if k in params})
    if params.get("eps") is not None:
        params["eps"] = 0.05
    params.update(overrides)
    return factory(**params)


def test_builtins_are_registered():
    assert {"fgsm", "bim", "pgd", "cw_l2", "cw_linf", "deepfool"} <= set(ATTACKS)


@pytest.mark.parametrize("name,overrides", [(n, {}) for n in ATTACKS] + EXTRA)
def test_attack_contract(name, overrides, tiny_model, batch):
    x, y = batch[0][:16], batch[1][:16]
    attack = _build(name, **overrides)
    adv = attack(tiny_model, x, y)
    assert adv.shape == x.shape and adv.dtype == torch.float32
    assert adv.min() >= 0 and adv.max() <= 1
    eps = attack.params.get("eps")
    if eps is not None:
        delta = (adv - x).flatten(1)
        size = delta.abs().amax(1) if attack.norm == "linf" else delta.norm(dim=1)
        assert size.max() <= eps + 1e-6
    assert attack.norm in ("linf", "l2")
    assert json.loads(json.dumps(attack.params)) == attack.params
    assert type(attack)(**attack.params) == attack
    doc = type(attack).__doc__ or ""
    assert "arXiv" in doc and "Parameters" in doc
