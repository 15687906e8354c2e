"""trendcli.stats: every number checked against arithmetic done by hand here."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest

import trendcli.stats as stats
from trendcli.stats import (
    ClaimResult,
    fmt_p,
    fmt_rate,
    fmt_ratio,
    fmt_tm,
    mcnemar_exact,
    paired_bootstrap,
    ratio,
    verdict,
    wilson_interval,
)

# -- ratio -----------------------------------------------------------------------------------------


def test_ratio_of_scalars():
    assert ratio(3, 4) == 0.75
    assert isinstance(ratio(3, 4), float)


@pytest.mark.parametrize("num, den", [(1, 0), (0, 0), (-2, 0), (None, 2), (2, None), (float("nan"), 1), (1, float("nan"))])
def test_ratio_undefined_is_nan(num, den):
    assert math.isnan(ratio(num, den))


def test_ratio_of_arrays_is_nan_where_den_is_zero_without_warnings():
    with np.errstate(all="raise"):
        out = ratio(np.array([1, 0, 3]), np.array([0, 0, 4]))
    assert np.isnan(out[0]) and np.isnan(out[1]) and out[2] == 0.75


def test_ratio_broadcasts_and_reads_none_as_missing():
    # rows / column: [[1/2, 2/2], [3/0, 4/0]]
    out = ratio([[1, 2], [3, 4]], [[2], [0]])
    assert out[0].tolist() == [0.5, 1.0] and np.isnan(out[1]).all()
    assert np.isnan(ratio([1, None], [1, 1])[1])


# -- Wilson ----------------------------------------------------------------------------------------


def test_wilson_8_of_10_by_hand():
    z = 1.959963984540054  # the 97.5% normal quantile
    p, n = 0.8, 10
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)  # (0.8 + 0.19207) / 1.38415 = 0.71674
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)  # 0.22658
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(centre - half, abs=1e-12) and hi == pytest.approx(centre + half, abs=1e-12)
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)  # the published value for 8/10


def test_wilson_extremes_stay_in_unit_interval():
    # 0 of 10: lo = 0, hi = z^2 / (n + z^2) = 3.8415 / 13.8415 = 0.2775
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(3.841458820694124 / 13.841458820694124, abs=1e-12)
    lo, hi = wilson_interval(10, 10)
    assert hi == pytest.approx(1.0, abs=1e-12) and lo == pytest.approx(10 / 13.841458820694124, abs=1e-12)


def test_wilson_level_and_empty():
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    # level 0.6827 -> z ~ 1; 1 of 4: centre (0.25 + 1/8) / 1.25 = 0.3, half sqrt(3/64 + 1/64) / 1.25 = 0.2
    lo, hi = wilson_interval(1, 4, level=0.6826894921370859)
    assert lo == pytest.approx(0.1, abs=1e-9) and hi == pytest.approx(0.5, abs=1e-9)
    with pytest.raises(ValueError):
        wilson_interval(5, 4)


# -- McNemar ---------------------------------------------------------------------------------------


def test_mcnemar_1_vs_9_by_hand():
    # 2 * (C(10,0) + C(10,1)) / 2^10 = 2 * 11 / 1024 = 22 / 1024
    assert mcnemar_exact(1, 9) == pytest.approx(22 / 1024, rel=1e-12)
    assert mcnemar_exact(9, 1) == pytest.approx(22 / 1024, rel=1e-12)


def test_mcnemar_small_and_balanced():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)  # 2 * C(5,0) / 2^5
    assert mcnemar_exact(3, 3) == 1.0  # 2 * (1+6+15+20)/64 = 84/64, capped at 1
    assert mcnemar_exact(2, 6) == pytest.approx(2 * (1 + 8 + 28) / 256)  # 74/256


# -- paired bootstrap ------------------------------------------------------------------------------


def test_paired_bootstrap_estimate_and_interval():
    a = [1, 1, 1, 0, 1, 1, 0, 1]  # 6/8
    b = [0, 1, 0, 0, 1, 0, 0, 1]  # 3/8; differences: three +1, five 0
    est, (lo, hi) = paired_bootstrap(a, b, n_boot=2000, seed=1)
    assert est == pytest.approx(3 / 8)
    # replicate differences are (#+1 of 8 draws) / 8 with p = 3/8: never negative
    assert 0 <= lo < est < hi <= 1
    assert paired_bootstrap(a, b, n_boot=2000, seed=1) == (est, (lo, hi))


def test_paired_bootstrap_no_discordant_pairs_is_a_point():
    est, (lo, hi) = paired_bootstrap([1, 0, 1], [1, 0, 1])
    assert (est, lo, hi) == (0.0, 0.0, 0.0)


def test_paired_bootstrap_matches_resampling_images():
    # The multinomial shortcut has the replicate distribution of resampling the images: its
    # mean is the estimate and its variance var(d) / n = (1/2 * 1/2) / 16 -> sd 0.125.
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, 16)
    b = np.where(np.arange(16) < 8, a, 1 - a)  # 8 concordant, 8 discordant
    d = a - b
    est, (lo, hi) = paired_bootstrap(a, b, n_boot=20000, seed=3)
    sd = d.std() / math.sqrt(16)
    assert est == pytest.approx(d.mean())
    assert hi - lo == pytest.approx(2 * 1.96 * sd, rel=0.15)


def test_paired_bootstrap_empty_and_mismatched():
    est, (lo, hi) = paired_bootstrap([], [])
    assert math.isnan(est) and math.isnan(lo) and math.isnan(hi)
    with pytest.raises(ValueError):
        paired_bootstrap([1, 0], [1])


# -- verdict ---------------------------------------------------------------------------------------


def test_verdict_three_ways():
    assert verdict(0.2, 0.01) == "holds"
    assert verdict(-0.2, 0.01) == "does not hold"
    assert verdict(0.2, 0.05) == "inconclusive"  # p must be below alpha
    assert verdict(0.2, 0.2) == "inconclusive"
    assert verdict(None, 0.01) == "inconclusive" and verdict(0.1, float("nan")) == "inconclusive"
    assert verdict(0.2, 0.08, alpha=0.1) == "holds"


def test_claim_result_holds_and_json():
    r = ClaimResult("holds", "exact McNemar", p_value=22 / 1024, effect=0.8, interval=(0.1, float("nan")), n=10)
    assert r.holds is True
    assert r.to_dict() == {"verdict": "holds", "holds": True, "test": "exact McNemar", "p_value": 22 / 1024,
                           "effect": 0.8, "interval": [0.1, None], "n": 10}
    assert ClaimResult("inconclusive", "x").holds is None and ClaimResult("does not hold", "x").holds is False
    with pytest.raises(ValueError):
        ClaimResult("maybe", "x")


# -- formatters ------------------------------------------------------------------------------------


def test_formatters():
    assert fmt_rate(0.8125) == "0.8125" and fmt_rate(None) == "n/a"
    assert fmt_tm(0.7754) == "0.775" and fmt_tm(float("nan")) == "n/a"
    assert fmt_ratio(1.3) == "1.30x" and fmt_ratio(ratio(1, 0)) == "n/a"
    assert fmt_p(22 / 1024) == "0.021" and fmt_p(0.0001) == "<0.001" and fmt_p(None) == "n/a"


def test_stats_imports_no_torch():
    tree = ast.parse(Path(stats.__file__).read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not any(n == "torch" or n.startswith("torch.") or n.startswith("trendcli") for n in names)


def test_jsonable_writes_undefined_numbers_as_null():
    data = {"a": float("nan"), "b": [np.float32(0.5), np.int64(3), np.bool_(True)], 1: np.array([1.0, np.inf])}
    assert stats.jsonable(data) == {"a": None, "b": [0.5, 3, True], "1": [1.0, None]}


# -- the helpers the verdict rules share ---------------------------------------------------------------


def test_wilson_intervals_of_arrays_and_rate_record():
    from trendcli.stats import rate_record, wilson_intervals

    iv = wilson_intervals([[8, 0], [-1, 3]], [[10, 0], [5, 3]])
    assert iv.shape == (2, 2, 2)
    assert iv[0, 0].tolist() == pytest.approx(list(wilson_interval(8, 10)))
    assert np.isnan(iv[0, 1]).all() and np.isnan(iv[1, 0]).all()  # n = 0, and a count still to compute
    assert iv[1, 1].tolist() == pytest.approx(list(wilson_interval(3, 3)))
    rec = rate_record(8, 10)
    assert rec["rate"] == 0.8 and rec["k"] == 8 and rec["n"] == 10 and rec["interval"] == pytest.approx(list(wilson_interval(8, 10)))


def test_per_image_bits_round_trip():
    from trendcli.stats import decode_bits, encode_bits

    assert encode_bits([True, False, True, True]) == "1011"
    assert decode_bits("1011").tolist() == [True, False, True, True]
    assert encode_bits([]) == "" and decode_bits("").size == 0
    with pytest.raises(ValueError):
        decode_bits("10a")


def test_paired_claim_by_hand():
    from trendcli.stats import paired_claim

    # 10 images: a right on 0..7, b right on 0..2 and 8: b = 5 (3..7), c = 1 (8)
    a = np.array([1] * 8 + [0, 0], bool)
    b = np.array([1, 1, 1, 0, 0, 0, 0, 0, 1, 0], bool)
    r = paired_claim(a, b)
    # exact McNemar: 2 * (C(6,0) + C(6,1)) / 2^6 = 14 / 64
    assert r.p_value == pytest.approx(14 / 64) and r.effect == pytest.approx(0.4) and r.n == 10
    assert r.verdict == "inconclusive" and r.test == "exact McNemar"
    lo, hi = r.interval
    assert lo <= 0.4 <= hi


def test_bootstrap_claim_p_and_interval_by_hand():
    from trendcli.stats import bootstrap_claim, bootstrap_weights

    # 100 replicates 0.01, 0.02, ..., 1.00: none <= 0 -> p = 0; 100 replicates -0.5..0.49: P(<= 0) = 0.51
    r = bootstrap_claim(0.5, np.arange(1, 101) / 100, 40, "t")
    assert r.p_value == 0.0 and r.verdict == "holds" and r.n == 40
    assert r.interval == pytest.approx(tuple(np.quantile(np.arange(1, 101) / 100, [0.025, 0.975])))
    r = bootstrap_claim(-0.01, np.arange(-50, 50) / 100, 40, "t")
    # P(rep <= 0) = 51 / 100, P(rep >= 0) = 50 / 100 -> p = min(1, 2 * 0.5) = 1
    assert r.p_value == 1.0 and r.verdict == "inconclusive"
    assert bootstrap_claim(0.1, [np.nan], 5, "t").verdict == "inconclusive"
    w = bootstrap_weights(5, 4, seed=3)
    assert w.shape == (4, 5) and (w.sum(1) == 5).all()
    assert np.array_equal(w, bootstrap_weights(5, 4, seed=3))


def test_all_of_holds_only_when_each_holds():
    from trendcli.stats import all_of

    win = ClaimResult("holds", "t", 0.01, 0.2, (0.1, 0.3), 100)
    weak = ClaimResult("holds", "t", 0.04, 0.1, (0.01, 0.2), 100)
    noise = ClaimResult("inconclusive", "t", 0.5, 0.01, (-0.05, 0.07), 100)
    loss = ClaimResult("does not hold", "t", 0.001, -0.3, (-0.4, -0.2), 100)
    r, label = all_of({"a": win, "b": weak}, "each")
    assert (r.verdict, label, r.p_value, r.test) == ("holds", "b", 0.04, "each")  # the largest p decides
    r, label = all_of({"a": win, "b": noise})
    assert (r.verdict, label) == ("inconclusive", "b")
    r, label = all_of({"a": win, "b": noise, "c": loss})
    assert (r.verdict, label, r.effect) == ("does not hold", "c", -0.3)
    assert all_of({})[0].verdict == "not measured"
