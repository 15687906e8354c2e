"""The timm plugin keeps trendcli's contracts; pretrained weights come from the local cache only."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

timm = pytest.importorskip("timm")
torch = pytest.importorskip("torch")
from safetensors.torch import save_file  # noqa: E402
from torch import nn  # noqa: E402

import trend_timm  # noqa: E402
from trend_timm.catalog import MODELS  # noqa: E402
from trend_timm.models import timm_model  # noqa: E402
from trendcli import ModelSpec, build_model, get_registry, load_model  # noqa: E402
from trendcli.errors import ModelFileError, UsageError  # noqa: E402
from trendcli.testing import check_architecture  # noqa: E402

FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_every_listed_model_keeps_the_architecture_contract(arch):
    # Non-ReLU networks are checked in their ReLU form: the contract asks for nn.ReLU modules.
    args = {} if MODELS[arch].activation == "relu" else {"activation": "relu"}
    size = max(28, MODELS[arch].min_size)
    check_architecture(
        functools.partial(timm_model, arch), in_channels=1, num_classes=10, image_size=size,
        arch_args=args, name=arch,
    )


def test_native_gelu_network_has_no_relu_and_refuses_activation_quantization():
    # ViT-Tiny keeps its GELUs; act_bits would replace nothing, so trendcli refuses it.
    net = timm_model("timm_vit_tiny_patch16_224", in_channels=1, num_classes=10, image_size=28)
    assert not any(isinstance(m, nn.ReLU) for m in net.modules())
    assert any(isinstance(m, nn.GELU) for m in net.modules())
    spec = ModelSpec(arch="timm_vit_tiny_patch16_224", dataset="fashion_mnist", in_channels=1, image_size=28,
                     num_classes=10, mean=(0.286,), std=(0.353,), act_bits=4)
    with pytest.raises(UsageError, match="no nn.ReLU modules"):
        build_model(spec)


def test_vit_takes_an_image_size_that_is_not_a_multiple_of_the_patch():
    # 28 px = 1 full 16 px patch + 12 px padded up to 2 x 2 patches
    net = timm_model("timm_vit_tiny_patch16_224", in_channels=1, num_classes=10, image_size=28).eval()
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 10)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"arch": "timm_convnext_atto", "image_size": 28}, "at least 32 px"),
        ({"width": 0.5}, "no width multiplier"),
        ({"activation": "swish"}, "activation must be one of native, relu"),
        ({"arch": "timm_convnext_atto", "image_size": 32, "activation": "relu", "pretrained": True}, "gelu"),
    ],
)
def test_impossible_arguments_are_usage_errors(kwargs, message):
    args = {"arch": "timm_resnet18", "in_channels": 1, "num_classes": 10, "image_size": 28, **kwargs}
    with pytest.raises(UsageError, match=message):
        timm_model(**args)


def _fake_hub_cache(root: Path, repo: str, state: dict) -> Path:
    snapshot = root / f"models--{repo.replace('/', '--')}" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (root / f"models--{repo.replace('/', '--')}" / "refs").mkdir()
    (root / f"models--{repo.replace('/', '--')}" / "refs" / "main").write_text("abc123")
    save_file({k: v.contiguous() for k, v in state.items()}, str(snapshot / "model.safetensors"))
    return snapshot / "model.safetensors"


def test_pretrained_weights_load_from_the_local_hub_cache(tmp_path, monkeypatch):
    # The published net is RGB with 1000 classes; one grey channel sums the RGB stem kernel.
    torch.manual_seed(0)
    published = timm.create_model("mobilenetv3_small_050", num_classes=1000, in_chans=3)
    repo = timm.models.get_pretrained_cfg("mobilenetv3_small_050").hf_hub_id
    _fake_hub_cache(tmp_path, repo, published.state_dict())
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    net = timm_model("timm_mobilenetv3_small_050", in_channels=1, num_classes=10, image_size=28, pretrained=True)
    stem = published.conv_stem.weight.detach()
    assert torch.allclose(net.conv_stem.weight, stem.sum(dim=1, keepdim=True))
    assert torch.equal(net.blocks[0][0].conv_dw.weight, published.blocks[0][0].conv_dw.weight)
    assert net.classifier.out_features == 10


def test_missing_pretrained_weights_name_the_file_and_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(ModelFileError) as exc:
        timm_model("timm_resnet18", in_channels=1, num_classes=10, image_size=28, pretrained=True)
    message = str(exc.value)
    assert "\n" not in message and "never downloads" in message
    assert f"{tmp_path}/hub/models--timm--resnet18.a1_in1k/snapshots/<revision>/model.safetensors" in message


def test_the_registry_lists_the_names_without_importing_torch_or_timm():
    code = (
        "import sys; from trendcli import get_registry; r = get_registry(); "
        "names = [n for n in r.names('architecture') if n.startswith('timm_')]; "
        "print(sorted(names)); assert 'torch' not in sys.modules and 'timm' not in sys.modules, 'imported'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(sorted(MODELS))
    assert set(trend_timm.trend_architectures()) == set(MODELS)
    assert get_registry().get("architecture", "timm_resnet18").plugin == "trend-timm"


@pytest.mark.slow
@pytest.mark.skipif(not FMNIST.exists(), reason="Debian dataset-fashion-mnist not installed")
def test_trend_train_trains_a_timm_model_on_fashion_mnist(tmp_path):
    trend = shutil.which("trend") or str(Path(sys.executable).parent / "trend")
    # ViT-Tiny: LayerNorm, so a few steps already give usable eval-mode statistics (BatchNorm
    # nets need more steps before their running means settle).
    out = tmp_path / "vit"
    proc = subprocess.run(
        [trend, "train", "--arch", "timm-vit-tiny-patch16-224", "--optimizer", "adam", "--epochs", "1",
         "--limit-train", "1024", "--batch-size", "64", "--device", "cpu", "--out", str(out), "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    card = json.loads(proc.stdout)
    assert card["spec"]["arch"] == "timm_vit_tiny_patch16_224" and card["spec"]["in_channels"] == 1
    model = load_model(out)
    assert type(model.network).__module__.startswith("timm.")
    # 16 Adam steps on 1024 images: above chance (0.1), far from converged (0.52 when written)
    assert card["accuracy"]["test"] > 0.2
