"""Floyd-Steinberg error diffusion "ht_fs" on the [0, 1] image (docs/method.md, "Halftoning")."""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn

from trendcli.quantizers.straight_through import straight_through

THRESHOLD = 0.5
# Error shares a pixel receives, in the order raster scanning adds them: from the pixel above
# left (1/16), above (5/16), above right (3/16), then from its left neighbour (7/16).
_SHARES = (1.0 / 16, 5.0 / 16, 3.0 / 16, 7.0 / 16)


@lru_cache(maxsize=32)
def _wavefront(
    height: int, width: int, device: torch.device
) -> tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], ...]:
    """Pixels grouped by step t = j + 2i, with the flat indices each step reads and writes.

    Pixel (i, j) needs the errors of (i-1, j-1), (i-1, j), (i-1, j+1) and (i, j-1); all lie on
    earlier steps of t = j + 2i, so one step's pixels are independent and run together
    (W + 2H - 2 steps instead of H*W). Errors live in a zero-padded [H+1, W+2] grid (pixel
    (i, j) at row i+1, column j+1), so the shares that fall outside the image are dropped.
    Returns, per step, (pixel index in H*W, the 4 source indices [4*k], target index [k]).
    """
    cols = width + 2
    steps = []
    for t in range(width + 2 * (height - 1)):
        rows = list(range(max(0, (t - width + 2) // 2), min(height - 1, t // 2) + 1))
        if not rows:  # width 1: odd t has no pixel
            continue
        i = torch.tensor(rows, dtype=torch.long)
        j = t - 2 * i
        pixel = i * width + j
        sources = torch.cat(
            [i * cols + j, i * cols + j + 1, i * cols + j + 2, (i + 1) * cols + j]
        )  # above-left, above, above-right, left
        target = (i + 1) * cols + j + 1
        steps.append((pixel.to(device), sources.to(device), target.to(device)))
    return tuple(steps)


def floyd_steinberg(x: torch.Tensor) -> torch.Tensor:
    """Binary Floyd-Steinberg halftone of ``x`` [N, C, H, W], each channel on its own.

    Raster order (left to right, top to bottom); a pixel's value v (its intensity plus the
    error it received) becomes q = 1 if v >= 1/2 else 0, and the error v - q goes 7/16 to the
    right, 3/16 below left, 5/16 below, 1/16 below right (shares leaving the image are lost).
    Not differentiable; same dtype and device as ``x``.
    """
    # The image size fixes the schedule (static in an exported graph); the batch stays free.
    h, w = int(x.shape[-2]), int(x.shape[-1])
    flat = x.detach().reshape(-1, h * w)
    out = torch.zeros_like(flat)
    err = torch.zeros_like(flat[:, :1]).expand(-1, (h + 1) * (w + 2)).contiguous()
    for pixel, sources, target in _wavefront(h, w, x.device):
        received = err[:, sources].unflatten(1, (4, -1))
        v = flat[:, pixel]
        for k, share in enumerate(_SHARES):  # summed in raster order, as a scan would
            v = v + share * received[:, k]
        q = (v >= THRESHOLD).to(flat.dtype)
        out[:, pixel] = q
        err[:, target] = v - q
    return out.view(x.shape)


class FloydSteinberg(nn.Module):
    """ht_fs: Floyd-Steinberg error diffusion on the [0, 1] image, identity backward (BPDA).

    Applied before z-score normalization (``domain = "pixel"``), per image and channel, so
    ``per_image`` changes nothing and is kept for a uniform interface. The scan is sequential:
    the loop runs over the W + 2H - 2 anti-diagonal wavefronts, vectorized over the batch,
    the channels and the pixels of each wavefront.
    """

    role = "input"
    domain = "pixel"

    def __init__(self, per_image: bool = False):
        super().__init__()
        self.name = "ht_fs"
        self.bits = 1
        self.per_image = bool(per_image)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return straight_through(floyd_steinberg(x), x)

    def extra_repr(self) -> str:
        return "name=ht_fs"
