"""Model specs and model ids."""

from __future__ import annotations

import pytest

from trendcli.errors import UsageError
from trendcli.zoo.spec import ModelSpec, model_id, parse_model_id


def _spec(**kw):
    base = dict(arch="resnet20", dataset="cifar10", in_channels=3, image_size=32, num_classes=10,
                mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    return ModelSpec(**{**base, **kw})


@pytest.mark.parametrize(
    "kw, expected",
    [
        ({}, "resnet20.fp-w32-a32"),
        ({"input_quant": "q1", "weight_bits": 4}, "resnet20.q1-w4-a32"),
        ({"width": 0.5, "input_quant": "ht_fs", "act_bits": 2}, "resnet20@0.5.ht_fs-w32-a2"),
        ({"input_quant": "q2", "per_image": True}, "resnet20.q2~img-w32-a32"),
    ],
)
def test_model_id_round_trip(kw, expected):
    spec = _spec(**kw)
    text = model_id(spec, "sgd", 3)
    assert text == expected + ".sgd.s3"
    parsed = parse_model_id(text)
    for key in ("arch", "width", "input_quant", "per_image", "weight_bits", "act_bits"):
        assert parsed[key] == getattr(spec, key)
    assert parsed["optimizer"] == "sgd" and parsed["seed"] == 3
    assert parse_model_id(expected)["arch"] == "resnet20"


def test_bad_id_and_bits_are_usage_errors():
    with pytest.raises(UsageError):
        parse_model_id("not an id")
    with pytest.raises(UsageError, match="weight_bits must be 1..16"):
        _spec(weight_bits=0)
    with pytest.raises(UsageError, match="act_bits must be 1..16"):
        _spec(act_bits=20)


def test_spec_dict_round_trip():
    spec = _spec(input_quant="ht", weight_bits=2)
    assert ModelSpec.from_dict(spec.to_dict()) == spec
