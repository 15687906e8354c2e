"""The contract kit (trendcli.testing) over every registered component, and over broken ones."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trendcli import testing
from trendcli.datasets.base import DatasetInfo, Location
from trendcli.errors import UsageError
from trendcli.hookspecs import hookimpl
from trendcli.registry import Registry, get_registry
from trendcli.testing import ContractError

REGISTRY = get_registry()

#: Parameters that set an attack's cost, made small so every attack runs in milliseconds.
FAST = {"steps": 5, "binary_steps": 2, "max_iter": 5, "n_iter": 5, "n_queries": 20, "n_target_classes": 2}

#: (in_channels, image_size, num_classes): CIFAR-100's shape, and Fashion-MNIST's (one channel,
#: 28x28; 32x32 for the torchvision models, some of whose poolings need it).
CIFAR100, FMNIST, GREY32 = (3, 32, 100), (1, 28, 10), (1, 32, 10)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny batches gain nothing from a second thread on the shared machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _torchvision(name: str) -> bool:
    return name.startswith("tv_")


# The built-ins and plugins/trend-example; every other plugin (plugins/trend-timm) runs the kit
# over its own names in its own tests, with the arguments its models take.
OURS = ("trendcli", "trend-example")
ARCHS = [n for n in REGISTRY.names("architecture") if REGISTRY.get("architecture", n).plugin in OURS]
ARCH_CASES = [(n, CIFAR100) for n in ARCHS] + [(n, GREY32 if _torchvision(n) else FMNIST) for n in ARCHS]


@pytest.mark.parametrize("name,shape", ARCH_CASES, ids=[f"{n}-{c}x{s}-{k}" for n, (c, s, k) in ARCH_CASES])
def test_every_architecture_keeps_the_contract(name, shape):
    in_channels, image_size, num_classes = shape
    # torchvision models have a fixed width, and pretrained=True builds the 1000-class model
    # first (seconds each); their pretrained path has its own tests.
    tv = _torchvision(name)
    testing.check_architecture(
        REGISTRY.factory("architecture", name),
        in_channels=in_channels,
        num_classes=num_classes,
        image_size=image_size,
        width=1.0 if tv else 0.25,
        check_pretrained=not tv,
        name=name,
    )


@pytest.mark.parametrize("name", REGISTRY.names("input quantizer"))
def test_every_input_quantizer_keeps_the_contract(name):
    testing.check_input_quantizer(REGISTRY.factory("input quantizer", name), name=name)


@pytest.mark.parametrize("name", REGISTRY.names("weight quantizer"))
def test_every_weight_quantizer_keeps_the_contract(name):
    testing.check_weight_quantizer(REGISTRY.factory("weight quantizer", name), name=name)


@pytest.mark.parametrize("name", REGISTRY.names("activation quantizer"))
def test_every_activation_quantizer_keeps_the_contract(name):
    testing.check_activation_quantizer(REGISTRY.factory("activation quantizer", name), name=name)


@pytest.mark.parametrize("name", REGISTRY.names("dataset"))
def test_every_dataset_keeps_the_contract(name):
    testing.check_dataset(REGISTRY.factory("dataset", name), splits=("test",), name=name)


def _fast_params(name: str) -> dict:
    params = dict(REGISTRY.factory("attack", name)().params)
    params.update({k: v for k, v in FAST.items() if k in params})
    if params.get("eps") is not None:
        params["eps"] = 0.05
    return params


ATTACK_CASES = [(n, _fast_params(n)) for n in REGISTRY.names("attack")]
ATTACK_CASES += [("deepfool", {**_fast_params("deepfool"), "norm": norm, "eps": 0.3}) for norm in ("linf", "l2")]


@pytest.mark.parametrize("name,params", ATTACK_CASES, ids=[f"{n}-{p.get('norm', '')}" for n, p in ATTACK_CASES])
def test_every_attack_keeps_the_contract(name, params):
    testing.check_attack(REGISTRY.factory("attack", name), params, name=name)


@pytest.mark.parametrize("name", REGISTRY.names("direction rule"))
def test_every_direction_rule_keeps_the_contract(name):
    testing.check_direction_rule(REGISTRY.factory("direction rule", name), name=name)


def test_the_example_plugin_keeps_the_contract():
    import trend_example

    registry = Registry(load_entrypoints=False)
    registry.register(trend_example, name="trend-example")
    testing.check_architecture(registry.factory("architecture", "example_mlp"), in_channels=1, image_size=28)
    testing.check_input_quantizer(registry.factory("input quantizer", "binarize"))
    assert {k: registry.names(k) for k in ("architecture", "input quantizer")} == {
        "architecture": ["example_mlp"],
        "input quantizer": ["binarize"],
    }


def test_attack_check_runs_on_the_callers_model_and_returns_x_adv():
    model = testing.tiny_classifier(in_channels=3, image_size=4)
    x = torch.full((2, 3, 4, 4), 0.5)
    y = torch.tensor([0, 1])
    adv = testing.check_attack(REGISTRY.factory("attack", "fgsm"), {"eps": 0.125}, model=model, x=x, y=y)
    # FGSM moves every pixel by exactly eps: 0.5 +- 0.125 (0.5 only where the gradient is 0)
    assert adv.shape == (2, 3, 4, 4)
    assert set(adv.unique().tolist()) <= {0.375, 0.5, 0.625}


def test_tiny_classifier_is_seeded_and_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = testing.tiny_classifier(seed=3), testing.tiny_classifier(seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert not a.training


# -- a deliberately broken plugin: the kit must catch each fault -----------------------------


class _Shift:
    """An "attack" that adds ``scale * eps`` to every pixel (scale > 1 leaves the eps-ball)."""

    def __init__(self, eps: float = 0.1, scale: float = 1.0, seed: int = 0, noisy: bool = False, extra=()):
        self._p = {"eps": eps, "scale": scale, "seed": seed, "noisy": noisy}
        if extra:
            self._p["extra"] = extra

    @property
    def params(self) -> dict:
        return dict(self._p)

    def __call__(self, model, x, y):
        step = self._p["scale"] * self._p["eps"]
        if self._p["noisy"]:  # unseeded: differs from call to call
            return (x + step * torch.rand_like(x)).clamp(0, 1)
        return (x + step).clamp(0, 1)


class _InPlace(_Shift):
    def __call__(self, model, x, y):
        return x.add_(0.01).clamp_(0, 1)


class _FunctionalRelu(nn.Module):
    def __init__(self, in_channels, num_classes, image_size):
        super().__init__()
        self.fc1 = nn.Linear(in_channels * image_size * image_size, 8)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.fc2(self.relu(F.relu(self.fc1(x.flatten(1)))))


def _checked(in_channels, num_classes, image_size, width, pretrained):
    if min(in_channels, num_classes, image_size) < 1 or width <= 0:
        raise UsageError("bad size")


def functional_relu_net(in_channels, num_classes, image_size, width=1.0, pretrained=False):
    _checked(in_channels, num_classes, image_size, width, pretrained)
    if pretrained:
        raise UsageError("no pretrained weights")
    return _FunctionalRelu(in_channels, num_classes, image_size)


def value_error_net(in_channels, num_classes, image_size, width=1.0, pretrained=False):
    # The old trend-example bug: pretrained=True raised ValueError, not UsageError.
    _checked(in_channels, num_classes, image_size, width, pretrained)
    if pretrained:
        raise ValueError("no pretrained weights")
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size**2, 8), nn.ReLU(), nn.Linear(8, num_classes))


def unchecked_net(in_channels, num_classes, image_size, width=1.0, pretrained=False):
    # in_channels=0 builds a Linear(0, 8) instead of saying what is wrong.
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size**2, 8), nn.ReLU(), nn.Linear(8, num_classes))


class _RoundNoBPDA(nn.Module):
    domain = "normalized"

    def __init__(self, per_image=False):
        super().__init__()

    def forward(self, x):
        return torch.round(x)  # gradient zero everywhere: attacks see nothing


class _NoDomain(_RoundNoBPDA):
    domain = "z-scored"


class _Identity(nn.Module):
    role = "activation"

    def __init__(self, bits):
        super().__init__()
        if bits < 1:
            raise UsageError("bits must be >= 1")

    def forward(self, x):
        return x * 1.0  # not quantized: more than 2**bits values


class _NoRole(_Identity):
    role = None

    def forward(self, x):
        return x.clamp(0, 1).round()


def descending_rule(grads, mask=None):
    return -grads.sum(0).sign()


descending_rule.needs_mask = False


def in_place_rule(grads, mask=None):
    return grads.sign_().mean(0)


in_place_rule.needs_mask = False


class _BadNames:
    info = DatasetInfo("bad", 1, 4, 3, ("a", "b"), (0.5,), (0.25,))

    def locate(self, data_dir):
        return Location(found=None, searched=["/nowhere"], hint="make one")

    def load(self, split, data_dir):
        raise UsageError(f"no split {split!r}")


class BrokenPlugin:
    @hookimpl
    def trend_attacks(self):
        return {
            "too_far": lambda **p: _Shift(**{"scale": 2.0, **p}),
            "unseeded": lambda **p: _Shift(**{"noisy": True, **p}),
            "tuple_params": lambda **p: _Shift(**{"extra": (1, 2), **p}),
            "in_place": _InPlace,
        }

    @hookimpl
    def trend_architectures(self):
        return {"functional_relu": functional_relu_net, "value_error": value_error_net, "unchecked": unchecked_net}

    @hookimpl
    def trend_input_quantizers(self):
        return {"round": _RoundNoBPDA, "no_domain": _NoDomain}

    @hookimpl
    def trend_act_quantizers(self):
        return {"no_role": _NoRole, "identity": _Identity}

    @hookimpl
    def trend_weight_quantizers(self):
        return {"identity": _Identity}

    @hookimpl
    def trend_direction_rules(self):
        return {"descending": descending_rule, "in_place": in_place_rule}

    @hookimpl
    def trend_datasets(self):
        return {"bad_names": _BadNames}


ARCH_ARGS = dict(in_channels=1, num_classes=10, image_size=4)

BROKEN = [
    ("attack", "too_far", testing.check_attack, {}, "within eps=0.1"),
    ("attack", "unseeded", testing.check_attack, {}, "same x_adv"),
    ("attack", "tuple_params", testing.check_attack, {}, "JSON round trip"),
    ("attack", "in_place", testing.check_attack, {}, "must not change x in place"),
    ("architecture", "functional_relu", testing.check_architecture, ARCH_ARGS, "functional relu"),
    ("architecture", "value_error", testing.check_architecture, ARCH_ARGS, "not ValueError"),
    ("architecture", "unchecked", testing.check_architecture, ARCH_ARGS, "in_channels=0 must raise"),
    ("input quantizer", "round", testing.check_input_quantizer, {}, "must not be all zero"),
    ("input quantizer", "no_domain", testing.check_input_quantizer, {}, "domain must be one of"),
    ("activation quantizer", "no_role", testing.check_activation_quantizer, {}, 'role = "activation"'),
    ("activation quantizer", "identity", testing.check_activation_quantizer, {}, "at most 2**1 values"),
    ("weight quantizer", "identity", testing.check_weight_quantizer, {}, "at most 2**1 values"),
    ("direction rule", "descending", testing.check_direction_rule, {}, "follow its sign"),
    ("direction rule", "in_place", testing.check_direction_rule, {}, "must not change grads"),
    ("dataset", "bad_names", testing.check_dataset, {}, "one string per class (3), got 2"),
]


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")  # unchecked_net's Linear(0, 8)
@pytest.mark.parametrize("kind,name,check,kwargs,message", BROKEN, ids=[f"{k}-{n}" for k, n, *_ in BROKEN])
def test_the_kit_catches_a_broken_plugin(kind, name, check, kwargs, message):
    registry = Registry(load_entrypoints=False)
    registry.register(BrokenPlugin(), name="broken-plugin")
    with pytest.raises(ContractError) as exc:
        check(registry.factory(kind, name), name=name, **kwargs)
    assert message in str(exc.value)
    assert str(exc.value).startswith(f"{kind} {name!r}")  # names the component
    assert isinstance(exc.value, AssertionError)  # plain pytest reports it as a failed assertion


def test_a_well_behaved_shift_within_eps_passes():
    # The same attack with scale 1 stays on the eps-ball's surface: the bound check is not too strict.
    testing.check_attack(lambda **p: _Shift(**p), {"eps": 0.1})
