"""attack(): the layout is an argument, part of the key, and the output is bit-identical under load."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.conftest import needs_fmnist
from trendcli.adversarial.generate import attack
from trendcli.attacks.base import auto_layout
from trendcli.data import get_dataset
from trendcli.errors import UsageError
from trendcli.zoo.files import build_model
from trendcli.zoo.spec import ModelSpec

PGD = {"eps": 8 / 255, "alpha": 2 / 255, "steps": 3, "random_start": True, "seed": 0}


def smallcnn(seed: int = 0):
    """A Fashion-MNIST smallcnn zoo member with random weights (enough to attack)."""
    info = get_dataset("fashion_mnist").info
    spec = ModelSpec(arch="smallcnn", dataset="fashion_mnist", in_channels=info.channels, image_size=info.image_size,
                     num_classes=info.num_classes, mean=info.mean, std=info.std)
    torch.manual_seed(seed)
    return build_model(spec).eval()


@needs_fmnist
@pytest.mark.slow
def test_same_attack_under_cpu_load_is_bit_identical(tmp_path, monkeypatch):
    monkeypatch.setenv("TREND_LAYOUT", "contiguous")  # the library reads no environment variable
    quiet = attack(smallcnn(), "pgd", PGD, limit=24, batch_size=8, device="cpu", store=tmp_path / "quiet")
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        loaded = attack(smallcnn(), "pgd", PGD, limit=24, batch_size=8, device="cpu", store=tmp_path / "loaded")
    finally:
        for p in burners:
            p.kill()
            p.wait()
    assert not quiet.cached and not loaded.cached
    assert loaded.key == quiet.key
    assert quiet.advset.spec["layout"] == auto_layout(smallcnn()) == "channels_last"
    a, b = quiet.advset.read_adv(), loaded.advset.read_adv()
    assert np.array_equal(a.view(np.int32), b.view(np.int32))
    assert np.array_equal(quiet.advset.adv_pred, loaded.advset.adv_pred)
    quiet.advset.close()
    loaded.advset.close()


@needs_fmnist
def test_layout_is_an_argument_and_part_of_the_key(tmp_path):
    store = tmp_path / "adv"
    runs = {lay: attack(smallcnn(), "pgd", PGD, limit=8, device="cpu", store=store, layout=lay)
            for lay in ("contiguous", "channels_last", "auto")}
    assert runs["contiguous"].key != runs["channels_last"].key
    assert runs["auto"].key == runs["channels_last"].key and runs["auto"].cached  # auto is the rule, reused
    assert {r.advset.spec["layout"] for r in runs.values()} == {"contiguous", "channels_last"}
    assert attack(smallcnn(), "pgd", PGD, limit=8, device="cpu", store=store, layout=None).cached  # None: auto
    with pytest.raises(UsageError, match="unknown layout 'nhwc'"):
        attack(smallcnn(), "pgd", PGD, limit=8, device="cpu", store=store, layout="nhwc")
    for r in runs.values():
        r.advset.close()
