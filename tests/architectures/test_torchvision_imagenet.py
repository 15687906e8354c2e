"""tv_* models: pretrained weights only from the local torch hub cache, never downloaded."""

from __future__ import annotations

import pytest
import torch
import torchvision

from trendcli.architectures.torchvision_imagenet import (
    rename_old_densenet_keys,
    torchvision_model,
    weights_file,
)
from trendcli.errors import ModelFileError, UsageError


@pytest.fixture(autouse=True)
def hub(tmp_path, monkeypatch):
    """An empty torch hub directory, and any download attempt made an error."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_download(*args, **kwargs):
        raise AssertionError("trendcli tried to download")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", no_download)
    assert torch.hub.get_dir() == str(tmp_path / "hub")
    return tmp_path / "hub" / "checkpoints"


def _save(state: dict, path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)


def test_weights_file_is_named_by_torchvisions_url(hub):
    url = torchvision.models.ResNet18_Weights.DEFAULT.url  # .../resnet18-f37072fd.pth
    assert weights_file("tv_resnet18") == hub / url.rsplit("/", 1)[1]


def test_missing_weights_say_which_file_and_where_in_one_line(hub):
    with pytest.raises(ModelFileError) as err:
        torchvision_model("tv_resnet18", 3, 10, 224, pretrained=True)
    message = str(err.value)
    assert "\n" not in message
    assert str(hub / "resnet18-f37072fd.pth") in message
    assert "never downloads" in message


def test_cached_weights_are_loaded(hub):
    torch.manual_seed(0)
    saved = torchvision_model("tv_resnet18", 3, 1000, 224).state_dict()
    _save(saved, weights_file("tv_resnet18"))
    model = torchvision_model("tv_resnet18", 3, 1000, 224, pretrained=True)
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())


def test_pretrained_first_conv_and_classifier_are_adapted(hub):
    torch.manual_seed(0)
    saved = torchvision_model("tv_resnet18", 3, 1000, 224).state_dict()
    _save(saved, weights_file("tv_resnet18"))
    grey = torchvision_model("tv_resnet18", 1, 10, 28, pretrained=True)
    # One channel: the RGB kernels summed, so a grey image x gives what RGB (x, x, x) gives.
    assert torch.allclose(grey.conv1.weight, saved["conv1.weight"].sum(dim=1, keepdim=True))
    assert torch.equal(grey.layer1[0].conv1.weight, saved["layer1.0.conv1.weight"])
    assert grey.fc.out_features == 10
    # Four channels: kernels R, G, B, R, each scaled by 3/4.
    four = torchvision_model("tv_resnet18", 4, 10, 28, pretrained=True)
    assert torch.allclose(four.conv1.weight[:, 3], saved["conv1.weight"][:, 0] * 0.75)
    assert torch.allclose(four.conv1.weight[:, 1], saved["conv1.weight"][:, 1] * 0.75)


def test_legacy_densenet_checkpoint_is_loaded(hub):
    # torchvision's published DenseNet files use keys like 'denselayer1.norm.1.weight'.
    torch.manual_seed(0)
    saved = torchvision_model("tv_densenet121", 3, 1000, 224).state_dict()
    legacy = {k.replace(".norm1.", ".norm.1.").replace(".conv2.", ".conv.2."): v for k, v in saved.items()}
    assert legacy.keys() != saved.keys()
    _save(legacy, weights_file("tv_densenet121"))
    model = torchvision_model("tv_densenet121", 3, 1000, 224, pretrained=True)
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())


def test_rename_old_densenet_keys():
    old = {
        "features.denseblock1.denselayer12.norm.1.running_var": 1,
        "features.denseblock2.denselayer1.conv.2.weight": 2,
        "features.norm0.weight": 3,
    }
    assert rename_old_densenet_keys(old) == {
        "features.denseblock1.denselayer12.norm1.running_var": 1,
        "features.denseblock2.denselayer1.conv2.weight": 2,
        "features.norm0.weight": 3,
    }


def test_a_foreign_file_is_a_model_file_error(hub):
    _save({"weight": torch.zeros(3)}, weights_file("tv_resnet18"))
    with pytest.raises(ModelFileError, match="does not hold tv_resnet18 weights"):
        torchvision_model("tv_resnet18", 3, 10, 224, pretrained=True)


def test_an_unreadable_file_is_a_model_file_error(hub):
    path = weights_file("tv_resnet18")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelFileError, match="not a readable PyTorch state dict"):
        torchvision_model("tv_resnet18", 3, 10, 224, pretrained=True)


def test_vgg_needs_32x32():
    with pytest.raises(UsageError, match="tv_vgg11 needs images of at least 32x32"):
        torchvision_model("tv_vgg11", 3, 10, 31)
