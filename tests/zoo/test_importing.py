"""trend import: a factory + checkpoint, a TorchScript archive and ONNX files become zoo members."""

from __future__ import annotations

import json
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from trendcli.data import load_split
from trendcli.errors import ModelFileError, TrendError, UsageError
from trendcli.zoo.blackbox import is_black_box, open_session, run_session
from trendcli.zoo.files import load_model
from trendcli.zoo.importing import import_model

from ..byo import MEAN, STD, train_zscored  # MEAN, STD: the z-scoring the networks were trained on
from ..conftest import needs_fmnist

pytestmark = needs_fmnist

PACKAGE = '''
from torch import nn


class TinyNet(nn.Module):
    """z-scored 28x28 image -> logits: flatten, hidden ReLUs, linear."""

    def __init__(self, hidden=64, classes=10):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, x):
        return self.body(x)


def build(hidden=64, classes=10):
    return TinyNet(hidden, classes)
'''


class SelfNormalizing(nn.Module):
    """Takes pixels in [0, 255] and z-scores them itself (the TorchScript source)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.net((u / 255.0 - MEAN) / STD)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """The package on sys.path, a TinyNet trained for 150 Adam steps, and its files."""
    root = tmp_path_factory.mktemp("byo")
    (root / "byo_models").mkdir()
    (root / "byo_models" / "__init__.py").write_text(textwrap.dedent(PACKAGE))
    sys.path.insert(0, str(root))
    try:
        from byo_models import build

        torch.manual_seed(0)
        net = train_zscored(build(), 0, steps=150)
        save_file(net.state_dict(), str(root / "tiny.safetensors"))
        _trace(SelfNormalizing(net), root / "tiny.torchscript")
        _export(net, root / "tiny.onnx")
        test, test_idx = load_split("fashion_mnist", "test")
        x, y = test.batch(test_idx[:64])
        yield {"root": root, "net": net, "x": x, "y": y}
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("byo_models", None)


def _trace(module: nn.Module, path) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.trace(module.eval(), torch.zeros(2, 1, 28, 28)).save(str(path))


def _export(module: nn.Module, path, shape=(1, 28, 28), dynamic=True) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(), (torch.zeros(2 if dynamic else 1, *shape),), str(path), dynamo=False,
            input_names=["x"], output_names=["logits"],
            dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}} if dynamic else None,
        )


def _reference(zoo) -> torch.Tensor:
    with torch.no_grad():
        return zoo["net"]((zoo["x"] - MEAN) / STD)


FACTORY = "byo_models:build"
IMPORT = dict(dataset="fashion_mnist", limit_test=2000)


def test_a_factory_and_a_safetensors_checkpoint_import_with_equal_logits(zoo, tmp_path):
    model = import_model(FACTORY, tmp_path / "m", checkpoint=zoo["root"] / "tiny.safetensors",
                         mean=[MEAN], std=[STD], **IMPORT)
    with torch.no_grad():
        assert torch.allclose(model(zoo["x"]), _reference(zoo), atol=1e-5)
    card = json.loads((tmp_path / "m" / "model.json").read_text())
    assert card["format"] == "trendcli-model/2" and card["spec"]["arch"] == "imported_factory"
    source = card["source"]
    assert source["kind"] == "factory" and source["factory"] == FACTORY and source["importer"] == "trendcli-import/1"
    from trendcli.fsio import sha256_file

    assert source["sha256"] == sha256_file(zoo["root"] / "tiny.safetensors")
    assert card["accuracy"]["test"] > 0.5 and card["accuracy"]["test_n"] == 2000
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json", "model.safetensors"]


def test_a_torch_checkpoint_loads_with_weights_only(zoo, tmp_path):
    torch.save(zoo["net"].state_dict(), tmp_path / "tiny.pt")
    model = import_model(FACTORY, tmp_path / "m", checkpoint=tmp_path / "tiny.pt", mean=[MEAN], std=[STD], **IMPORT)
    with torch.no_grad():
        assert torch.allclose(model(zoo["x"]), _reference(zoo), atol=1e-5)


def test_a_torchscript_archive_that_normalizes_itself_on_0_255_pixels(zoo, tmp_path):
    # The member feeds u = 255 x to the archive: mean' = (0 - 0) / 255 = 0, std' = 1 / 255.
    model = import_model(zoo["root"] / "tiny.torchscript", tmp_path / "m", normalizes_itself=True,
                         input_range=(0.0, 255.0), **IMPORT)
    assert model.spec.mean == (0.0,) and model.spec.std == pytest.approx((1 / 255,))
    with torch.no_grad():
        assert torch.allclose(model(zoo["x"]), _reference(zoo), atol=1e-4)
    assert (tmp_path / "m" / "network.torchscript").is_file()
    assert json.loads((tmp_path / "m" / "model.json").read_text())["source"]["kind"] == "torchscript"


def test_an_onnx_file_imports_white_box_through_onnx2torch(zoo, tmp_path):
    pytest.importorskip("onnx2torch")
    model = import_model(zoo["root"] / "tiny.onnx", tmp_path / "m", mean=[MEAN], std=[STD], **IMPORT)
    assert not is_black_box(model) and model.meta["source"]["white_box"] is True
    with torch.no_grad():
        assert torch.allclose(model(zoo["x"]), _reference(zoo), atol=1e-5)
    x = zoo["x"].clone().requires_grad_(True)
    model(x).sum().backward()  # a white-box member has input gradients
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_an_onnx_file_imports_black_box_and_refuses_gradients(zoo, tmp_path):
    model = import_model(zoo["root"] / "tiny.onnx", tmp_path / "m", mean=[MEAN], std=[STD], black_box=True, **IMPORT)
    assert is_black_box(model) and model.meta["source"]["white_box"] is False
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json", "network.onnx"]
    z = ((zoo["x"] - MEAN) / STD).numpy()
    expected = run_session(open_session(zoo["root"] / "tiny.onnx"), z)
    with torch.inference_mode():
        got = model(zoo["x"])
    assert np.allclose(got.numpy(), expected, atol=1e-5)
    with pytest.raises(UsageError) as exc:
        model(zoo["x"].clone().requires_grad_(True))
    assert str(exc.value) == (
        "model tiny is black-box (ONNX run in onnxruntime): use a transfer or gradient-free attack (square)"
    )


def test_a_class_order_reorders_the_logits(zoo, tmp_path):
    # The archive's outputs in reverse: output j is class 9 - j, so the member reads output 9 - c for class c.
    reversed_net = SelfNormalizing(nn.Sequential(zoo["net"], _Flip()))
    _trace(reversed_net, tmp_path / "rev.torchscript")
    model = import_model(tmp_path / "rev.torchscript", tmp_path / "m", normalizes_itself=True,
                         input_range=(0, 255), class_order=list(range(9, -1, -1)), **IMPORT)
    with torch.no_grad():
        assert torch.allclose(model(zoo["x"]), _reference(zoo), atol=1e-4)


class _Flip(nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z.flip(1)


def test_reimporting_the_same_file_is_a_no_op(zoo, tmp_path):
    args = dict(checkpoint=zoo["root"] / "tiny.safetensors", mean=[MEAN], std=[STD], **IMPORT)
    import_model(FACTORY, tmp_path / "m", **args)
    card = tmp_path / "m" / "model.json"
    before = (card.stat().st_mtime_ns, card.read_bytes())
    again = import_model(FACTORY, tmp_path / "m", **args)
    assert (card.stat().st_mtime_ns, card.read_bytes()) == before
    assert again.meta["source"]["sha256"] == json.loads(before[1])["source"]["sha256"]


def _nothing_written(tmp_path, before: set) -> None:
    assert set(tmp_path.iterdir()) == before  # no member directory and no temporary one


def _one_line(exc: TrendError) -> str:
    text = str(exc)
    assert "\n" not in text
    return text


def test_a_factory_that_is_not_importable(zoo, tmp_path):
    before = set(tmp_path.iterdir())
    with pytest.raises(UsageError) as exc:
        import_model("no_such_package.nets:build", tmp_path / "m", checkpoint=zoo["root"] / "tiny.safetensors",
                     mean=[MEAN], std=[STD], **IMPORT)
    assert "is not importable" in _one_line(exc.value) and "PYTHONPATH" in str(exc.value)
    _nothing_written(tmp_path, before)


def test_a_checkpoint_whose_keys_do_not_match(zoo, tmp_path):
    state = {k.replace("body.", "layers."): v for k, v in zoo["net"].state_dict().items()}
    save_file(state, str(tmp_path / "renamed.safetensors"))
    before = set(tmp_path.iterdir())
    with pytest.raises(ModelFileError) as exc:
        import_model(FACTORY, tmp_path / "m", checkpoint=tmp_path / "renamed.safetensors", mean=[MEAN], std=[STD], **IMPORT)
    assert "keys do not match" in _one_line(exc.value) and "layers.1.weight" in str(exc.value)
    _nothing_written(tmp_path, before)


def test_a_pickled_checkpoint_that_weights_only_refuses(zoo, tmp_path):
    torch.save({"model": zoo["net"]}, tmp_path / "pickled.pt")  # the whole module, pickled
    before = set(tmp_path.iterdir())
    with pytest.raises(ModelFileError) as exc:
        import_model(FACTORY, tmp_path / "m", checkpoint=tmp_path / "pickled.pt", mean=[MEAN], std=[STD], **IMPORT)
    text = _one_line(exc.value)
    assert "pickled checkpoint that torch.load(weights_only=True) refuses" in text
    assert "byo_models.TinyNet" in text and "safetensors.torch.save_file(model.state_dict()" in text
    _nothing_written(tmp_path, before)


class _BatchOfOne(nn.Module):
    """Flattens the whole batch into one row: exports with a dynamic batch axis but serves only N = 1."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.body[1:](x.reshape(1, 784))


def test_an_onnx_file_with_a_dynamic_shape_trendcli_cannot_serve(zoo, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_BatchOfOne(zoo["net"]).eval(), (torch.zeros(1, 1, 28, 28),), str(tmp_path / "one.onnx"),
                          dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "n"}})
    before = set(tmp_path.iterdir())
    with pytest.raises(UsageError) as exc:
        import_model(tmp_path / "one.onnx", tmp_path / "m", mean=[MEAN], std=[STD], **IMPORT)
    assert "onnxruntime cannot run" in _one_line(exc.value) and "dynamic batch axis" in str(exc.value)
    _nothing_written(tmp_path, before)


def test_an_onnx_file_with_another_input_shape_or_class_count(zoo, tmp_path):
    from byo_models import build

    _export(build(classes=5), tmp_path / "five.onnx")
    _export(nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10)), tmp_path / "rgb.onnx", shape=(3, 32, 32))
    before = set(tmp_path.iterdir())
    with pytest.raises(UsageError) as exc:
        import_model(tmp_path / "five.onnx", tmp_path / "m", mean=[MEAN], std=[STD], **IMPORT)
    assert "gives 5 logits but fashion_mnist has 10 classes" in _one_line(exc.value)
    with pytest.raises(UsageError) as exc:
        import_model(tmp_path / "rgb.onnx", tmp_path / "m", mean=[MEAN], std=[STD], **IMPORT)
    assert "takes input of shape ['n', 3, 32, 32]; fashion_mnist images are [N, 1, 28, 28]" in _one_line(exc.value)
    _nothing_written(tmp_path, before)


def test_accuracy_at_chance_is_refused(zoo, tmp_path):
    # A class order shifted by one: every prediction lands on the wrong class.
    before = set(tmp_path.iterdir())
    with pytest.raises(UsageError) as exc:
        import_model(FACTORY, tmp_path / "m", checkpoint=zoo["root"] / "tiny.safetensors", mean=[MEAN], std=[STD],
                     class_order=[(c + 1) % 10 for c in range(10)], **IMPORT)
    text = _one_line(exc.value)
    assert "chance is 0.100" in text and "wrong normalization" in text and "class order" in text
    _nothing_written(tmp_path, before)


def test_the_chance_rule_is_the_wilson_interval_reaching_one_over_k():
    # 10 classes, n = 100: 16 correct gives Wilson [0.1001, 0.2440] (kept); 15 gives [0.0931, 0.2326] (refused)
    from pathlib import Path

    from trendcli.data import get_dataset
    from trendcli.zoo.importing import _check_accuracy

    info = get_dataset("fashion_mnist").info
    assert _check_accuracy(16, 100, info, Path("m.onnx"))["test"] == 0.16
    with pytest.raises(UsageError, match="scores 0.150 on 100"):
        _check_accuracy(15, 100, info, Path("m.onnx"))


def test_the_normalization_folds_the_input_range():
    # range [0, 255], mean 72.93, std 90.0: m' = 72.93 / 255 = 0.286, s' = 90 / 255 = 0.3529
    from trendcli.data import get_dataset
    from trendcli.zoo.importing import _normalization

    mean, std, statement = _normalization(get_dataset("fashion_mnist").info, [72.93], [90.0], False, (0, 255))
    assert mean == pytest.approx((0.286,)) and std == pytest.approx((90 / 255,))
    assert statement == {"mean": [72.93], "std": [90.0], "normalizes_itself": False, "range": [0.0, 255.0]}
    with pytest.raises(UsageError, match="mean= and std="):
        _normalization(get_dataset("fashion_mnist").info, None, None, False, (0, 1))


def test_a_version_1_card_still_loads(zoo, tmp_path):
    from trendcli import ModelSpec, build_model, save_model

    spec = ModelSpec(arch="smallcnn", dataset="fashion_mnist", in_channels=1, image_size=28, num_classes=10,
                     mean=(MEAN,), std=(STD,))
    save_model(build_model(spec), tmp_path / "old", {"id": "old"})
    card_path = tmp_path / "old" / "model.json"
    card = json.loads(card_path.read_text())
    card["format"] = "trendcli-model/1"
    card_path.write_text(json.dumps(card))
    assert load_model(tmp_path / "old").spec == spec
