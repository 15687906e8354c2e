"""Example trendcli plugin: the ``example_mlp`` architecture and the ``binarize`` input quantizer.

The hooks hand over lazy references, so listing plugins (``trend plugins``) imports neither
torch nor the implementations in :mod:`trend_example.models` and :mod:`trend_example.quantizers`.
The package imports only trendcli's public API (``trendcli``, ``trendcli.errors``).
"""

from __future__ import annotations

from trendcli import hookimpl, lazy


@hookimpl
def trend_architectures() -> dict:
    """example_mlp."""
    return {"example_mlp": lazy("trend_example.models:example_mlp", "an MLP: flatten, 256 * width hidden ReLUs, linear")}


@hookimpl
def trend_input_quantizers() -> dict:
    """binarize."""
    return {"binarize": lazy("trend_example.quantizers:Binarize", "1[x > 0] on the z-scored image, identity backward")}
