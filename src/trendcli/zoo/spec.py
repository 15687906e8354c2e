"""Model specs and model ids: one function builds an id, one parses it."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from trendcli.errors import UsageError

FULL_PRECISION = 32


@dataclass(frozen=True)
class ModelSpec:
    """Everything that determines a zoo member's function (not how it was trained).

    A model is: z-score normalization -> input quantizer -> network whose conv/linear layers
    carry weight quantization and whose ReLUs carry activation quantization
    (docs/method.md, "A model").
    """

    arch: str
    dataset: str
    in_channels: int
    image_size: int
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    width: float = 1.0
    input_quant: str = "fp"
    per_image: bool = False  # Qb statistics per image instead of per minibatch
    weight_bits: int = FULL_PRECISION
    act_bits: int = FULL_PRECISION
    weight_quant: str = "dorefa"
    act_quant: str = "dorefa"
    quantize_first: bool = True  # weight-quantize the first conv (authors' ResNet choice)
    pretrained: bool = False
    arch_args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("weight_bits", "act_bits"):
            bits = getattr(self, name)
            if not (1 <= bits <= 16 or bits == FULL_PRECISION):
                raise UsageError(f"--{name.replace('_', '-')} must be 1..16 or 32 (full precision), got {bits}")
        if self.width <= 0:
            raise UsageError(f"--width must be positive, got {self.width}")
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelSpec":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.image_size, self.image_size)


_ID = re.compile(
    r"^(?P<arch>[a-z0-9_]+)(?:@(?P<width>[0-9.]+))?\.(?P<iq>[a-z0-9_]+?)(?P<pi>~img)?"
    r"-w(?P<w>\d+)-a(?P<a>\d+)(?:\.(?P<opt>[a-z]+))?(?:\.s(?P<seed>\d+))?$"
)


def model_id(spec: ModelSpec, optimizer: str | None = None, seed: int | None = None) -> str:
    """A short readable id, e.g. ``resnet20.q1-w4-a32.sgd.s0`` or ``smallcnn@0.5.ht-w32-a32``."""
    width = "" if spec.width == 1.0 else f"@{spec.width:g}"
    pi = "~img" if spec.per_image else ""
    out = f"{spec.arch}{width}.{spec.input_quant}{pi}-w{spec.weight_bits}-a{spec.act_bits}"
    if optimizer:
        out += f".{optimizer}"
    if seed is not None:
        out += f".s{seed}"
    return out


def parse_model_id(text: str) -> dict[str, Any]:
    """Inverse of :func:`model_id`: the fields an id encodes."""
    m = _ID.match(text)
    if not m:
        raise UsageError(f"not a model id: {text!r} (expected e.g. resnet20.q1-w4-a32.sgd.s0)")
    out: dict[str, Any] = {
        "arch": m["arch"],
        "width": float(m["width"]) if m["width"] else 1.0,
        "input_quant": m["iq"],
        "per_image": bool(m["pi"]),
        "weight_bits": int(m["w"]),
        "act_bits": int(m["a"]),
    }
    if m["opt"]:
        out["optimizer"] = m["opt"]
    if m["seed"]:
        out["seed"] = int(m["seed"])
    return out
