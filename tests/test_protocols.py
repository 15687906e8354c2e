"""The Protocols of trendcli.protocols: torch-free to import, used by the hookspecs, met by the built-ins."""

from __future__ import annotations

import subprocess
import sys
import typing

import pytest

from trendcli import hookspecs, protocols
from trendcli.registry import KINDS, Lazy, get_registry

#: hook -> the Protocol its factories satisfy.
HOOK_PROTOCOLS = {
    "trend_architectures": protocols.ArchitectureFactory,
    "trend_input_quantizers": protocols.InputQuantizerFactory,
    "trend_weight_quantizers": protocols.WeightQuantizerFactory,
    "trend_act_quantizers": protocols.ActivationQuantizerFactory,
    "trend_datasets": protocols.DatasetFactory,
    "trend_attacks": protocols.AttackFactory,
    "trend_direction_rules": protocols.DirectionRule,
}


def test_importing_the_hookspecs_and_protocols_imports_no_torch():
    code = "import sys, trendcli.hookspecs, trendcli.protocols; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_hookspec_returns_a_mapping_to_its_protocol_or_a_lazy_reference():
    assert set(HOOK_PROTOCOLS) == set(KINDS.values())
    for hook, protocol in HOOK_PROTOCOLS.items():
        hints = typing.get_type_hints(getattr(hookspecs, hook), localns={"Lazy": Lazy})
        assert hints["return"] == dict[str, typing.Union[protocol, Lazy]], hook


def test_the_dataset_types_are_the_ones_in_datasets_base():
    from trendcli.datasets import base

    assert protocols.DatasetSource is base.DatasetSource
    assert protocols.DatasetInfo is base.DatasetInfo
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        protocols.Nothing  # noqa: B018


def test_builtin_components_satisfy_the_runtime_checkable_protocols():
    reg = get_registry()
    for name in reg.names("input quantizer"):
        assert isinstance(reg.factory("input quantizer", name)(), protocols.InputQuantizer), name
    assert isinstance(reg.factory("weight quantizer", "dorefa")(bits=4), protocols.WeightQuantizer)
    assert isinstance(reg.factory("activation quantizer", "dorefa")(bits=4), protocols.ActivationQuantizer)
    for name in reg.names("attack"):
        assert isinstance(reg.factory("attack", name)(), protocols.AttackCallable), name
    for name in reg.names("direction rule"):
        assert isinstance(reg.factory("direction rule", name), protocols.DirectionRule), name


def test_a_quantizer_without_a_domain_is_not_an_input_quantizer():
    from torch import nn

    assert not isinstance(nn.Identity(), protocols.InputQuantizer)
