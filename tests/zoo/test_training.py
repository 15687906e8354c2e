"""Training: defaults, schedule, augmentation, determinism, interruption and resume."""

from __future__ import annotations

import json

import pytest
import torch

from trendcli.errors import UsageError
from trendcli.fsio import sha256_file
from trendcli.progress import NullProgress
from trendcli.zoo.training import TrainConfig, lr_at, random_crop_flip, train
from trendcli.zoo.files import load_model

from ..conftest import needs_fmnist

TINY = dict(arch="smallcnn", epochs=1, limit_train=256, batch_size=64, device="cpu")


def test_authors_defaults():
    sgd = TrainConfig(optimizer="sgd").resolved()
    adam = TrainConfig(optimizer="Adam").resolved()
    assert (sgd.lr, sgd.weight_decay, sgd.momentum) == (0.01, 5e-4, 0.9)
    assert (adam.optimizer, adam.lr, adam.weight_decay) == ("adam", 1e-3, 0.0)


def test_lr_drops_tenfold_at_60_and_80_percent():
    cfg = TrainConfig(epochs=10, lr=0.01).resolved()
    # epochs 0..5 at 0.01; 6, 7 at 0.001 (60% of 10 = 6); 8, 9 at 0.0001 (80% = 8)
    assert [round(lr_at(cfg, e), 8) for e in range(10)] == [0.01] * 6 + [0.001] * 2 + [0.0001] * 2


@pytest.mark.parametrize("bad", [dict(epochs=0), dict(batch_size=0), dict(lr=-1.0), dict(optimizer="rmsprop"), dict(limit_train=0)])
def test_invalid_numbers_are_usage_errors(bad):
    with pytest.raises(UsageError):
        TrainConfig(**bad).resolved()


def test_random_crop_flip_shapes_and_identity_without_padding():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 3, 8, 8)
    assert torch.equal(random_crop_flip(x, g, pad=0, flip=False), x)
    out = random_crop_flip(x, g, pad=2)
    assert out.shape == x.shape
    # every output pixel is either an input pixel or zero padding
    assert set(out.unique().tolist()) <= set(x.unique().tolist()) | {0.0}


class _StopAfter(NullProgress):
    """Raises KeyboardInterrupt after ``n`` training steps (an interrupted run)."""

    def __init__(self, n: int):
        self.n = n

    def advance(self, handle, amount=1, description=None):
        self.n -= amount
        if self.n < 0:
            raise KeyboardInterrupt


@needs_fmnist
def test_same_seed_same_weights_and_resume_after_interrupt(tmp_path):
    cfg = TrainConfig(**{**TINY, "epochs": 2})
    a = train(cfg, tmp_path / "a")
    train(cfg, tmp_path / "b")
    assert sha256_file(tmp_path / "a" / "model.safetensors") == sha256_file(tmp_path / "b" / "model.safetensors")

    # 256 images / 64 = 4 steps per epoch: stop in the middle of epoch 2
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "c", progress=_StopAfter(6))
    assert not (tmp_path / "c").exists(), "an interrupted run must not leave a complete-looking model dir"
    resumed = train(cfg, tmp_path / "c")
    assert resumed.meta["weights_sha256"] == a.meta["weights_sha256"]
    log = [json.loads(line) for line in (tmp_path / "c" / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]


@needs_fmnist
@pytest.mark.parametrize("kw", [dict(input_quant="q1"), dict(input_quant="ht"), dict(weight_bits=2), dict(act_bits=2)])
def test_quantized_models_train_and_reload_exactly(tmp_path, kw):
    model = train(TrainConfig(**TINY, **kw), tmp_path / "m")
    card = json.loads((tmp_path / "m" / "model.json").read_text())
    for key, value in kw.items():
        assert card["spec"][key] == value
    assert set(card) >= {"id", "spec", "train", "split", "accuracy", "weights_sha256", "versions"}
    again = load_model(tmp_path / "m")
    x = torch.rand(16, 1, 28, 28)
    with torch.inference_mode():
        assert torch.equal(model(x), again(x))


@needs_fmnist
@pytest.mark.slow
def test_smallcnn_one_epoch_reaches_85_percent(tmp_path):
    model = train(TrainConfig(arch="smallcnn", epochs=1, device="cpu"), tmp_path / "fp")
    assert model.meta["accuracy"]["test"] >= 0.85
