"""quantize_network and friends (docs/method.md, "Weight and activation quantization", layers):
src/trendcli/quantizers/layers.py."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize
from torchvision.models.resnet import BasicBlock

from trendcli.quantizers.dorefa import DoReFaActivation, dorefa_activation, dorefa_weight
from trendcli.quantizers.layers import describe_quantization, fold_weight_quantization, quantize_network


def small_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3),  # 6x6 -> 4x4
        nn.ReLU(),
        nn.Conv2d(2, 3, 3),  # -> 2x2
        nn.BatchNorm2d(3),
        nn.ReLU(inplace=True),
        nn.Flatten(),
        nn.Linear(12, 8),
        nn.ReLU(),
        nn.Linear(8, 4),  # the classifier
    )


class TinyResNet(nn.Module):
    """torchvision's ResNet layout (conv1, bn1, relu, layer1.., fc) with its BasicBlock, narrow.

    BasicBlock calls one ReLU module twice and has a 1x1 downsample conv: both must be handled.
    """

    def __init__(self, num_classes: int = 5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(BasicBlock(4, 4))
        down = nn.Sequential(nn.Conv2d(4, 8, 1, stride=2, bias=False), nn.BatchNorm2d(8))
        self.layer2 = nn.Sequential(BasicBlock(4, 8, stride=2, downsample=down))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def small_resnet() -> TinyResNet:
    torch.manual_seed(0)
    return TinyResNet()


def w2() -> nn.Module:
    return dorefa_weight(2)


def a2() -> nn.Module:
    return dorefa_activation(2)


def quantized(module: nn.Module) -> bool:
    return parametrize.is_parametrized(module, "weight")


@pytest.mark.parametrize("quantize_first", [True, False])
def test_sequential_layers_and_activations(quantize_first):
    net = quantize_network(small_net(), w2, a2, quantize_first=quantize_first)
    assert quantized(net[0]) is quantize_first
    assert quantized(net[2]) and quantized(net[6])
    assert not quantized(net[8])  # the final Linear stays full precision
    assert not parametrize.is_parametrized(net[3])  # BN untouched
    assert not any(isinstance(m, nn.ReLU) for m in net.modules())
    acts = [net[1], net[4], net[7]]
    assert all(isinstance(a, DoReFaActivation) and a.bits == 2 for a in acts)
    assert len({id(a) for a in acts}) == 3  # a fresh module for each ReLU
    # the effective weight has the 2^2 DoReFa levels; the trained one stays float
    assert net[2].weight.unique().numel() == 4
    assert net[2].parametrizations.weight.original.unique().numel() == net[2].weight.numel()


def test_forward_backward_and_fold_give_identical_outputs():
    net = quantize_network(small_net(), w2, a2).eval()
    x = torch.randn(3, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    out = net(x)
    out.sum().backward()
    for layer in (net[0], net[2], net[6]):
        assert layer.parametrizations.weight.original.grad.abs().sum() > 0
    with torch.no_grad():
        before = net(x)
        fold_weight_quantization(net)
        after = net(x)
    assert not any(parametrize.is_parametrized(m) for m in net.modules())
    assert torch.equal(before, after)
    assert net[2].weight.unique().numel() == 4  # folded to the quantized values
    assert isinstance(net[2].weight, nn.Parameter)


@pytest.mark.parametrize("quantize_first", [True, False])
def test_torchvision_style_resnet(quantize_first):
    net = quantize_network(small_resnet(), lambda: dorefa_weight(3), a2, quantize_first=quantize_first)
    assert quantized(net.conv1) is quantize_first
    assert not quantized(net.fc)
    assert quantized(net.layer1[0].conv1) and quantized(net.layer2[0].downsample[0])
    assert not any(isinstance(m, nn.ReLU) for m in net.modules())
    assert isinstance(net.layer1[0].relu, DoReFaActivation)  # the block's shared ReLU
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    # 1 stem + 2 blocks * 2 convs + 1 downsample conv = 6 convs; fc is the 7th weight layer
    assert len(convs) == 6
    assert sum(quantized(c) for c in convs) == (6 if quantize_first else 5)
    net.eval()
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(2), requires_grad=True)
    out = net(x)
    out.sum().backward()
    assert x.grad.abs().sum() > 0
    with torch.no_grad():
        fold_weight_quantization(net)
        assert torch.equal(net(x), out)


def test_describe_counts():
    net = quantize_network(small_net(), w2, a2)
    assert describe_quantization(net) == {
        "weight_layers": 4,
        "quantized_weight_layers": 3,
        "full_precision_weight_layers": 1,
        "quantized_activations": 3,
        "relu_activations": 0,
        "weight_quantizers": ["dorefa2"],
        "act_quantizers": ["dorefa2"],
    }
    plain = describe_quantization(small_net())
    assert (plain["quantized_weight_layers"], plain["relu_activations"]) == (0, 3)


def test_none_and_full_precision_factories_change_nothing():
    reference = small_net()
    for wq, aq in [(None, None), (lambda: dorefa_weight(32), lambda: dorefa_activation(32))]:
        net = quantize_network(small_net(), wq, aq)
        assert not any(parametrize.is_parametrized(m) for m in net.modules())
        assert [type(m) for m in net.modules()] == [type(m) for m in reference.modules()]
        assert net.state_dict().keys() == reference.state_dict().keys()


def test_weights_only_and_activations_only():
    net = quantize_network(small_net(), w2, None)
    d = describe_quantization(net)
    assert (d["quantized_weight_layers"], d["quantized_activations"], d["relu_activations"]) == (3, 0, 3)
    net = quantize_network(small_net(), None, a2)
    d = describe_quantization(net)
    assert (d["quantized_weight_layers"], d["quantized_activations"], d["relu_activations"]) == (0, 3, 0)


def test_state_dict_round_trip_into_a_fresh_quantized_network():
    trained = quantize_network(small_net(), w2, a2).eval()
    with torch.no_grad():
        trained[2].parametrizations.weight.original.mul_(-1.5)
    fresh = quantize_network(small_net(), w2, a2).eval()
    fresh.load_state_dict(trained.state_dict())
    x = torch.randn(2, 1, 6, 6)
    assert torch.equal(fresh(x), trained(x))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_folded_network_exports_to_onnx():
    ort = pytest.importorskip("onnxruntime")
    net = fold_weight_quantization(quantize_network(small_net(), lambda: dorefa_weight(1), a2)).eval()
    buf = io.BytesIO()
    torch.onnx.export(net, (torch.randn(2, 1, 6, 6),), buf, dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "n"}})
    x = torch.randn(3, 1, 6, 6)
    (out,) = ort.InferenceSession(buf.getvalue()).run(None, {"x": x.numpy()})
    with torch.no_grad():
        assert torch.allclose(torch.from_numpy(out), net(x), atol=1e-5)
