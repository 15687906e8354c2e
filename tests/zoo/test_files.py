"""Model directories: atomic save, load, verification."""

from __future__ import annotations

import json

import pytest
import torch

from trendcli.data import get_dataset
from trendcli.errors import ModelFileError
from trendcli.zoo.spec import ModelSpec
from trendcli.zoo.files import build_model, load_model, resolve_device, save_model


def _spec(**kw):
    info = get_dataset("fashion-mnist").info
    return ModelSpec(arch="smallcnn", dataset=info.name, in_channels=1, image_size=28, num_classes=10,
                     mean=info.mean, std=info.std, **kw)


def test_save_and_load_give_identical_predictions(tmp_path):
    torch.manual_seed(0)
    model = build_model(_spec(input_quant="q2", weight_bits=4)).eval()
    save_model(model, tmp_path / "m", {"id": "test"})
    loaded = load_model(tmp_path / "m")
    x = torch.rand(8, 1, 28, 28)
    with torch.inference_mode():
        assert torch.equal(model(x), loaded(x))
    assert loaded.meta["id"] == "test" and len(loaded.meta["weights_sha256"]) == 64


def test_per_image_override(tmp_path):
    model = build_model(_spec(input_quant="q1")).eval()
    save_model(model, tmp_path / "m", {})
    assert load_model(tmp_path / "m", per_image=True).spec.per_image is True


def test_failed_save_leaves_previous_version(tmp_path):
    model = build_model(_spec()).eval()
    save_model(model, tmp_path / "m", {"id": "first"})

    class Boom(dict):
        def items(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        save_model(model, tmp_path / "m", {"id": "second"}, extra_files=Boom(notes="x"))
    assert json.loads((tmp_path / "m" / "model.json").read_text())["id"] == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_tampered_weights_and_missing_dirs_are_clear_errors(tmp_path):
    with pytest.raises(ModelFileError, match="no model directory"):
        load_model(tmp_path / "absent")
    model = build_model(_spec()).eval()
    save_model(model, tmp_path / "m", {})
    with open(tmp_path / "m" / "model.safetensors", "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\0\0\0\1")
    with pytest.raises(ModelFileError, match="sha256"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "model.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_model(tmp_path / "m")


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")


def test_model_directory_and_card_are_not_private(tmp_path):
    import stat

    model = build_model(_spec()).eval()
    save_model(model, tmp_path / "m", {})
    # mkdtemp/mkstemp create 0700/0600; a shared run directory needs the umask's permissions
    assert stat.S_IMODE((tmp_path / "m").stat().st_mode) & 0o055 == 0o055 & ~_umask_now()
    assert stat.S_IMODE((tmp_path / "m" / "model.json").stat().st_mode) & 0o044 == 0o044 & ~_umask_now()


def _umask_now() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def _card_edit(model_dir, edit):
    card_path = model_dir / "model.json"
    card = json.loads(card_path.read_text())
    card_path.write_text(json.dumps(edit(card)))


def _resign(model_dir):
    """Make the card's sha256 match the (edited) weights, as a careless tool would."""
    from trendcli.fsio import sha256_file

    _card_edit(model_dir, lambda c: {**c, "weights_sha256": sha256_file(model_dir / "model.safetensors")})


def _flip_header(model_dir):
    # a safetensors file: 8-byte little-endian header length, then the JSON header. Swap a dtype.
    path = model_dir / "model.safetensors"
    data = bytearray(path.read_bytes())
    n = int.from_bytes(data[:8], "little")
    header = data[8 : 8 + n].decode()
    data[8 : 8 + n] = header.replace('"F32"', '"I32"', 1).encode()
    path.write_bytes(bytes(data))
    _resign(model_dir)


MALFORMED_CARDS = {
    "wrong type": (lambda d: _card_edit(d, lambda c: {**c, "spec": {**c["spec"], "image_size": "28"}}), "'image_size' must be a positive integer"),
    "spec is a string": (lambda d: _card_edit(d, lambda c: {**c, "spec": "smallcnn"}), "'spec' must be a JSON object"),
    "card is a list": (lambda d: _card_edit(d, lambda c: [c]), "holds a JSON list"),
    "missing spec field": (lambda d: _card_edit(d, lambda c: {**c, "spec": {k: v for k, v in c["spec"].items() if k != "arch"}}), "lacks arch"),
    "5 classes, weights for 10": (lambda d: _card_edit(d, lambda c: {**c, "spec": {**c["spec"], "num_classes": 5}}), "does not fit the spec"),
    "flipped header, matching sha": (_flip_header, "model.safetensors"),
    "not UTF-8": (lambda d: (d / "model.json").write_bytes(b"\xff\xfe{}"), "not UTF-8"),
    "sha not a string": (lambda d: _card_edit(d, lambda c: {**c, "weights_sha256": 7}), "'weights_sha256' must be a string"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_CARDS))
def test_malformed_model_files_are_one_clear_error(tmp_path, case):
    corrupt, message = MALFORMED_CARDS[case]
    save_model(build_model(_spec()).eval(), tmp_path / "m", {"id": "x"})
    corrupt(tmp_path / "m")
    with pytest.raises(ModelFileError) as exc:
        load_model(tmp_path / "m")
    assert message in str(exc.value)
    assert str(tmp_path / "m") in str(exc.value)
