"""What each hook's factories must be: one ``typing.Protocol`` per extension point.

The hooks in :mod:`trendcli.hookspecs` return ``{name: factory}``; this module says what a
factory is called with and what it returns. :mod:`trendcli.testing` checks a factory against
these contracts at run time. Importing this module does not import torch: the tensor types
are annotations only (``TYPE_CHECKING``), and the dataset types, which live in
:mod:`trendcli.datasets.base` (``DatasetInfo``, ``DatasetSource``, ``ImageData``, ``Location``,
``TensorImages``), are re-exported from here on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Mapping, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch
    from torch import nn

    from trendcli.datasets.base import DatasetInfo, DatasetSource, ImageData, Location, TensorImages

__all__ = [
    "DOMAINS",
    "NORMS",
    "ActivationQuantizer",
    "ActivationQuantizerFactory",
    "ArchitectureFactory",
    "AttackCallable",
    "AttackFactory",
    "DatasetFactory",
    "DatasetInfo",
    "DatasetSource",
    "DirectionRule",
    "Domain",
    "ImageData",
    "InputQuantizer",
    "InputQuantizerFactory",
    "Location",
    "Norm",
    "TensorImages",
    "WeightQuantizer",
    "WeightQuantizerFactory",
]

#: Where an input quantizer acts: on the z-scored image or on the [0, 1] image.
Domain = Literal["normalized", "pixel"]
DOMAINS: tuple[str, ...] = ("normalized", "pixel")

#: The norm an attack's ``eps`` bounds.
Norm = Literal["linf", "l2"]
NORMS: tuple[str, ...] = ("linf", "l2")


class ArchitectureFactory(Protocol):
    """``trend_architectures``: builds a network from the model spec's shape arguments.

    Called as ``factory(in_channels=, num_classes=, image_size=, width=, pretrained=,
    **arch_args)`` by ``trendcli.build_model``:

    - ``in_channels``: image channels (1 for Fashion-MNIST, 3 for CIFAR and ImageNet).
    - ``num_classes``: length of the logit vector.
    - ``image_size``: height = width of the input images in pixels.
    - ``width``: channel multiplier (1.0 = the published network); a family without one
      accepts only 1.0.
    - ``pretrained``: load published weights; a factory without any raises ``UsageError``,
      and a missing weights file is a ``TrendError`` (``ModelFileError``), never a download.
    - ``arch_args``: the model spec's ``arch_args`` mapping (``ModelSpec.arch_args``, stored
      as JSON in the model card), passed as further keyword arguments. It is empty unless
      the user sets it; a factory declares the extra arguments it understands as keyword
      parameters with defaults (e.g. ``dropout: float = 0.0``), and their values are JSON
      values.

    Returns an ``nn.Module`` mapping z-scored images ``[N, in_channels, image_size,
    image_size]`` to logits ``[N, num_classes]``. Its ReLUs are ``nn.ReLU`` modules (activation
    quantization replaces them) and its last ``nn.Conv2d``/``nn.Linear`` in registration order
    is the classifier whose output is the logits (weight quantization keeps it full precision).
    An argument the factory cannot honour (a non-positive size, a width it lacks, an image
    too small for its pooling) raises ``trendcli.errors.UsageError`` saying what to change.
    """

    def __call__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int,
        width: float = 1.0,
        pretrained: bool = False,
    ) -> nn.Module: ...


@runtime_checkable
class InputQuantizer(Protocol):
    """The module an input quantizer factory returns.

    ``domain`` is ``"normalized"`` (applied after z-score normalization, as the paper's Qb and
    HT) or ``"pixel"`` (applied to the [0, 1] image before normalization, as error
    diffusion; its output stays in [0, 1]). ``forward(x)`` keeps the shape ``[N, C, H, W]``;
    its backward is the quantizer's BPDA surrogate (finite, not all zero), so attacks can
    differentiate through it. Optional labels: ``name`` (the registry name), ``bits``
    (levels = 2^bits, or None), ``per_image``.
    """

    domain: Domain

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


class InputQuantizerFactory(Protocol):
    """``trend_input_quantizers``: ``factory(per_image=bool)`` -> :class:`InputQuantizer`.

    ``per_image=True`` asks for statistics (minimum, maximum, mean) over each image's C, H, W
    instead of the whole minibatch, so that an image's output does not depend on its
    batch-mates; a quantizer that is always per image accepts the flag and ignores it.
    """

    def __call__(self, per_image: bool = False) -> InputQuantizer: ...


@runtime_checkable
class WeightQuantizer(Protocol):
    """A module mapping a conv/linear weight tensor to its quantized form, same shape.

    It is registered as a parametrization of the layer's ``weight``
    (``torch.nn.utils.parametrize``), so the float weight stays the trained parameter; the
    forward takes at most ``2**bits`` distinct values and the backward is a straight-through
    estimator (finite, not all zero).
    """

    def __call__(self, weight: torch.Tensor) -> torch.Tensor: ...


class WeightQuantizerFactory(Protocol):
    """``trend_weight_quantizers``: ``factory(bits=int)`` -> :class:`WeightQuantizer`.

    Called for ``bits`` in 1..16 (32 means full precision and is not quantized: a factory may
    return ``nn.Identity()`` for it, which registers nothing). Bits it does not support raise
    ``UsageError``.
    """

    def __call__(self, bits: int) -> WeightQuantizer: ...


@runtime_checkable
class ActivationQuantizer(Protocol):
    """A module put in place of each ``nn.ReLU`` of the network.

    ``forward`` keeps the shape and takes at most ``2**bits`` distinct values; the backward is
    a straight-through estimator. ``role = "activation"`` marks it for model cards (a
    model card counts the modules with that role).
    """

    role: Literal["activation"]

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


class ActivationQuantizerFactory(Protocol):
    """``trend_act_quantizers``: ``factory(bits=int)`` -> :class:`ActivationQuantizer`.

    Called for ``bits`` in 1..16 (32 means full precision: a factory may return a plain
    ``nn.ReLU()``, which leaves the network's ReLUs as they are). Bits it does not support
    raise ``UsageError``.
    """

    def __call__(self, bits: int) -> ActivationQuantizer: ...


class DatasetFactory(Protocol):
    """``trend_datasets``: ``factory()`` -> :class:`~trendcli.datasets.base.DatasetSource`.

    The source has ``info`` (a ``DatasetInfo``: name, channels, image_size, num_classes,
    class_names, mean, std), ``locate(data_dir)`` (a ``Location``; no loading) and
    ``load(split, data_dir)`` for the official ``"train"`` and ``"test"`` splits (an
    ``ImageData``: ``labels`` int64 ``[N]``, ``batch(indices)`` -> float images in [0, 1]
    ``[B, C, H, W]`` and their labels). ``load`` raises ``DataNotFoundError`` when the files
    are absent and ``UsageError`` for any other split; trendcli makes the validation split
    itself.
    """

    def __call__(self) -> DatasetSource: ...


@runtime_checkable
class AttackCallable(Protocol):
    """An attack built with its parameters: ``attack(model, x, y) -> x_adv``.

    ``model`` maps images in [0, 1] ``[N, C, H, W]`` to logits; ``x`` is float ``[N, C, H, W]``
    in [0, 1]; ``y`` int64 ``[N]``. Returns float32 ``x_adv`` of the shape of ``x`` in [0, 1],
    within ``params["eps"]`` of ``x`` in the attack's ``norm`` (``"linf"``, the default, or
    ``"l2"``) when ``eps`` is set. ``params`` holds everything that determines the output
    (JSON values; ``factory(**params)`` rebuilds the attack); the store's content key is made
    from it, so the same params, model and inputs must give the same output (seed any
    randomness from a ``seed`` parameter). The attack leaves ``x`` and the model's parameters,
    ``requires_grad`` flags and train/eval mode as it found them.
    """

    @property
    def params(self) -> Mapping[str, Any]: ...

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...


class AttackFactory(Protocol):
    """``trend_attacks``: ``factory(**params)`` -> :class:`AttackCallable`.

    ``factory()`` with no arguments gives the attack's defaults; unknown parameters raise
    ``TypeError`` (reported as a ``UsageError``) and bad values raise ``UsageError``. Any
    signature of keyword parameters fits (``*args: Any, **params: Any`` reads as "any").
    """

    def __call__(self, *args: Any, **params: Any) -> AttackCallable: ...


@runtime_checkable
class DirectionRule(Protocol):
    """``trend_direction_rules``: ``rule(grads, mask) -> direction`` for ensemble PGD.

    ``grads``: the K members' input gradients stacked as ``[K, N, C, H, W]``; ``mask``: float
    ``[K, N]``, 1 where member k still predicts the ensemble's fixed label, passed only when
    ``needs_mask`` is true (``None`` otherwise). Returns the step direction ``[N, C, H, W]``,
    finite, with entries in [-1, 1] (the step is ``alpha * direction``), image i computed
    from ``grads[:, i]`` (and ``mask[:, i]``) alone, ``grads`` left unchanged. ``needs_mask``:
    whether the rule reads the mask (the host reads a missing attribute as False); such a
    rule raises ``UsageError`` when called with ``mask=None``.
    """

    needs_mask: bool

    def __call__(self, grads: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor: ...


#: Defined in trendcli.datasets.base; ``TensorImages`` is the in-memory ``ImageData`` a plugin can reuse.
_DATASET_TYPES = ("DatasetInfo", "DatasetSource", "ImageData", "Location", "TensorImages")


def __getattr__(name: str) -> Any:
    # The dataset types are defined once, in trendcli.datasets.base (which imports torch).
    if name in _DATASET_TYPES:
        from trendcli.datasets import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
