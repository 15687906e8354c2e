"""trend-timm: timm architectures for trendcli, registered from a curated list.

The registry resolves names exactly, so the plugin registers a fixed list
(:data:`trend_timm.catalog.MODELS`) rather than every timm name behind a ``timm:`` prefix:
each listed model is checked against trendcli's architecture contract by this package's tests.
The hook hands over lazy references, so ``trend plugins`` imports neither torch nor timm. The
package imports only trendcli's public API (``trendcli``, ``trendcli.errors``).
"""

from __future__ import annotations

from trendcli import hookimpl, lazy

from trend_timm.catalog import MODELS, description


@hookimpl
def trend_architectures() -> dict:
    """timm_resnet18, timm_mobilenetv3_small_050, timm_efficientnet_b0, timm_vit_tiny_patch16_224, timm_convnext_atto."""
    return {name: lazy("trend_timm.models:timm_model", description(name), name) for name in MODELS}
