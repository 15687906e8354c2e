"""Gradient domination: how much of an ensemble direction is one member's gradient sign.

With G_k = grad_x L(f_k(x), y) and S_k = sign(G_k) (paper section V-A; docs/method.md
"Attacks on an ensemble"):
- D-AG (eq. 5): g = sign( sum_k G_k ); A-GD (eq. 7): g = sign( sum_k S_k ).
- share(rule, k) = |{pixels p : g_p = S_k,p}| / |pixels|, over every pixel of every image.
A D-AG direction "dominated" by member k has share(dag, k) near 1 while the other members'
shares stay near 1/2 (independent signs); A-GD spreads its agreement over the members.
Also reported: magnitude share(k) = mean over images of ||G_k||_1 / sum_j ||G_j||_1 -- the
cause of domination -- and the share of pixels where a direction is 0 (A-GD ties).

The gradients are taken at the clean images (as in the paper's figure 7), through each
member's quantizers' BPDA backward, with the cross-entropy loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from trendcli.errors import UsageError
from trendcli.registry import get_registry

DEFAULT_RULES = ("dag", "agd")
RULE_LABELS = {"dag": "D-AG", "agd": "A-GD", "ugd": "U-GD", "empir": "EMPIR", "eadg": "EADG"}


def member_gradients(models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """G_k = grad_x sum_i CE(f_k(x_i), y_i) for every member: [K, N, C, H, W] on x's device.

    The loss is summed over the batch so each image's gradient does not depend on N.
    """
    from trendcli.attacks.base import attack_mode

    grads = torch.empty((len(models), *x.shape), dtype=torch.float32, device=x.device)
    with attack_mode(list(models)):
        for k, model in enumerate(models):
            xa = x.detach().float().clone().requires_grad_(True)
            loss = torch.nn.functional.cross_entropy(model(xa), y, reduction="sum")
            (grads[k],) = torch.autograd.grad(loss, xa)
    return grads


def directions(grads: torch.Tensor, rules: Sequence[str] = DEFAULT_RULES) -> dict[str, torch.Tensor]:
    """Each rule's step direction [N, C, H, W] from the members' gradients (registry rules, no mask)."""
    registry = get_registry()
    out = {}
    for name in rules:
        rule = registry.factory("direction rule", name)
        if getattr(rule, "needs_mask", False):
            raise UsageError(f"rule {name!r} needs the members' mask; domination is measured for mask-free rules (dag, agd, ugd)")
        out[name] = rule(grads, None)
    return out


@dataclass
class Domination:
    """Counts of agreement between each rule's direction and each member's gradient sign."""

    ids: list[str]
    rules: list[str]
    n_images: int = 0
    pixels: int = 0  # per member: N * C * H * W
    equal: dict[str, np.ndarray] = field(default_factory=dict)  # rule -> [K] pixel counts g == S_k
    zeros: dict[str, int] = field(default_factory=dict)  # rule -> pixel count g == 0
    magnitude: np.ndarray | None = None  # [K] sum over images of ||G_k||_1 / sum_j ||G_j||_1
    example: dict[str, Any] | None = None  # tensors of one image for the figure

    def add(self, grads: torch.Tensor, dirs: dict[str, torch.Tensor], x: torch.Tensor | None = None, keep: int = 0) -> None:
        """Accumulate one batch: grads [K, N, C, H, W], dirs rule -> [N, C, H, W]."""
        k, n = grads.shape[:2]
        signs = grads.sign()
        self.n_images += n
        self.pixels += int(grads[0].numel())
        for rule in self.rules:
            eq = (dirs[rule].unsqueeze(0) == signs).flatten(1).sum(1).cpu().numpy().astype(np.int64)
            self.equal[rule] = self.equal.get(rule, np.zeros(k, dtype=np.int64)) + eq
            self.zeros[rule] = self.zeros.get(rule, 0) + int((dirs[rule] == 0).sum())
        l1 = grads.abs().flatten(2).sum(2)  # [K, N]
        total = l1.sum(0, keepdim=True)
        frac = torch.where(total > 0, l1 / total.clamp_min(1e-30), torch.full_like(l1, 1.0 / k))
        add = frac.sum(1).cpu().double().numpy()
        self.magnitude = add if self.magnitude is None else self.magnitude + add
        if self.example is None and x is not None and n > keep:
            self.example = {
                "image": x[keep].detach().cpu(),
                "grads": grads[:, keep].detach().cpu(),
                "directions": {r: dirs[r][keep].detach().cpu() for r in self.rules},
            }

    def share(self, rule: str) -> list[float]:
        """share(rule, k) for each member: the fraction of pixels where the direction equals S_k."""
        return [float(c) / self.pixels if self.pixels else float("nan") for c in self.equal[rule]]

    def dominant(self, rule: str) -> str:
        """The member whose sign the rule's direction follows most often."""
        return self.ids[int(np.argmax(self.equal[rule]))]

    def to_dict(self) -> dict[str, Any]:
        mag = (self.magnitude / self.n_images).tolist() if self.magnitude is not None and self.n_images else None
        return {
            "members": self.ids,
            "n_images": self.n_images,
            "pixels_per_member": self.pixels,
            "share_equal_sign": {r: dict(zip(self.ids, self.share(r))) for r in self.rules},
            "share_zero": {r: (self.zeros[r] / self.pixels if self.pixels else None) for r in self.rules},
            "dominant": {r: self.dominant(r) for r in self.rules},
            "gradient_l1_share": dict(zip(self.ids, mag)) if mag is not None else None,
        }


def measure_domination(
    models: Sequence[nn.Module],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    ids: Sequence[str] | None = None,
    rules: Sequence[str] = DEFAULT_RULES,
    example: int = 0,
) -> Domination:
    """Domination counts over ``(x, y)`` batches; keeps image ``example`` of the first batch for the figure."""
    if not models:
        raise UsageError("gradient domination needs at least one model")
    names = list(ids) if ids is not None else [getattr(m, "name", f"model{k}") for k, m in enumerate(models)]
    device = next(models[0].parameters()).device
    result = Domination(names, list(rules))
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        grads = member_gradients(models, x, y)
        result.add(grads, directions(grads, rules), x, keep=example)
    return result


def _signed(t: torch.Tensor, scale: float) -> np.ndarray:
    """[C, H, W] signed values -> [H, W] or [H, W, 3] in [0, 1], 0 at 1/2."""
    a = (t.float() / (2 * scale) + 0.5).clamp(0, 1).numpy()
    return a[0] if a.shape[0] == 1 else np.transpose(a, (1, 2, 0))


def plot_domination(result: Domination, path: str | Path, title: str | None = None, labels: Sequence[str] | None = None) -> Path:
    """A PNG like the paper's figure 7 for the kept image.

    Row 1: the image and each member's gradient G_k. Row 2: each S_k = sign(G_k).
    Row 3: A-GD and A-GD - S_k. Row 4: the mean gradient, D-AG, and D-AG - S_k. Signed maps
    are drawn with 0 as mid-grey (gradients scaled by their own max |G_k|); differences
    lie in {-2, ..., 2}. Each difference is titled with the share of pixels where it is 0
    over all measured images.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ex = result.example
    if ex is None:
        raise UsageError("no image was kept for the domination figure (measure at least one batch)")
    k = len(result.ids)
    cols = k + 2
    rows = [r for r in ("agd", "dag") if r in ex["directions"]]
    fig, axes = plt.subplots(2 + len(rows), cols, figsize=(1.8 * cols, 1.9 * (2 + len(rows))), squeeze=False)
    cmap = "gray" if ex["image"].shape[0] == 1 else None
    for ax in axes.flat:
        ax.axis("off")

    def show(ax, arr: np.ndarray, label: str) -> None:
        ax.imshow(arr, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(label, fontsize=7)

    img = ex["image"].numpy()
    show(axes[0, 0], img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0)), "image")
    grads, signs = ex["grads"], ex["grads"].sign()
    for j, name in enumerate(labels if labels is not None else result.ids):
        scale = float(grads[j].abs().max()) or 1.0
        show(axes[0, j + 1], _signed(grads[j], scale), f"G{j + 1} {name}")
        show(axes[1, j + 1], _signed(signs[j], 1.0), f"S{j + 1}")
    for r, rule in enumerate(rows, start=2):
        label = RULE_LABELS.get(rule, rule)
        d = ex["directions"][rule]
        shares = result.share(rule)
        offset = 1
        if rule == "dag":
            mean = grads.mean(0)
            show(axes[r, 0], _signed(mean, float(mean.abs().max()) or 1.0), "mean G")
        else:
            offset = 0
        show(axes[r, offset], _signed(d, 1.0), label)
        for j in range(k):
            show(axes[r, offset + 1 + j], _signed(d - signs[j], 2.0), f"{label}-S{j + 1} ({shares[j]:.0%} =0)")
    fig.suptitle(title or "gradient domination (cf. paper fig. 7)", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
