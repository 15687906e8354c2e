"""Input, weight and activation quantizers (EQUATIONS.md, "Input quantization", "Halftoning",
"Weight and activation quantization")."""

from __future__ import annotations

from .dorefa import DoReFaActivation, DoReFaWeight, dorefa_activation, dorefa_weight
from .error_diffusion import FloydSteinberg, floyd_steinberg
from .full_precision import FullPrecision
from .halftone import Halftone
from .layers import describe_quantization, fold_weight_quantization, quantize_network
from .straight_through import straight_through
from .uniform import UniformQuantizer

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
