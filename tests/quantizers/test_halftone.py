"""HT (docs/method.md, "Halftoning"): src/trendcli/quantizers/halftone.py."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F

from trendcli.quantizers.halftone import Halftone

KF = torch.tensor([[-1.0, -2.0, -1.0], [-2.0, 16.0, -2.0], [-1.0, -2.0, -1.0]], dtype=torch.float64)


def surrogate_pre_threshold(x: torch.Tensor) -> torch.Tensor:
    """Kf * x_hat + 1e-3 written out independently: per-image statistics, grouped conv."""
    n, c = x.shape[:2]
    flat = x.reshape(n, -1)
    mean = flat.mean(1).view(n, 1, 1, 1)
    spread = (flat.amax(1) - flat.amin(1)).view(n, 1, 1, 1)
    x_hat = (x - mean) / spread
    return F.conv2d(x_hat, KF.to(x.dtype).repeat(c, 1, 1, 1), padding=1, groups=c) + 1e-3


def test_hand_computed_3x3():
    # x = [[1/2, 0, 1/2], [1/2, 1/2, 1/2], [1/2, 1/2, 1]]: mean = (7/2 + 1)/9 = 1/2, range 1,
    # x_hat = x - 1/2 = [[0, -1/2, 0], [0, 0, 0], [0, 0, 1/2]]. Kf * x_hat (zero padding):
    #   (0,0): right neighbour -2*(-1/2) = 1           -> 1
    #   (0,1): centre 16*(-1/2) = -8                     -> 0
    #   (0,2): left neighbour -2*(-1/2) = 1            -> 1
    #   (1,0): above-right -1*(-1/2) = 1/2             -> 1
    #   (1,1): above -2*(-1/2) + below-right -1*(1/2) = 1/2   -> 1
    #   (1,2): above-left 1/2 + below -2*(1/2) = -1/2  -> 0
    #   (2,0): nothing non-zero around: 0, + 1e-3 > 0  -> 1
    #   (2,1): right -2*(1/2) = -1                     -> 0
    #   (2,2): centre 16*(1/2) = 8                     -> 1
    # (a threshold of x_hat alone would give 1 only at (2,2))
    x = torch.tensor([[0.5, 0.0, 0.5], [0.5, 0.5, 0.5], [0.5, 0.5, 1.0]]).view(1, 1, 3, 3)
    expected = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 1.0]]).view(1, 1, 3, 3)
    assert torch.equal(Halftone()(x), expected)


def test_output_is_binary_and_matches_the_formula_per_channel():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 3, 6, 5, generator=g, dtype=torch.float64)
    out = Halftone()(x)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(out, 0.5 * torch.sign(surrogate_pre_threshold(x)) + 0.5)


def test_statistics_are_per_image():
    # scaling and shifting one image changes neither x_hat nor its halftone, nor its batch-mate's
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 2, 4, 4, generator=g, dtype=torch.float64)
    moved = x.clone()
    moved[1] = 3.0 * moved[1] + 5.0
    ht = Halftone()
    assert torch.equal(ht(x), ht(moved))
    assert torch.equal(ht(x)[:1], ht(x[:1]))


def test_constant_image_gives_ones_without_nan():
    # max == min: x_hat = 0, Kf * 0 + 1e-3 > 0 -> HT = 1
    out = Halftone()(torch.full((1, 2, 3, 3), 0.7))
    assert torch.equal(out, torch.ones(1, 2, 3, 3))


def test_gradient_is_the_sigmoid_surrogates_gradient():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 5, 5, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 3, 5, 5, generator=g, dtype=torch.float64)
    (w * Halftone()(x)).sum().backward()
    got = x.grad.clone()
    x.grad = None
    (w * (0.5 * torch.sigmoid(surrogate_pre_threshold(x)) + 0.5)).sum().backward()
    assert torch.allclose(got, x.grad, rtol=1e-10, atol=1e-12)
    assert got.abs().sum() > 0
    assert not torch.allclose(got, w)  # not the identity


def test_attributes_for_the_model():
    ht = Halftone(per_image=True)
    assert (ht.name, ht.bits, ht.per_image, ht.domain) == ("ht", 1, True, "normalized")
    assert "kernel" not in ht.state_dict()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_exports_to_onnx_with_a_dynamic_batch():
    ort = pytest.importorskip("onnxruntime")
    ht = Halftone()
    buf = io.BytesIO()
    torch.onnx.export(ht, (torch.randn(2, 3, 5, 5),), buf, dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "n"}})
    x = torch.randn(4, 3, 5, 5)
    (out,) = ort.InferenceSession(buf.getvalue()).run(None, {"x": x.numpy()})
    assert torch.equal(torch.from_numpy(out), ht(x))


def test_tied_extremes_send_the_gradient_to_the_first_pixel_by_default():
    # A 1x1x3x3 image whose minimum 0 is shared by pixels 0 and 1 (C, H, W order) and whose
    # maximum 1 is unique. d spread / d x: the min's -1 goes to pixel 0 alone under "first",
    # -1/2 to each of pixels 0 and 1 under "split"; every other pixel gets the same gradient.
    x0 = torch.tensor([[[[0.0, 0.0, 0.2], [0.4, 1.0, 0.6], [0.3, 0.5, 0.7]]]], dtype=torch.float64)

    def spread_grad(ties):
        x = x0.clone().requires_grad_(True)
        flat_w = torch.arange(9, dtype=torch.float64).view_as(x)  # any fixed weighting
        (flat_w * Halftone(ties=ties).pre_threshold(x)).sum().backward()
        return x.grad.flatten()

    first, split = spread_grad("first"), spread_grad("split")
    diff = first - split
    assert torch.allclose(diff[2:], torch.zeros(7, dtype=torch.float64), atol=1e-12)  # untied pixels agree
    assert diff[0].abs() > 1e-6 and torch.isclose(diff[0], -diff[1])  # the tie's share moved to pixel 0
    assert torch.isclose(first.sum(), split.sum())  # the same total gradient, distributed differently
    # the authors' rule written out: torch.max/min over the flattened image, gradient to its index
    x = x0.clone().requires_grad_(True)
    flat = x.flatten(1)
    spread = flat.max(dim=1).values - flat.min(dim=1).values
    x_hat = (x - x.mean()) / spread
    ref = F.conv2d(x_hat, KF.view(1, 1, 3, 3), padding=1) + 1e-3
    (torch.arange(9, dtype=torch.float64).view_as(x) * ref).sum().backward()
    assert torch.allclose(first, x.grad.flatten(), atol=1e-12)


def test_unknown_tie_rule_is_a_usage_error():
    from trendcli.errors import UsageError

    with pytest.raises(UsageError, match="ties must be one of first, split"):
        Halftone(ties="even")
