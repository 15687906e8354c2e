"""Contract over every registered attack on a trained model (trendcli.testing.check_attack),
and the house rule that each attack's docstring cites its paper and lists its parameters."""

from __future__ import annotations

import pytest

from trendcli.registry import get_registry
from trendcli.testing import check_attack

ATTACKS = get_registry().names("attack")
FAST = {"steps": 5, "binary_steps": 2, "max_iter": 5, "n_iter": 5, "n_queries": 20, "n_target_classes": 2}
EXTRA = [("deepfool", {"norm": "linf", "eps": 0.05}), ("deepfool", {"norm": "l2", "eps": 0.5})]


def _params(name: str, **overrides) -> dict:
    params = dict(get_registry().factory("attack", name)().params)
    params.update({k: v for k, v in FAST.items() if k in params})
    if params.get("eps") is not None:
        params["eps"] = 0.05
    return params | overrides


def test_builtins_are_registered():
    assert {"fgsm", "bim", "pgd", "cw_l2", "cw_linf", "deepfool"} <= set(ATTACKS)


@pytest.mark.parametrize("name,overrides", [(n, {}) for n in ATTACKS] + EXTRA)
def test_attack_contract(name, overrides, tiny_model, batch):
    factory = get_registry().factory("attack", name)
    check_attack(factory, _params(name, **overrides), model=tiny_model, x=batch[0][:16], y=batch[1][:16], name=name)
    doc = factory.__doc__ or ""
    assert "arXiv" in doc and "Parameters" in doc
