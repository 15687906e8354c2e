"""The contract kit: checks a plugin author calls from their own tests.

One check per extension point (the contracts are the Protocols in :mod:`trendcli.protocols`)::

    from trendcli.testing import check_architecture, check_attack

    def test_my_net_keeps_the_contract():
        check_architecture(my_net, in_channels=1, num_classes=10, image_size=28)

    def test_my_attack_keeps_the_contract():
        check_attack(MyAttack, {"eps": 0.03, "steps": 5})

Each check runs the component on tiny random inputs (CPU, a fixed seed, the global RNG state
restored afterwards) and raises :class:`ContractError`, an ``AssertionError``, saying which
component broke which part of the contract. This module imports torch; the CLI never imports it.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from trendcli.errors import TrendError, UsageError
from trendcli.protocols import DOMAINS, NORMS

__all__ = [
    "ContractError",
    "check_activation_quantizer",
    "check_architecture",
    "check_attack",
    "check_dataset",
    "check_direction_rule",
    "check_input_quantizer",
    "check_weight_quantizer",
    "tiny_classifier",
]


class ContractError(AssertionError):
    """A factory, or what it built, breaks the contract of its hook (see trendcli.protocols)."""


# -- shared helpers ----------------------------------------------------------------------


def _label(kind: str, obj: object, name: str | None) -> str:
    """``architecture 'smallcnn'``: the kind and a readable name for messages."""
    if name is None:
        target = obj.func if isinstance(obj, functools.partial) else obj
        name = getattr(target, "__qualname__", None) or type(target).__name__
        if isinstance(obj, functools.partial) and obj.args:
            name += "(" + ", ".join(repr(a) for a in obj.args) + ")"
    return f"{kind} {name!r}"


def _require(ok: object, label: str, asks: str) -> None:
    """Raise ContractError ``<label>: <what the contract asks>`` unless ``ok``."""
    if not ok:
        raise ContractError(f"{label}: {asks}")


def _require_usage_error(call: Callable[[], object], label: str, what: str) -> None:
    """``call()`` must raise trendcli.errors.UsageError (the one-line error the CLI prints)."""
    try:
        call()
    except UsageError:
        return
    except Exception as e:  # anything else is the contract broken
        raise ContractError(
            f"{label}: {what} must raise trendcli.errors.UsageError, not {type(e).__name__}: {e}"
        ) from e
    raise ContractError(f"{label}: {what} must raise trendcli.errors.UsageError, but it returned")


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """torch's global CPU RNG seeded for the block and restored afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _check_tensor(out: object, shape: tuple[int, ...], label: str, what: str) -> torch.Tensor:
    """``out`` must be a finite floating tensor of ``shape``."""
    _require(isinstance(out, torch.Tensor), label, f"{what} must be a torch.Tensor, got {type(out).__name__}")
    assert isinstance(out, torch.Tensor)
    _require(tuple(out.shape) == tuple(shape), label, f"{what} must have shape {list(shape)}, got {list(out.shape)}")
    _require(out.is_floating_point(), label, f"{what} must be a floating tensor, got {out.dtype}")
    _require(bool(torch.isfinite(out).all()), label, f"{what} must be finite (it has NaN or inf)")
    return out


def _check_backward(x: torch.Tensor, label: str, what: str) -> None:
    """After a backward pass, ``x.grad`` must exist, be finite and not all zero."""
    _require(x.grad is not None, label, f"{what} must reach the input (no gradient arrived)")
    assert x.grad is not None
    _require(bool(torch.isfinite(x.grad).all()), label, f"{what} must be finite (it has NaN or inf)")
    _require(bool(x.grad.abs().sum() > 0), label, f"{what} must not be all zero (attacks need a surrogate)")


def _levels(t: torch.Tensor) -> int:
    return int(t.detach().unique().numel())


# -- architectures -------------------------------------------------------------------------


def check_architecture(
    factory: Callable[..., Any],
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    image_size: int = 32,
    width: float = 1.0,
    arch_args: Mapping[str, Any] | None = None,
    batch_size: int = 2,
    check_pretrained: bool = True,
    name: str | None = None,
    seed: int = 0,
) -> nn.Module:
    """Build ``factory(in_channels=, num_classes=, image_size=, width=, pretrained=False, **arch_args)``
    and check it against :class:`~trendcli.protocols.ArchitectureFactory`; return the model (eval mode).

    Checks: an ``nn.Module``; a training-mode forward of ``[batch_size, in_channels, image_size,
    image_size]`` gives finite logits ``[batch_size, num_classes]`` and a backward gives a finite,
    non-zero input gradient; every ReLU is an ``nn.ReLU`` module (at least one); the last
    ``nn.Conv2d``/``nn.Linear`` is an ``nn.Linear`` with ``num_classes`` outputs that gives the
    logits; ``in_channels=0``, ``num_classes=0``, ``image_size=0`` and ``width=0`` raise
    ``UsageError``; with ``check_pretrained``, ``pretrained=True`` builds or raises a
    ``TrendError`` (``UsageError`` when there are no pretrained weights).
    """
    label = _label("architecture", factory, name)
    args: dict[str, Any] = dict(
        in_channels=in_channels, num_classes=num_classes, image_size=image_size, width=width, pretrained=False
    )
    args.update(arch_args or {})
    with _seeded(seed):
        model = factory(**args)
        _require(isinstance(model, nn.Module), label, f"the factory must return an nn.Module, got {type(model).__name__}")
        x = torch.randn(batch_size, in_channels, image_size, image_size)
        _check_forward_backward(model, x, num_classes, label)
        _check_relu_modules(model, x, label)
        _check_classifier_last(model, x, num_classes, label)
        _check_refusals(factory, args, label, check_pretrained)
    return model.eval()


def _check_forward_backward(model: nn.Module, x: torch.Tensor, num_classes: int, label: str) -> None:
    model.train()
    xg = x.clone().requires_grad_(True)
    logits = _check_tensor(model(xg), (len(x), num_classes), label, "the logits of a training-mode forward")
    labels = torch.arange(len(x)) % num_classes
    F.cross_entropy(logits, labels).backward()
    _check_backward(xg, label, "the input gradient of the cross-entropy")
    model.zero_grad(set_to_none=True)


def _check_relu_modules(model: nn.Module, x: torch.Tensor, label: str) -> None:
    # Activation quantization replaces nn.ReLU modules; a functional relu would escape it.
    # nn.ReLU.forward calls F.relu too, so a call counts as functional only outside a module.
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    _require(relus, label, "the network must use nn.ReLU modules (activation quantizers replace them); it has none")
    inside = [0]
    functional: list[tuple[int, ...]] = []
    real_relu = F.relu

    def relu(t: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        if not inside[0]:
            functional.append(tuple(t.shape))
        return real_relu(t, inplace=inplace)

    def enter(*_: object) -> None:
        inside[0] += 1

    def leave(*_: object) -> None:
        inside[0] -= 1

    handles = [h for m in relus for h in (m.register_forward_pre_hook(enter), m.register_forward_hook(leave))]
    F.relu = relu  # type: ignore[assignment]
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        F.relu = real_relu  # type: ignore[assignment]
        for h in handles:
            h.remove()
    _require(
        not functional,
        label,
        f"every ReLU must be an nn.ReLU module (activation quantizers replace them); "
        f"{len(functional)} functional relu call(s), e.g. on a tensor of shape {list(functional[0]) if functional else []}",
    )


def _check_classifier_last(model: nn.Module, x: torch.Tensor, num_classes: int, label: str) -> None:
    # Weight quantization keeps the last nn.Linear/nn.Conv2d (registration order) full precision.
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    _require(layers, label, "the network must have nn.Conv2d/nn.Linear layers (weight quantizers act on them)")
    last = layers[-1]
    _require(
        isinstance(last, nn.Linear) and last.out_features == num_classes,
        label,
        f"the last nn.Conv2d/nn.Linear registered must be the classifier, an nn.Linear with {num_classes} "
        f"outputs (weight quantization keeps it full precision); it is {last}",
    )
    seen: dict[str, torch.Tensor] = {}
    handle = last.register_forward_hook(lambda m, i, out: seen.setdefault("out", out))
    try:
        with torch.no_grad():
            logits = model(x)
    finally:
        handle.remove()
    _require(
        "out" in seen and torch.equal(seen["out"], logits),
        label,
        "the classifier's output must be the logits (nothing after the last nn.Linear)",
    )


def _check_refusals(factory: Callable[..., Any], args: dict[str, Any], label: str, check_pretrained: bool) -> None:
    for key, bad in (("in_channels", 0), ("num_classes", 0), ("image_size", 0), ("width", 0.0)):
        _require_usage_error(lambda: factory(**{**args, key: bad}), label, f"the factory called with {key}={bad!r}")
    if not check_pretrained:
        return
    try:
        model = factory(**{**args, "pretrained": True})
    except TrendError:
        return
    except Exception as e:  # a plain ValueError is not a one-line CLI error
        raise ContractError(
            f"{label}: pretrained=True must build the model or raise trendcli.errors.UsageError "
            f"(no pretrained weights) or another TrendError, not {type(e).__name__}: {e}"
        ) from e
    _require(isinstance(model, nn.Module), label, "pretrained=True must return an nn.Module")


# -- quantizers ----------------------------------------------------------------------------


def check_input_quantizer(
    factory: Callable[..., Any], *, shape: Sequence[int] = (4, 3, 8, 8), name: str | None = None, seed: int = 0
) -> None:
    """Check ``factory(per_image=False)`` and ``factory(per_image=True)`` against
    :class:`~trendcli.protocols.InputQuantizer`.

    Checks: an ``nn.Module`` with ``domain`` in ("normalized", "pixel"); on an input of
    ``shape`` (z-scored values, or [0, 1] pixels for ``"pixel"``) the output is finite, of the
    same shape, in [0, 1] for ``"pixel"``, the same on a second call and under
    ``torch.inference_mode()``, and leaves the input unchanged; the backward (BPDA) is finite and
    not all zero; with ``per_image=True`` an image's output does not depend on its batch-mates.
    """
    label = _label("input quantizer", factory, name)
    shape = tuple(shape)
    for per_image in (False, True):
        q = factory(per_image=per_image)
        what = f"{label} (per_image={per_image})"
        _require(isinstance(q, nn.Module), what, f"the factory must return an nn.Module, got {type(q).__name__}")
        domain = getattr(q, "domain", None)
        _require(domain in DOMAINS, what, f"the module's domain must be one of {DOMAINS}, got {domain!r}")
        with _seeded(seed):
            pixels = torch.rand(shape)
        x = pixels if domain == "pixel" else (pixels - 0.45) / 0.25
        _check_input_quantizer_forward(q, x, domain == "pixel", what)
        xg = x.clone().requires_grad_(True)
        with _seeded(seed + 1):
            weights = torch.randn(shape)
        (q(xg) * weights).sum().backward()
        _check_backward(xg, what, "the backward (BPDA surrogate)")
        if per_image:
            alone = q(x[:1])
            _require(
                torch.equal(alone, q(x)[:1]),
                what,
                "with per_image=True an image's output must not depend on the other images of the batch",
            )


def _check_input_quantizer_forward(q: nn.Module, x: torch.Tensor, pixel: bool, label: str) -> None:
    before = x.clone()
    out = _check_tensor(q(x), tuple(x.shape), label, "the output")
    _require(torch.equal(x, before), label, "the forward must not change its input in place")
    if pixel:
        _require(bool((out >= 0).all() and (out <= 1).all()), label, 'a "pixel" quantizer\'s output must lie in [0, 1]')
    _require(torch.equal(q(x), out), label, "the forward must be deterministic (two calls differ)")
    with torch.inference_mode():
        _require(torch.equal(q(x), out), label, "the forward must give the same output under torch.inference_mode()")


def check_weight_quantizer(
    factory: Callable[..., Any], *, bits: Sequence[int] = (1, 2, 4, 8), name: str | None = None, seed: int = 0
) -> None:
    """Check ``factory(bits=b)`` for each ``b`` against :class:`~trendcli.protocols.WeightQuantizer`.

    Checks: an ``nn.Module``; on a conv weight it keeps the shape, is finite, takes at most
    ``2**b`` distinct values and its straight-through backward is finite and not all zero; it
    works as a parametrization of an ``nn.Conv2d`` weight; ``bits=0`` raises ``UsageError``.
    """
    label = _label("weight quantizer", factory, name)
    for b in bits:
        what = f"{label} (bits={b})"
        q = factory(bits=b)
        _require(isinstance(q, nn.Module), what, f"the factory must return an nn.Module, got {type(q).__name__}")
        with _seeded(seed):
            w = (0.1 * torch.randn(8, 4, 3, 3)).requires_grad_(True)
            layer = nn.Conv2d(4, 8, 3)
            x = torch.randn(2, 4, 5, 5)
        out = _check_tensor(q(w), tuple(w.shape), what, "the quantized weight")
        _require(_levels(out) <= 2**b, what, f"the quantized weight must take at most 2**{b} values, got {_levels(out)}")
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        _check_backward(w, what, "the straight-through backward")
        parametrize.register_parametrization(layer, "weight", factory(bits=b))
        _check_tensor(layer(x), (2, 8, 3, 3), what, "a parametrized nn.Conv2d's output")
        _require(
            _levels(layer.weight) <= 2**b, what, "as a parametrization the layer's weight must take at most 2**bits values"
        )
    _require_usage_error(lambda: factory(bits=0), label, "the factory called with bits=0")


def check_activation_quantizer(
    factory: Callable[..., Any], *, bits: Sequence[int] = (1, 2, 4, 8), name: str | None = None, seed: int = 0
) -> None:
    """Check ``factory(bits=b)`` for each ``b`` against :class:`~trendcli.protocols.ActivationQuantizer`.

    Checks: an ``nn.Module`` (not a plain ``nn.ReLU``) with ``role == "activation"``; on a
    feature map it keeps the shape, is finite, takes at most ``2**b`` distinct values and its
    straight-through backward is finite and not all zero; ``bits=0`` raises ``UsageError``.
    """
    label = _label("activation quantizer", factory, name)
    for b in bits:
        what = f"{label} (bits={b})"
        q = factory(bits=b)
        _require(isinstance(q, nn.Module), what, f"the factory must return an nn.Module, got {type(q).__name__}")
        _require(type(q) is not nn.ReLU, what, f"bits={b} must quantize (a plain nn.ReLU is full precision)")
        role = getattr(q, "role", None)
        _require(role == "activation", what, f'the module must set role = "activation" (model cards count them), got {role!r}')
        with _seeded(seed):
            x = (2 * torch.randn(2, 4, 5, 5)).requires_grad_(True)
        out = _check_tensor(q(x), tuple(x.shape), what, "the output")
        _require(_levels(out) <= 2**b, what, f"the output must take at most 2**{b} values, got {_levels(out)}")
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        _check_backward(x, what, "the straight-through backward")
    _require_usage_error(lambda: factory(bits=0), label, "the factory called with bits=0")


# -- datasets ------------------------------------------------------------------------------


def check_dataset(
    factory: Callable[[], Any],
    *,
    data_dir: Path | None = None,
    splits: Sequence[str] = ("train", "test"),
    sample: int = 4,
    name: str | None = None,
) -> None:
    """Check ``factory()`` against :class:`~trendcli.datasets.base.DatasetSource`.

    Checks: ``info`` (name, channels, image_size, num_classes, one class name per class, one
    mean and one positive std per channel); ``locate(data_dir)`` returns a Location;
    ``load("val", data_dir)`` raises ``UsageError`` (trendcli makes the validation split). When
    the files are found, each of ``splits`` loads: labels int64 ``[N]`` in ``0..num_classes-1``
    and ``batch`` of ``sample`` images gives float32 ``[sample, C, H, W]`` in [0, 1] with their
    labels. When they are not found, nothing is loaded (a source may download in ``load``) and
    the location must say where it looked and how to get the data.
    """
    source = factory()
    label = _label("dataset", factory, name)
    info = getattr(source, "info", None)
    _require(info is not None, label, "the source must have an info attribute (a DatasetInfo)")
    _check_info(info, label)
    loc = source.locate(data_dir)
    for attr, kind in (("found", (Path, type(None))), ("searched", list), ("hint", str)):
        _require(isinstance(getattr(loc, attr, None), kind), label, f"locate() must return a Location; its {attr!r} is wrong")
    _require_usage_error(lambda: source.load("val", data_dir), label, 'load("val") (not an official split)')
    if loc.found is None:
        _require(loc.searched and loc.hint, label, "a dataset not found must list where it searched and a hint how to get it")
        return
    for split in splits:
        _check_split(source.load(split, data_dir), info, sample, f"{label} split {split!r}")


def _check_info(info: Any, label: str) -> None:
    fields = ("name", "channels", "image_size", "num_classes", "class_names", "mean", "std")
    missing = [f for f in fields if not hasattr(info, f)]
    _require(not missing, label, f"info must have the DatasetInfo fields; missing {missing}")
    _require(isinstance(info.name, str) and info.name, label, "info.name must be a non-empty string")
    for field in ("channels", "image_size", "num_classes"):
        value = getattr(info, field)
        _require(isinstance(value, int) and value >= 1, label, f"info.{field} must be an int >= 1, got {value!r}")
    _require(
        len(info.class_names) == info.num_classes and all(isinstance(c, str) for c in info.class_names),
        label,
        f"info.class_names must hold one string per class ({info.num_classes}), got {len(info.class_names)}",
    )
    _require(
        len(info.mean) == info.channels and len(info.std) == info.channels,
        label,
        f"info.mean and info.std must have one value per channel ({info.channels})",
    )
    _require(all(s > 0 for s in info.std), label, f"info.std must be positive, got {tuple(info.std)}")


def _check_split(data: Any, info: Any, sample: int, label: str) -> None:
    n = len(data)
    _require(n >= 1, label, "a split must hold at least one image")
    labels = data.labels
    _require(
        isinstance(labels, torch.Tensor) and labels.dtype == torch.int64 and tuple(labels.shape) == (n,),
        label,
        f"labels must be an int64 tensor [N] with N = len(data) = {n}",
    )
    _require(
        bool((labels >= 0).all() and (labels < info.num_classes).all()),
        label,
        f"labels must lie in 0..{info.num_classes - 1}",
    )
    idx = torch.linspace(0, n - 1, min(sample, n)).round().long()
    images, batch_labels = data.batch(idx)
    shape = (len(idx), info.channels, info.image_size, info.image_size)
    _check_tensor(images, shape, label, "batch(indices) images")
    _require(images.dtype == torch.float32, label, f"batch images must be float32, got {images.dtype}")
    _require(bool((images >= 0).all() and (images <= 1).all()), label, "batch images must lie in [0, 1]")
    _require(torch.equal(batch_labels, labels[idx]), label, "batch(indices) labels must be labels[indices]")


# -- attacks -------------------------------------------------------------------------------


def tiny_classifier(in_channels: int = 1, image_size: int = 8, num_classes: int = 10, seed: int = 0) -> nn.Module:
    """A seeded conv + ReLU + linear classifier on [0, 1] images, in eval mode (the attack check's default)."""
    with _seeded(seed):
        return nn.Sequential(
            nn.Conv2d(in_channels, 4, 3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(4 * image_size * image_size, num_classes),
        ).eval()


def check_attack(
    factory: Callable[..., Any],
    params: Mapping[str, Any] | None = None,
    *,
    model: nn.Module | None = None,
    x: torch.Tensor | None = None,
    y: torch.Tensor | None = None,
    name: str | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Check ``factory(**params)`` against :class:`~trendcli.protocols.AttackCallable`; return ``x_adv``.

    ``model``, ``x`` and ``y`` default to :func:`tiny_classifier`, eight random 1x8x8 images and
    the model's own predictions. Checks: ``params`` is a mapping of JSON values that holds the
    given parameters and rebuilds the attack (``factory(**attack.params)``); ``norm`` (default
    "linf") is "linf" or "l2"; ``x_adv`` is float32, finite, of the shape of ``x``, in [0, 1] and
    within ``params["eps"]`` of ``x`` in that norm (when eps is set); ``x`` and the model's
    parameters, ``requires_grad`` flags and train/eval mode are left as they were; a rebuilt
    attack gives the same ``x_adv`` bit for bit (seed randomness from the params).
    """
    label = _label("attack", factory, name)
    given = dict(params or {})
    attack = factory(**given)
    _require(callable(attack), label, "the factory must return a callable attack(model, x, y)")
    spec = _check_params(factory, attack, given, label)
    norm = getattr(attack, "norm", "linf")
    _require(norm in NORMS, label, f"norm must be one of {NORMS}, got {norm!r}")
    if model is None:
        model = tiny_classifier(seed=seed)
    if x is None:
        with _seeded(seed):
            x = torch.rand(8, 1, 8, 8)
    if y is None:
        with torch.no_grad():
            y = model(x).argmax(1)
    before = _model_state(model)
    x_before = x.clone()
    adv = _check_tensor(attack(model, x, y), tuple(x.shape), label, "x_adv")
    _require(adv.dtype == torch.float32, label, f"x_adv must be float32, got {adv.dtype}")
    _require(bool((adv >= 0).all() and (adv <= 1).all()), label, "x_adv must lie in [0, 1]")
    _require(torch.equal(x, x_before), label, "the attack must not change x in place")
    _require(_same_state(before, _model_state(model)), label, "the attack must leave the model's parameters, "
             "requires_grad flags and train/eval mode as it found them")
    eps = spec.get("eps")
    if eps is not None:
        delta = (adv - x).flatten(1)
        size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
        worst = float(size.max()) if len(size) else 0.0
        _require(worst <= float(eps) + 1e-6, label, f"x_adv must lie within eps={eps} of x in {norm}; got {worst:.6g}")
    again = factory(**spec)(model, x, y)
    _require(torch.equal(again, adv), label, "the same params, model and inputs must give the same x_adv "
             "(the store keys sets by params; seed any randomness from a params entry)")
    return adv


def _check_params(factory: Callable[..., Any], attack: Any, given: dict[str, Any], label: str) -> dict[str, Any]:
    params = getattr(attack, "params", None)
    _require(isinstance(params, Mapping), label, f"the attack must have a params mapping, got {type(params).__name__}")
    spec = dict(params)
    try:
        round_trip = json.loads(json.dumps(spec))
    except (TypeError, ValueError) as e:
        raise ContractError(f"{label}: params must hold JSON values (the store keys sets by them): {e}") from e
    _require(round_trip == spec, label, f"params must survive a JSON round trip; {spec!r} came back as {round_trip!r}")
    missing = {k: v for k, v in given.items() if k not in spec or spec[k] != v}
    _require(not missing, label, f"params must hold every parameter the attack was built with; missing or changed: {missing}")
    rebuilt = getattr(factory(**spec), "params", None)
    _require(rebuilt is not None and dict(rebuilt) == spec, label, "factory(**attack.params) must rebuild the same attack")
    return spec


def _model_state(model: nn.Module) -> tuple[list[torch.Tensor], list[bool], list[bool]]:
    return (
        [t.detach().clone() for t in model.state_dict().values()],
        [p.requires_grad for p in model.parameters()],
        [m.training for m in model.modules()],
    )


def _same_state(a: tuple[list[torch.Tensor], list[bool], list[bool]], b: tuple[list[torch.Tensor], list[bool], list[bool]]) -> bool:
    tensors = len(a[0]) == len(b[0]) and all(torch.equal(s, t) for s, t in zip(a[0], b[0]))
    return tensors and a[1] == b[1] and a[2] == b[2]


# -- direction rules -----------------------------------------------------------------------


def check_direction_rule(
    rule: Callable[..., Any],
    *,
    members: int = 3,
    shape: Sequence[int] = (4, 2, 3, 3),
    name: str | None = None,
    seed: int = 0,
) -> None:
    """Check ``rule`` against :class:`~trendcli.protocols.DirectionRule`.

    With ``members`` gradients of ``shape`` ``[N, C, H, W]`` (one pixel zero for every member,
    one image masked off for every member): ``needs_mask`` is a bool if set; ``rule(grads, mask
    or None)`` returns a finite ``[N, C, H, W]`` tensor of the gradients' dtype with entries in
    [-1, 1], leaves ``grads`` and ``mask`` unchanged, is deterministic, computes each image from
    its own gradients, and ascends (never opposes the sign of) the gradient when all members
    agree; a rule that needs the mask raises ``UsageError`` without one.
    """
    label = _label("direction rule", rule, name)
    needs_mask = getattr(rule, "needs_mask", False)
    _require(isinstance(needs_mask, bool), label, f"needs_mask must be a bool, got {needs_mask!r}")
    shape = tuple(shape)
    with _seeded(seed):
        grads = torch.randn(members, *shape)
        mask = (torch.rand(members, shape[0]) > 0.3).float()
    grads[:, 0, 0, 0, 0] = 0.0
    mask[:, -1] = 0.0
    mask[0, 0], mask[-1, 0] = 1.0, 0.0
    arg = mask if needs_mask else None
    g_before, m_before = grads.clone(), mask.clone()
    out = _check_tensor(rule(grads, arg), shape, label, "the direction")
    _require(out.dtype == grads.dtype, label, f"the direction must have the gradients' dtype {grads.dtype}, got {out.dtype}")
    _require(bool(out.abs().max() <= 1), label, "the direction's entries must lie in [-1, 1] (the step is alpha * direction)")
    _require(torch.equal(grads, g_before) and torch.equal(mask, m_before), label, "the rule must not change grads or mask")
    _require(torch.equal(rule(grads, arg), out), label, "the rule must be deterministic (two calls differ)")
    for i in range(shape[0]):
        alone = rule(grads[:, i : i + 1], None if arg is None else arg[:, i : i + 1])
        _require(
            torch.allclose(alone, out[i : i + 1], atol=1e-6), label, "image i's direction must depend on grads[:, i] alone"
        )
    same = grads[:1].expand(members, *shape).clone()
    agreed = rule(same, torch.ones(members, shape[0]) if needs_mask else None)
    _require(
        bool((agreed * same[0] >= 0).all() and (agreed != 0).any()),
        label,
        "when every member has the same gradient the direction must follow its sign (ascend the loss)",
    )
    if needs_mask:
        _require_usage_error(lambda: rule(grads, None), label, "a rule with needs_mask called with mask=None")
