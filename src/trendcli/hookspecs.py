"""The extension points of trendcli, and nothing else.

Every hook returns a mapping ``{name: factory}``. Names are lower_snake (hyphens given on the
command line are read as underscores) and must be unique across installed plugins; the registry
raises an error naming both plugins on a clash. Built-ins implement these hooks exactly as a
third-party package does, through the ``trendcli`` entry-point group.

A value is the factory itself or a lazy reference, ``trendcli.lazy("pkg.module:attr", "one
line")``: the registry then lists the name and its description without importing the
implementation, which is imported on first use. What each factory is called with and returns
is a Protocol in :mod:`trendcli.protocols`; :mod:`trendcli.testing` checks a factory against
it. docs/plugins.md has an example per hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

from trendcli.protocols import (
    ActivationQuantizerFactory,
    ArchitectureFactory,
    AttackFactory,
    DatasetFactory,
    DirectionRule,
    InputQuantizerFactory,
    WeightQuantizerFactory,
)

if TYPE_CHECKING:
    from trendcli.registry import Lazy

hookspec = pluggy.HookspecMarker("trendcli")
hookimpl = pluggy.HookimplMarker("trendcli")


@hookspec
def trend_architectures() -> dict[str, ArchitectureFactory | Lazy]:
    """Network architectures this plugin provides.

    Return ``{name: factory}`` (:class:`~trendcli.protocols.ArchitectureFactory`). The registry
    calls ``factory(in_channels=int, num_classes=int, image_size=int, width=float,
    pretrained=bool, **arch_args)``, ``arch_args`` being the model spec's extra architecture
    arguments (empty unless set), and expects an ``nn.Module`` mapping normalized images
    ``[N, C, H, W]`` to logits ``[N, num_classes]``. A factory that cannot honour an argument
    (e.g. ``pretrained``) raises ``trendcli.errors.UsageError``.
    """


@hookspec
def trend_input_quantizers() -> dict[str, InputQuantizerFactory | Lazy]:
    """Input quantizers (applied to the image before the network).

    Return ``{name: factory}`` (:class:`~trendcli.protocols.InputQuantizerFactory`).
    ``factory(per_image=bool)`` returns an ``nn.Module`` with a ``domain`` attribute:
    ``"normalized"`` (applied after z-score normalization, as the paper's Qb and HT) or
    ``"pixel"`` (applied to the [0, 1] image before normalization, e.g. error diffusion). Its
    forward is the quantizer; its backward is the quantizer's BPDA surrogate.
    """


@hookspec
def trend_weight_quantizers() -> dict[str, WeightQuantizerFactory | Lazy]:
    """Weight quantizers for conv/linear layers.

    Return ``{name: factory}`` (:class:`~trendcli.protocols.WeightQuantizerFactory`);
    ``factory(bits=int)`` returns an ``nn.Module`` mapping a weight tensor to its quantized
    form of the same shape (a parametrization; straight-through estimator backward).
    """


@hookspec
def trend_act_quantizers() -> dict[str, ActivationQuantizerFactory | Lazy]:
    """Activation quantizers that replace ReLU.

    Return ``{name: factory}`` (:class:`~trendcli.protocols.ActivationQuantizerFactory`);
    ``factory(bits=int)`` returns an ``nn.Module`` with ``role = "activation"``, put where the
    network has an ``nn.ReLU`` (straight-through estimator backward).
    """


@hookspec
def trend_datasets() -> dict[str, DatasetFactory | Lazy]:
    """Datasets.

    Return ``{name: factory}`` (:class:`~trendcli.protocols.DatasetFactory`); ``factory()``
    returns a ``trendcli.datasets.base.DatasetSource``: its ``info`` (channels, image size,
    classes, class names, mean/std), ``locate(data_dir)`` and ``load(split, data_dir)`` for the
    official ``train`` and ``test`` splits.
    """


@hookspec
def trend_attacks() -> dict[str, AttackFactory | Lazy]:
    """Attacks on a single model.

    Return ``{name: factory}`` (:class:`~trendcli.protocols.AttackFactory`);
    ``factory(**params)`` returns a callable ``attack(model, x, y) -> x_adv`` with ``x`` in
    [0, 1] of shape ``[N, C, H, W]`` and ``y`` int64 labels ``[N]``. The callable has a
    ``params`` mapping (everything that determines its output, for the store's content key).
    """


@hookspec
def trend_direction_rules() -> dict[str, DirectionRule | Lazy]:
    """Ensemble attack direction rules (D-AG, A-GD, U-GD, EMPIR, ...).

    Return ``{name: rule}`` (:class:`~trendcli.protocols.DirectionRule`); ``rule(grads, mask)``
    takes the members' input gradients stacked as ``[K, N, C, H, W]`` and an optional float
    mask ``[K, N]`` (1 where member k still predicts the ensemble's fixed label, for
    EMPIR-style rules; ``None`` otherwise) and returns the step direction ``[N, C, H, W]``. A
    rule that needs the mask sets ``rule.needs_mask = True``.
    """
