"""Built-in quantizers, registered through the trendcli entry-point group like any plugin."""

from __future__ import annotations

from typing import Any, Callable

from trendcli.hookspecs import hookimpl
from trendcli.quantizers.dorefa import dorefa_activation, dorefa_weight
from trendcli.quantizers.error_diffusion import FloydSteinberg
from trendcli.quantizers.full_precision import FullPrecision
from trendcli.quantizers.halftone import Halftone
from trendcli.quantizers.uniform import MAX_INPUT_BITS, UniformQuantizer


def _uniform_factory(bits: int) -> Callable[..., UniformQuantizer]:
    def factory(per_image: bool = False) -> UniformQuantizer:
        return UniformQuantizer(bits, per_image=per_image)

    factory.__name__ = f"q{bits}"
    factory.__doc__ = f"Q{bits}: uniform input quantization to {2**bits} levels (paper eqs. 2-3)."
    return factory


@hookimpl
def trend_input_quantizers() -> dict[str, Callable[..., Any]]:
    """fp, q1..q8 (Qb), ht (filter-and-threshold halftone), ht_fs (Floyd-Steinberg)."""
    table: dict[str, Callable[..., Any]] = {"fp": FullPrecision}
    table.update({f"q{b}": _uniform_factory(b) for b in range(1, MAX_INPUT_BITS + 1)})
    table["ht"] = Halftone
    table["ht_fs"] = FloydSteinberg
    return table


@hookimpl
def trend_weight_quantizers() -> dict[str, Callable[..., Any]]:
    """dorefa: DoReFa weight quantization, factory(bits)."""
    return {"dorefa": dorefa_weight}


@hookimpl
def trend_act_quantizers() -> dict[str, Callable[..., Any]]:
    """dorefa: DoReFa activation quantization replacing ReLU, factory(bits)."""
    return {"dorefa": dorefa_activation}
