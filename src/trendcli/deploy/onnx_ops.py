"""Export forms: torch modules that trace to plain ONNX ops and compute exactly what a
trendcli quantizer computes (docs/method.md, "Halftoning", option ``ht-fs``).

Floyd-Steinberg error diffusion is a sequential scan; tracing the library's version
(trendcli.quantizers.error_diffusion) gives a correct but bulky graph (about 10k nodes of
gathers and scatters for 28x28). The form here walks the same anti-diagonal wavefronts on a
*skewed* image, where wavefront t is simply column t, so each step is a handful of
elementwise ops on [N*C, H] columns: about 15 ONNX nodes per step, W + 2H - 2 steps (82 for
28x28), unrolled for the fixed image size. Each pixel's value is summed in the same order as
the library (above-left, above, above-right, left), so the output is bit-for-bit the same.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn

from trendcli.quantizers.error_diffusion import THRESHOLD

# Shares in the order the library adds them to a pixel: above-left, above, above-right, left.
_ABOVE_LEFT, _ABOVE, _ABOVE_RIGHT, _LEFT = 1.0 / 16, 5.0 / 16, 3.0 / 16, 7.0 / 16


@lru_cache(maxsize=32)
def skew_plan(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Index maps between an [H, W] image and its skewed [H, T] form, T = W + 2H - 2.

    Skewed cell (i, t) holds pixel (i, j = t - 2i) when 0 <= j < W, else nothing.
    The skewed image is laid out t-major (cell (i, t) at t*H + i) so that column t is one
    contiguous slice. Returns (gather index [T*H] into the flat image with one zero appended
    at H*W for empty cells, valid mask [T, H] as float, unskew index [H*W] into the skewed
    layout).
    Pixel (i, j) reads the errors of (i-1, j-1), (i-1, j), (i-1, j+1), (i, j-1): in skewed
    columns t-3, t-2, t-1 of row i-1 and t-1 of row i, all earlier columns.
    """
    steps = width + 2 * (height - 1)
    t = torch.arange(steps).view(-1, 1)
    i = torch.arange(height).view(1, -1)
    j = t - 2 * i  # [T, H]
    valid = (j >= 0) & (j < width)
    gather = torch.where(valid, i * width + j, torch.full_like(j, height * width)).reshape(-1)
    ii, jj = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    unskew = ((jj + 2 * ii) * height + ii).reshape(-1)
    return gather, valid.to(torch.float32), unskew


def floyd_steinberg_skewed(x: torch.Tensor) -> torch.Tensor:
    """Binary Floyd-Steinberg halftone of ``x`` [N, C, H, W], as the library's floyd_steinberg.

    v = x + 1/16 e(i-1, j-1) + 5/16 e(i-1, j) + 3/16 e(i-1, j+1) + 7/16 e(i, j-1), summed in
    that order; q = 1[v >= 1/2]; e = v - q (0 outside the image). Written so that tracing
    gives fixed-size elementwise ONNX ops with a dynamic batch axis.
    """
    gather, valid, unskew = skew_plan(int(x.shape[2]), int(x.shape[3]))
    gather, valid, unskew = gather.to(x.device), valid.to(x.device, x.dtype), unskew.to(x.device)
    # Sizes from the plan, not from x, so that tracing records them as constants.
    steps, height = valid.shape
    width = unskew.numel() // height
    channels = int(x.shape[1])
    flat = torch.cat([x.reshape(-1, height * width), x.new_zeros(1, 1).expand(x.shape[0] * channels, 1)], 1)
    skewed = flat.index_select(1, gather)  # [N*C, T*H], column t at [t*H, (t+1)*H)
    columns = [skewed[:, t * height : (t + 1) * height] for t in range(steps)]
    zero_row = columns[0][:, :1] * 0.0
    # (error column, the same shifted down one row: row i holds row i-1's error) for t-1, t-2, t-3
    zero = columns[0] * 0.0
    e1 = e2 = e3 = (zero, zero)
    out = []
    for t, column in enumerate(columns):
        v = column + _ABOVE_LEFT * e3[1]
        v = v + _ABOVE * e2[1]
        v = v + _ABOVE_RIGHT * e1[1]
        v = v + _LEFT * e1[0]
        q = (v >= THRESHOLD).to(x.dtype)
        out.append(q)
        err = v - q
        if not bool(valid[t].all()):  # a static fact of the image size, not of the data
            err = err * valid[t]
        e3, e2, e1 = e2, e1, (err, torch.cat([zero_row, err[:, : height - 1]], 1))
    # out laid out t-major: cell (i, t) at t*H + i
    result = torch.cat(out, 1).index_select(1, unskew)
    return result.reshape(-1, channels, height, width)


class FloydSteinbergExport(nn.Module):
    """ht_fs for export: floyd_steinberg_skewed on the [0, 1] image (``domain = "pixel"``).

    Forward only (a deployed graph needs no BPDA surrogate).
    """

    role = "input"
    domain = "pixel"

    def __init__(self) -> None:
        super().__init__()
        self.name = "ht_fs"
        self.bits = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return floyd_steinberg_skewed(x)


def export_form(input_quant: nn.Module) -> nn.Module:
    """The module an exported graph uses for ``input_quant``: its export form, or itself.

    Only Floyd-Steinberg needs one; Qb, HT and fp trace to plain ONNX ops as they are.
    """
    from trendcli.quantizers.error_diffusion import FloydSteinberg

    if isinstance(input_quant, FloydSteinberg):
        return FloydSteinbergExport()
    return input_quant
