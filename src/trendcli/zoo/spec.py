"""Model specs and model ids: one function builds an id, one parses it."""

from __future__ import annotations

import re
from dataclasses import MISSING, asdict, dataclass, field, fields
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
                raise UsageError(f"{name} must be 1..16 or 32 (full precision), got {bits}")
        if self.width <= 0:
            raise UsageError(f"width must be positive, got {self.width}")
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelSpec":
        """A spec from its JSON form; wrong types or missing fields raise UsageError naming the field."""
        if not isinstance(d, dict):
            raise UsageError(f"a model spec is a JSON object, got {type(d).__name__}")
        known = {f.name: f for f in fields(cls)}
        missing = [n for n, f in known.items() if f.default is MISSING and f.default_factory is MISSING and n not in d]
        if missing:
            raise UsageError(f"the model spec lacks {', '.join(missing)}")
        values = {k: v for k, v in d.items() if k in known}
        for name, value in values.items():
            _check_field(name, value)
        values["mean"], values["std"] = tuple(values["mean"]), tuple(values["std"])
        return cls(**values)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.image_size, self.image_size)


_STR = ("arch", "dataset", "input_quant", "weight_quant", "act_quant")
_INT = ("in_channels", "image_size", "num_classes", "weight_bits", "act_bits")
_BOOL = ("per_image", "quantize_first", "pretrained")


def _check_field(name: str, value: Any) -> None:
    """Type check of one spec field read from JSON (bool is not an int here)."""
    def bad(kind: str) -> UsageError:
        return UsageError(f"model spec field {name!r} must be {kind}, got {value!r}")

    if name in _STR and not isinstance(value, str):
        raise bad("a string")
    if name in _INT and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise bad("a positive integer")
    if name in _BOOL and not isinstance(value, bool):
        raise bad("true or false")
    if name == "width" and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        raise bad("a number")
    if name in ("mean", "std") and (
        not isinstance(value, list) or not value
        or any(not isinstance(v, (int, float)) or isinstance(v, bool) for v in value)
    ):
        raise bad("a list of numbers")
    if name == "arch_args" and not isinstance(value, dict):
        raise bad("an object")


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
