"""Black-box zoo members: an ONNX file run in onnxruntime behind the TrendModel interface.

The network is a forward function only: no gradients flow through onnxruntime, so a member
holding one serves as a target of transfer attacks and of gradient-free attacks (square), never
as the source of a gradient attack. The check is where the gradient would be needed: a forward
on an input that requires grad raises ``UsageError``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from trendcli.errors import ModelFileError, UsageError

#: What a black-box member can be attacked with, in its error message.
ATTACK_HINT = "use a transfer or gradient-free attack (square)"


def black_box_message(name: str) -> str:
    """The one line for a gradient asked of black-box member ``name``."""
    return f"model {name} is black-box (ONNX run in onnxruntime): {ATTACK_HINT}"


def open_session(path: Path):
    """An onnxruntime CPU session for ``path``; an unreadable file is a ModelFileError naming it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for a malformed graph
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelFileError(f"onnxruntime cannot load {path}: {first}") from None


def run_session(session, x: np.ndarray) -> np.ndarray:
    """The first output of ``session`` on float32 ``x`` [N, C, H, W].

    A graph with a fixed batch size B runs in chunks of B; the last chunk is padded with
    copies of its last image and the padding's outputs dropped (each image's logits depend on
    that image alone in an eval-mode classifier, so the padding changes nothing).
    """
    inp = session.get_inputs()[0]
    out_name = session.get_outputs()[0].name
    batch = inp.shape[0] if isinstance(inp.shape[0], int) and inp.shape[0] > 0 else None
    if batch is None or len(x) == batch:
        return session.run([out_name], {inp.name: x})[0]
    outs = []
    for start in range(0, len(x), batch):
        chunk = x[start : start + batch]
        n = len(chunk)
        if n < batch:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - n, axis=0)])
        outs.append(session.run([out_name], {inp.name: chunk})[0][:n])
    return np.concatenate(outs)


#: The placeholder a black-box network leaves in a traced graph (trendcli.deploy.splice replaces it).
PLACEHOLDER_DOMAIN = "trendcli.blackbox"
PLACEHOLDER_OP = "Member"


class _Placeholder(torch.autograd.Function):
    """Under torch.onnx.export: one ``trendcli.blackbox::Member`` node (attributes ``slot`` and
    ``classes``) where the ONNX file's graph goes; the traced value is zeros [N, classes]."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, slot: int, classes: int) -> torch.Tensor:
        return x.new_zeros(x.shape[0], classes)

    @staticmethod
    def symbolic(g, x, slot: int, classes: int):
        out = g.op(f"{PLACEHOLDER_DOMAIN}::{PLACEHOLDER_OP}", x, slot_i=slot, classes_i=classes)
        out.setType(x.type().with_sizes([None, classes]))
        return out


class OnnxRuntimeNetwork(nn.Module):
    """The network of a black-box member: ``forward`` runs the ONNX file in onnxruntime (CPU).

    ``label`` names the member in the error a gradient request raises. The empty ``anchor``
    parameter only tells callers that look at ``next(model.parameters()).device`` where the
    outputs go; onnxruntime holds the weights.
    """

    def __init__(self, path: str | Path, label: str = "model"):
        super().__init__()
        self.path = Path(path)
        self.label = label
        self.session = open_session(self.path)
        self.anchor = nn.Parameter(torch.zeros(0), requires_grad=False)

    #: Set by the ONNX export: which black-box network of the ensemble this is (its placeholder's slot).
    export_slot: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export() and self.export_slot is not None:
            probe = np.zeros((1, *x.shape[1:]), np.float32)
            return _Placeholder.apply(x, self.export_slot, int(run_session(self.session, probe).shape[1]))
        if x.requires_grad and torch.is_grad_enabled():
            raise UsageError(black_box_message(self.label))
        array = x.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(np.ascontiguousarray(run_session(self.session, array))).to(x.device)

    def __deepcopy__(self, memo: dict) -> "OnnxRuntimeNetwork":
        # An onnxruntime session cannot be copied; a copy opens the same file again.
        return OnnxRuntimeNetwork(self.path, self.label)

    def extra_repr(self) -> str:
        return f"path={self.path}, label={self.label}"


def is_black_box(model: nn.Module) -> bool:
    """True when ``model`` runs (part of) its forward in onnxruntime."""
    return any(isinstance(m, OnnxRuntimeNetwork) for m in model.modules())


#: Attacks that only query the model. A plugin's attack class says so with ``gradient_free = True``.
GRADIENT_FREE = ("square",)


def needs_gradients(method: str) -> bool:
    """Whether attack or ensemble direction rule ``method`` differentiates through the models
    (every attack but the gradient-free ones; every direction rule)."""
    from trendcli.registry import canonical, get_registry

    name = canonical(method)
    registry = get_registry()
    if name in registry.names("direction rule"):
        return True
    factory = registry.factory("attack", name)
    return not getattr(factory, "gradient_free", name in GRADIENT_FREE)


def gradient_block(method: str, black_box: Sequence[str]) -> str | None:
    """Why ``method`` cannot run on models among which ``black_box`` (ids) are black-box; None when it can."""
    if black_box and needs_gradients(method):
        return f"{method} needs gradients; {', '.join(black_box)} black-box (ONNX run in onnxruntime)"
    return None


def check_attackable(method: str, models: Sequence[tuple[nn.Module, str]]) -> None:
    """UsageError before any work when a gradient attack ``method`` is asked of a black-box model."""
    black = [(m, n) for m, n in models if is_black_box(m)]
    if black and needs_gradients(method):
        raise UsageError(black_box_message(black[0][1]))
