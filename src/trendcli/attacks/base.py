"""What every attack shares: input checks, the attack-mode context, losses, the layout rule.

An attack is a frozen dataclass whose fields are its parameters; ``attack(model, x, y)``
returns ``x_adv`` (float32, the shape of ``x``, values in [0, 1]). The model is any
``nn.Module`` mapping images in [0, 1] ``[N, C, H, W]`` to logits ``[N, classes]``; attacks
differentiate through it with autograd (zoo members carry their quantizers' BPDA backward).
"""

from __future__ import annotations

import abc
import contextlib
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from trendcli.errors import UsageError

__all__ = [
    "LAYOUTS",
    "MEMORY_FORMATS",
    "Attack",
    "auto_layout",
    "attack_mode",
    "check_batch",
    "check_count",
    "check_nonnegative",
    "check_positive",
    "common_memory_format",
    "input_memory_format",
    "make_generator",
    "gradients_on",
    "margin",
    "model_memory_format",
    "random_start",
    "resolve_layout",
    "success_mask",
]


# -- checks ------------------------------------------------------------------------------


def check_batch(x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None) -> None:
    """Raise UsageError unless x is a float [N, C, H, W] batch in [0, 1] and y int64 [N]."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise UsageError(f"attack input must be a float tensor [N, C, H, W], got {shape}")
    for name, labels in (("labels", y), ("target labels", target)):
        if labels is None:
            continue
        if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or labels.ndim != 1:
            raise UsageError(f"{name} must be an int64 tensor [N]; convert with .long()")
        if len(labels) != len(x):
            raise UsageError(f"{len(x)} images but {len(labels)} {name}")
    if x.numel() and bool(((x < 0) | (x > 1)).any()):  # one host sync per call, not per step
        raise UsageError("attack input must lie in [0, 1]; pass images before normalization")


def check_positive(**values: float) -> None:
    """Raise UsageError naming the first value that is not > 0."""
    for name, value in values.items():
        if not value > 0:
            raise UsageError(f"{name} must be positive, got {value}")


def check_nonnegative(**values: float) -> None:
    """Raise UsageError naming the first value that is not >= 0 (NaN included)."""
    for name, value in values.items():
        if not value >= 0:
            raise UsageError(f"{name} must be >= 0, got {value}")


def check_count(**values: int) -> None:
    """Raise UsageError naming the first count that is not an int >= 1."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"{name} must be an integer >= 1, got {value!r}")


# -- model state -------------------------------------------------------------------------


@contextlib.contextmanager
def attack_mode(models: nn.Module | Sequence[nn.Module]) -> Iterator[None]:
    """Eval mode and frozen parameters for the duration; both restored afterwards.

    Freezing the parameters (``requires_grad_(False)``) lets autograd skip every weight
    gradient, so a backward pass computes only what the input gradient needs.
    """
    members = [models] if isinstance(models, nn.Module) else list(models)
    modes = [(m, m.training) for model in members for m in model.modules()]
    grads = [(p, p.requires_grad) for model in members for p in model.parameters()]
    try:
        for model in members:
            model.eval()
        for p, _ in grads:
            p.requires_grad_(False)
        yield
    finally:
        for m, training in modes:
            m.training = training
        for p, flag in grads:
            p.requires_grad_(flag)


@contextlib.contextmanager
def gradients_on() -> Iterator[None]:
    """Autograd on, even when the caller runs under ``no_grad`` or ``inference_mode``."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


def model_memory_format(model: nn.Module) -> torch.memory_format:
    """``channels_last`` when the model's 4-d weights are stored so, else the default layout."""
    for p in model.parameters():
        if p.ndim == 4 and not p.is_contiguous() and p.is_contiguous(memory_format=torch.channels_last):
            return torch.channels_last
    return torch.contiguous_format


def common_memory_format(models: Sequence[nn.Module]) -> torch.memory_format:
    """The layout all models share, else the default layout."""
    formats = {model_memory_format(m) for m in models}
    return formats.pop() if len(formats) == 1 else torch.contiguous_format


def input_memory_format(x: torch.Tensor) -> torch.memory_format:
    """``channels_last`` when a 4-d tensor is stored so (and not also contiguous), else default."""
    if x.ndim == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


# -- the layout rule ---------------------------------------------------------------------------

#: Layout names -> torch memory formats. The layout changes float rounding (convolutions sum
#: in another order), so the layout an attack ran in belongs in its adversarial set's key.
MEMORY_FORMATS: dict[str, torch.memory_format] = {
    "contiguous": torch.contiguous_format,
    "channels_last": torch.channels_last,
}
#: What ``resolve_layout`` accepts: a layout name, or "auto" for :func:`auto_layout`'s rule.
LAYOUTS = ("auto", *MEMORY_FORMATS)


def _has_conv(model: nn.Module) -> bool:
    return any(p.ndim == 4 for p in model.parameters())


def auto_layout(models: nn.Module | Sequence[nn.Module]) -> str:
    """The layout "auto" stands for: "channels_last" when every model has a 4-d (conv) weight, else "contiguous".

    A fixed rule, never a timing, so the same models get the same layout, and the same bits,
    under any load. It follows benchmarks/layout_choice.py (PGD, CPU, 2 threads; the figures
    are in its docstring): channels_last attacked the built-in smallcnn and vgg11 faster at
    batch 64, 128 and 256 (1.1-2.2x). A model without convolutions gains nothing from it.
    Every member of an ensemble gets the same layout, so the input is converted once.
    """
    members = [models] if isinstance(models, nn.Module) else list(models)
    return "channels_last" if members and all(_has_conv(m) for m in members) else "contiguous"


def resolve_layout(layout: str, models: nn.Module | Sequence[nn.Module]) -> str:
    """``layout`` as a layout name ("contiguous" or "channels_last"); "auto" applies :func:`auto_layout`."""
    if layout not in LAYOUTS:
        raise UsageError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    return auto_layout(models) if layout == "auto" else layout


# -- losses and success --------------------------------------------------------------------


def margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Z_label - max_{i != label} Z_i per image, shape [N] (> 0: the label wins)."""
    own = logits.gather(1, labels[:, None]).squeeze(1)
    other = logits.scatter(1, labels[:, None], float("-inf")).amax(1)
    return own - other


def success_mask(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """Bool [N]: untargeted argmax != y; targeted argmax == target."""
    pred = logits.argmax(1)
    return pred == target if target is not None else pred != y


def ce_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy summed over the batch: each image's gradient is independent of N."""
    return F.cross_entropy(logits, labels, reduction="sum")


def random_start(x: torch.Tensor, eps: float, generator: torch.Generator) -> torch.Tensor:
    """x_0 = clip_[0,1](x + U(-eps, eps)^d)  (docs/method.md "Attacks on one model", PGD).

    The noise is drawn in the default layout, so a seed gives the same start in any layout.
    """
    noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    noise = noise.mul_(2 * eps).sub_(eps).contiguous(memory_format=input_memory_format(x))
    return noise.add_(x).clamp_(0.0, 1.0)


def make_generator(device: torch.device, seed: int) -> torch.Generator:
    """A generator on ``device`` seeded with ``seed``."""
    return torch.Generator(device=device).manual_seed(int(seed))


# -- the attack base -------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack(abc.ABC):
    """Base of the single-model attacks: validation, attack mode, layout and dtype handling.

    Subclasses are frozen dataclasses whose fields are all their parameters; they set
    ``name``, ``norm`` ("linf" or "l2") and ``supports_target``, and implement ``_run``,
    which gets x already float32 in the model's layout, inside :func:`attack_mode`.
    """

    name: ClassVar[str] = ""
    supports_target: ClassVar[bool] = True

    @property
    def params(self) -> dict[str, Any]:
        """Everything that determines the output (JSON-serialisable); ``type(a)(**a.params)`` rebuilds it."""
        return asdict(self)

    def __call__(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Adversarial images for ``x`` (labels ``y``), or toward ``target`` when given."""
        check_batch(x, y, target)
        if target is not None and not self.supports_target:
            raise UsageError(f"attack {self.name!r} is untargeted; call it without target")
        out_format = input_memory_format(x)
        with gradients_on(), attack_mode(model):
            # One copy per call, into the model's layout (none per step); a plain tensor even
            # when x was made under inference mode.
            xc = x.detach().to(torch.float32).clone(memory_format=model_memory_format(model))
            target = None if target is None else target.clone()
            adv = self._run(model, xc, y.clone(), target)
        return adv.detach().contiguous(memory_format=out_format)

    @abc.abstractmethod
    def _run(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None
    ) -> torch.Tensor:
        """The attack itself, on x already in the model's layout, inside attack_mode."""
