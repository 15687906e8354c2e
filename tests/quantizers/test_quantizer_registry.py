"""The built-in quantizers through the registry: src/trendcli/builtins/quantizers.py."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import trendcli.builtins.quantizers as builtin_quantizers
from trendcli.errors import UnknownNameError
from trendcli.quantizers.dorefa import DoReFaActivation, DoReFaWeight
from trendcli.registry import Registry, get_registry

INPUT_NAMES = ["fp", "ht", "ht_fs"] + [f"q{b}" for b in range(1, 9)]


@pytest.mark.parametrize("name", INPUT_NAMES)
def test_input_quantizers_resolve_through_the_process_registry(name):
    q = get_registry().factory("input quantizer", name)(per_image=True)
    assert isinstance(q, nn.Module)
    assert q.name == name and q.per_image is True
    assert q.domain == ("pixel" if name == "ht_fs" else "normalized")
    expected_bits = {"fp": None, "ht": 1, "ht_fs": 1}.get(name, int(name[1:]) if name[0] == "q" else None)
    assert q.bits == expected_bits
    x = torch.rand(2, 3, 4, 4)
    assert q(x).shape == x.shape


def test_hyphenated_name_and_default_per_image():
    q = get_registry().factory("input quantizer", "ht-fs")()
    assert q.name == "ht_fs" and q.per_image is False


def test_dorefa_weight_and_activation_quantizers():
    reg = get_registry()
    assert isinstance(reg.factory("weight quantizer", "dorefa")(bits=4), DoReFaWeight)
    assert isinstance(reg.factory("weight quantizer", "dorefa")(bits=32), nn.Identity)
    assert isinstance(reg.factory("activation quantizer", "dorefa")(bits=2), DoReFaActivation)
    assert type(reg.factory("activation quantizer", "dorefa")(bits=32)) is nn.ReLU


def test_the_builtin_module_alone_provides_exactly_these_names():
    reg = Registry(load_entrypoints=False)
    reg.register(builtin_quantizers, name="quantizers")
    assert reg.names("input quantizer") == sorted(INPUT_NAMES)
    assert reg.names("weight quantizer") == ["dorefa"]
    assert reg.names("activation quantizer") == ["dorefa"]
    with pytest.raises(UnknownNameError, match="q9"):
        reg.factory("input quantizer", "q9")
