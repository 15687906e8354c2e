"""Input, weight and activation quantizers (docs/method.md, "Input quantization", "Halftoning",
"Weight and activation quantization")."""

from __future__ import annotations

from trendcli.quantizers.dorefa import DoReFaActivation, DoReFaWeight, dorefa_activation, dorefa_weight
from trendcli.quantizers.error_diffusion import FloydSteinberg, floyd_steinberg
from trendcli.quantizers.full_precision import FullPrecision
from trendcli.quantizers.halftone import Halftone
from trendcli.quantizers.layers import describe_quantization, fold_weight_quantization, quantize_network
from trendcli.quantizers.straight_through import straight_through
from trendcli.quantizers.uniform import UniformQuantizer

__all__ = [
    "DoReFaActivation",
    "DoReFaWeight",
    "FloydSteinberg",
    "FullPrecision",
    "Halftone",
    "UniformQuantizer",
    "describe_quantization",
    "dorefa_activation",
    "dorefa_weight",
    "floyd_steinberg",
    "fold_weight_quantization",
    "quantize_network",
    "straight_through",
]
