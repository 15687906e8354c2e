"""Built-in quantizers, registered through the trendcli entry-point group like any plugin.

Every value is a :func:`~trendcli.registry.lazy` reference: listing the names imports no torch.
"""

from __future__ import annotations

from trendcli.hookspecs import hookimpl
from trendcli.registry import Lazy, lazy

_PKG = "trendcli.quantizers"

#: Bits of the Qb input quantizers q1..q8 (trendcli.quantizers.uniform.MAX_INPUT_BITS is 8; a test checks).
INPUT_BITS = range(1, 9)


@hookimpl
def trend_input_quantizers() -> dict[str, Lazy]:
    """fp, q1..q8 (Qb), ht (filter-and-threshold halftone), ht_fs (Floyd-Steinberg)."""
    table = {"fp": lazy(f"{_PKG}.full_precision:FullPrecision", "full precision: the z-scored image unchanged")}
    for b in INPUT_BITS:
        table[f"q{b}"] = lazy(f"{_PKG}.uniform:UniformQuantizer", f"Q{b}: uniform quantization to {2**b} levels (paper eqs. 2-3)", b)
    table["ht"] = lazy(f"{_PKG}.halftone:Halftone", "HT: filter-and-threshold halftone, values in {0, 1}")
    table["ht_fs"] = lazy(f"{_PKG}.error_diffusion:FloydSteinberg", "Floyd-Steinberg error diffusion on the [0, 1] image (BPDA backward)")
    return table


@hookimpl
def trend_weight_quantizers() -> dict[str, Lazy]:
    """dorefa: DoReFa weight quantization, factory(bits)."""
    return {"dorefa": lazy(f"{_PKG}.dorefa:dorefa_weight", "DoReFa weight quantization, factory(bits); identity for 32")}


@hookimpl
def trend_act_quantizers() -> dict[str, Lazy]:
    """dorefa: DoReFa activation quantization replacing ReLU, factory(bits)."""
    return {"dorefa": lazy(f"{_PKG}.dorefa:dorefa_activation", "DoReFa activation quantization replacing ReLU, factory(bits)")}
