"""Qb (docs/method.md, "Input quantization"): src/trendcli/quantizers/uniform.py."""

from __future__ import annotations

import io

import pytest
import torch

from trendcli.errors import UsageError
from trendcli.quantizers.uniform import UniformQuantizer


def test_q1_thresholds_at_the_midpoint_and_outputs_quarter_points():
    # min -2, max 6: r = 8, Delta = 8/2 = 4, threshold -2 + 4 = 2 (the midpoint);
    # below -> min + r/4 = 0, above -> min + 3r/4 = 4
    x = torch.tensor([-2.0, 1.9, 2.1, 6.0]).view(1, 1, 2, 2)
    out = UniformQuantizer(1)(x)
    assert out.flatten().tolist() == [0.0, 0.0, 4.0, 4.0]


def test_q2_thresholds_at_quarters_of_the_range():
    # min 0, max 8: Delta = 8/4 = 2, thresholds 2, 4, 6; bin centres 1, 3, 5, 7
    x = torch.tensor([0.0, 1.9, 2.1, 3.9, 4.1, 5.9, 6.1, 8.0]).view(1, 1, 2, 4)
    out = UniformQuantizer(2)(x)
    assert out.flatten().tolist() == [1.0, 1.0, 3.0, 3.0, 5.0, 5.0, 7.0, 7.0]


@pytest.mark.parametrize("bits", range(1, 9))
def test_qb_has_exactly_2_to_the_b_levels_at_bin_centres(bits):
    # 1000 evenly spaced values over [-1, 3] fill every one of the 2^b <= 256 bins (>= 3 each)
    x = torch.linspace(-1.0, 3.0, 1000, dtype=torch.float64).view(1, 1, 10, 100)
    levels = UniformQuantizer(bits)(x).unique()
    delta = 4.0 / 2**bits
    expected = -1.0 + (torch.arange(2**bits, dtype=torch.float64) + 0.5) * delta
    assert levels.numel() == 2**bits
    assert torch.allclose(levels, expected)


def test_per_minibatch_and_per_image_differ_on_images_with_different_ranges():
    # image a in [0, 1], image b in [0, 10]. Per minibatch (Q1): threshold 5, Delta 5, so all
    # of a -> 0 + 0.5*5 = 2.5. Per image: a's threshold 0.5, Delta 0.5 -> 0.25 / 0.75.
    a = torch.tensor([0.0, 0.2, 0.8, 1.0]).view(1, 1, 2, 2)
    b = torch.tensor([0.0, 4.0, 6.0, 10.0]).view(1, 1, 2, 2)
    batch = torch.cat([a, b])
    per_batch = UniformQuantizer(1)(batch)
    per_image = UniformQuantizer(1, per_image=True)(batch)
    assert per_batch[0].flatten().tolist() == [2.5, 2.5, 2.5, 2.5]
    assert per_image[0].flatten().tolist() == [0.25, 0.25, 0.75, 0.75]
    # b spans the whole batch range, so it quantizes alike in both forms: 2.5, 2.5, 7.5, 7.5
    assert per_batch[1].flatten().tolist() == per_image[1].flatten().tolist() == [2.5, 2.5, 7.5, 7.5]


def test_per_image_output_does_not_depend_on_batch_mates():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 5, 5, generator=g) * torch.tensor([0.5, 1.0, 3.0, 9.0]).view(4, 1, 1, 1)
    q = UniformQuantizer(2, per_image=True)
    alone = torch.cat([q(x[i : i + 1]) for i in range(4)])
    assert torch.equal(q(x), alone)
    # whereas per minibatch the first image changes when its batch-mates do
    q_batch = UniformQuantizer(2)
    assert not torch.equal(q_batch(x)[:1], q_batch(x[:1]))


@pytest.mark.parametrize("per_image", [False, True])
def test_constant_input_comes_back_unchanged_without_nan(per_image):
    # max == min: Delta = 0, j = 0, X_q = min + (0 + 1/2) * 0 = min
    x = torch.full((2, 1, 2, 2), 0.3)
    out = UniformQuantizer(3, per_image=per_image)(x)
    assert torch.equal(out, x)


def test_one_constant_image_among_others_per_image():
    # image 0 constant (Delta = 0 -> itself); image 1 in [0, 4], Q1: 1 or 3
    x = torch.stack([torch.full((1, 2, 2), -1.5), torch.tensor([0.0, 1.0, 3.0, 4.0]).view(1, 2, 2)])
    out = UniformQuantizer(1, per_image=True)(x)
    assert out[0].flatten().tolist() == [-1.5] * 4
    assert out[1].flatten().tolist() == [1.0, 1.0, 3.0, 3.0]


@pytest.mark.parametrize("per_image", [False, True])
def test_bpda_gradient_is_the_identity(per_image):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 4, 4, generator=g, requires_grad=True)
    UniformQuantizer(1, per_image=per_image)(x).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
    # with weights: d/dx sum(w * Q(x)) = w under the identity backward
    w = torch.randn(2, 3, 4, 4, generator=g)
    x.grad = None
    (w * UniformQuantizer(2, per_image=per_image)(x)).sum().backward()
    assert torch.equal(x.grad, w)


@pytest.mark.parametrize("bits", [0, 9])
def test_bits_outside_1_to_8_are_refused(bits):
    with pytest.raises(UsageError, match="1..8"):
        UniformQuantizer(bits)


def test_attributes_for_the_model():
    q = UniformQuantizer(4, per_image=True)
    assert (q.name, q.bits, q.per_image, q.domain) == ("q4", 4, True, "normalized")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("per_image", [False, True])
def test_exports_to_onnx_with_a_dynamic_batch(per_image):
    ort = pytest.importorskip("onnxruntime")
    q = UniformQuantizer(2, per_image=per_image)
    buf = io.BytesIO()
    torch.onnx.export(q, (torch.randn(2, 1, 4, 4),), buf, dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "n"}})
    x = torch.randn(3, 1, 4, 4) * torch.tensor([1.0, 2.0, 5.0]).view(3, 1, 1, 1)
    session = ort.InferenceSession(buf.getvalue())
    (out,) = session.run(None, {"x": x.numpy()})
    assert torch.equal(torch.from_numpy(out), q(x))
