"""Gradient-masking flags on constructed inputs: each one fires, and each one stays quiet."""

from __future__ import annotations

import numpy as np
import pytest

from trendcli.ensemble.masking import (
    flag_flat_loss,
    flag_gradient_free_stronger,
    flag_large_eps_short,
    flag_not_monotone,
    flag_transfer_stronger,
)

N = 60


def ok(right: int, n: int = N) -> np.ndarray:
    """The first ``right`` images classified correctly, the rest fooled."""
    return np.arange(n) < right


def test_gradient_free_stronger_fires_when_square_fools_far_more():
    # PGD leaves 50 of 60 right, APGD 45; Square only 10: 35 discordant images vs APGD, all for Square
    flag = flag_gradient_free_stronger(ok(10), {"pgd": ok(50), "apgd": ok(45)})
    assert flag["fired"] is True
    assert flag["numbers"]["strongest_gradient"] == "apgd"
    assert flag["numbers"]["success"] == pytest.approx(50 / 60)
    assert flag["numbers"]["fooled_only_by_it"] == 35  # images 10-44: right under both gradient attacks
    assert flag["numbers"]["test"]["p_value"] < 1e-6


def test_gradient_free_stronger_stays_quiet_when_square_is_weaker_or_close():
    assert flag_gradient_free_stronger(ok(50), {"pgd": ok(20)})["fired"] is False
    assert flag_gradient_free_stronger(ok(19), {"pgd": ok(20)})["fired"] is False  # 1 image: not significant
    assert flag_gradient_free_stronger(ok(10), {})["fired"] is None


def test_transfer_stronger_fires_and_stays_quiet():
    assert flag_transfer_stronger(ok(5), {"agd": ok(40), "dag": ok(45)})["fired"] is True
    quiet = flag_transfer_stronger(ok(40), {"agd": ok(5)})
    assert quiet["fired"] is False and "transfer success" in quiet["text"]


def test_large_eps_short_fires_below_full_success():
    fooled = np.ones(20, bool)
    assert flag_large_eps_short(fooled, 0.5, "agd")["fired"] is False
    fooled[3] = False
    flag = flag_large_eps_short(fooled, 0.5, "agd")
    assert flag["fired"] is True and flag["numbers"]["fooled"] == 19 and flag["numbers"]["n"] == 20
    assert "19 of 20" in flag["text"]


def test_not_monotone_fires_on_a_drop_beyond_the_tolerance():
    # success 0.30 -> 0.50 -> 0.45 -> 0.60: the 0.05 drop from eps 0.02 to 0.03 exceeds 0.02
    flag = flag_not_monotone("not_monotone_eps", [(0.03, 0.45), (0.01, 0.30), (0.02, 0.50), (0.05, 0.60)], "agd")
    assert flag["fired"] is True
    assert flag["numbers"]["largest_drop"] == {"from": 0.02, "to": 0.03, "drop": pytest.approx(0.05)}
    # a 0.01 dip is within the tolerance
    assert flag_not_monotone("not_monotone_steps", [(10, 0.50), (20, 0.49), (40, 0.70)], "agd")["fired"] is False
    assert flag_not_monotone("not_monotone_steps", [(10, 0.5)], "agd")["fired"] is None


def test_flat_loss_fires_when_the_loss_never_rises():
    # start 2.0: threshold 0.01 * 2.0 = 0.02; rises by 0.01 only -> flat
    flag = flag_flat_loss([2.0, 2.0, 2.01, 2.005], "APGD-CE")
    assert flag["fired"] is True and flag["numbers"]["rise"] == pytest.approx(0.01, abs=1e-9)
    assert flag["numbers"]["threshold"] == pytest.approx(0.02)
    # start 0.3 (threshold 0.01 * max(1, 0.3) = 0.01): rises to 1.5 -> not flat
    assert flag_flat_loss([0.3, 0.8, 1.2, 1.5], "APGD-CE")["fired"] is False
    missing = flag_flat_loss(None, "APGD-CE")
    assert missing["fired"] is None and "no stored loss curve" in missing["reason"]
