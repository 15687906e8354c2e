"""ht_fs (docs/method.md, "Halftoning", option ht-fs): src/trendcli/quantizers/error_diffusion.py."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from trendcli.quantizers.error_diffusion import FloydSteinberg, floyd_steinberg


def reference_floyd_steinberg(plane: np.ndarray) -> np.ndarray:
    """Textbook raster-scan Floyd-Steinberg on one [H, W] plane, threshold 1/2 (>= goes to 1)."""
    img = plane.copy()
    h, w = img.shape
    out = np.zeros_like(img)
    for i in range(h):
        for j in range(w):
            q = 1.0 if img[i, j] >= 0.5 else 0.0
            e = img[i, j] - q
            out[i, j] = q
            if j + 1 < w:
                img[i, j + 1] += 7 / 16 * e
            if i + 1 < h:
                if j > 0:
                    img[i + 1, j - 1] += 3 / 16 * e
                img[i + 1, j] += 5 / 16 * e
                if j + 1 < w:
                    img[i + 1, j + 1] += 1 / 16 * e
    return out


def reference_batch(x: torch.Tensor) -> np.ndarray:
    a = x.numpy()
    return np.stack([[reference_floyd_steinberg(a[n, c]) for c in range(a.shape[1])] for n in range(a.shape[0])])


@pytest.mark.parametrize("shape", [(2, 1, 5, 6), (2, 3, 5, 6), (1, 2, 7, 3), (1, 1, 1, 4), (1, 1, 4, 1)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_equals_the_numpy_reference(shape, dtype):
    g = torch.Generator().manual_seed(sum(shape))
    x = torch.rand(shape, generator=g, dtype=dtype)
    out = FloydSteinberg()(x)
    assert out.dtype == dtype
    assert np.array_equal(out.numpy(), reference_batch(x))


def test_hand_checked_2x2():
    # all pixels 6/16 = 0.375:
    # (0,0): 0.375 -> 0, e = 0.375;  7/16 right, 5/16 below, 1/16 below-right
    # (0,1): 0.375 + 7/16*0.375 = 0.5390625 -> 1, e = -0.4609375 (3/16 below-left, 5/16 below)
    # (1,0): 0.375 + 5/16*0.375 + 3/16*(-0.4609375) = 0.40576171875 -> 0
    # (1,1): 0.375 + 1/16*0.375 + 5/16*(-0.4609375) + 7/16*0.40576171875 = 0.431915283203125 -> 0
    x = torch.full((1, 1, 2, 2), 0.375)
    assert FloydSteinberg()(x).flatten().tolist() == [0.0, 1.0, 0.0, 0.0]


def test_mid_grey_diffuses_to_about_half_ones():
    # a constant 1/2 has no bias either way: half the pixels on a 16x16 plane, +- the edges
    out = floyd_steinberg(torch.full((1, 1, 16, 16), 0.5))
    assert abs(out.mean().item() - 0.5) < 0.05
    assert set(out.unique().tolist()) == {0.0, 1.0}


def test_identity_gradient():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 1, 5, 6, generator=g, requires_grad=True)
    w = torch.randn(2, 1, 5, 6, generator=g)
    (w * FloydSteinberg()(x)).sum().backward()
    assert torch.equal(x.grad, w)


def test_attributes_for_the_model():
    q = FloydSteinberg(per_image=True)
    assert (q.name, q.bits, q.per_image, q.domain) == ("ht_fs", 1, True, "pixel")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # H, W fixed by the export
def test_exports_to_onnx_with_a_dynamic_batch():
    # the wavefront loop unrolls into the graph (W + 2H - 2 steps), fine for small images
    ort = pytest.importorskip("onnxruntime")
    q = FloydSteinberg()
    buf = io.BytesIO()
    torch.onnx.export(q, (torch.rand(2, 1, 3, 4),), buf, dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "n"}})
    x = torch.rand(3, 1, 3, 4)
    (out,) = ort.InferenceSession(buf.getvalue()).run(None, {"x": x.numpy()})
    assert torch.equal(torch.from_numpy(out), q(x))
