"""The findings' rules on hand-made numbers: each claim holds one way, does not hold the other."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trendcli.report.findings import (
    Finding,
    asymmetry_finding,
    decided,
    export_accuracy_finding,
    findings_markdown,
    low_bit_input_finding,
    seed_finding,
)

NAN = float("nan")


def _spec(q: str, w: int = 32, a: int = 32) -> dict:
    return {"input_quant": q, "weight_bits": w, "act_bits": a}


# -- 1. low-bit input quantization --------------------------------------------------------------------

SPECS3 = [_spec("fp"), _spec("fp"), _spec("q1")]


def test_low_bit_holds_when_pairs_with_q1_transfer_less():
    tm = [[1, 0.8, 0.1],
          [0.6, 1, 0.3],
          [0.2, 0.4, 1]]
    f = low_bit_input_finding(["a", "b", "c"], tm, SPECS3)
    # with q1: 0.1 + 0.3 + 0.2 + 0.4 = 1.0 over 4 -> 0.25; among FP: (0.8 + 0.6) / 2 = 0.70
    assert f.values["mean_tm_pairs_with_low_bit"] == pytest.approx(0.25)
    assert f.values["mean_tm_among_fp"] == pytest.approx(0.70)
    # column averages: a (0.6 + 0.2) / 2 = 0.4, b (0.8 + 0.4) / 2 = 0.6, q1 (0.1 + 0.3) / 2 = 0.2
    assert f.values["column_average"] == pytest.approx({"a": 0.4, "b": 0.6, "c": 0.2})
    assert f.values["rank_by_column_average"] == {"c": 1, "a": 2, "b": 3}
    # margin: lowest other (a, 0.4) - q1's 0.2 = 0.2; no per-image outcomes: the point estimate decides
    assert f.result.effect == pytest.approx(0.2) and f.result.test == "point estimate"
    assert f.holds is True and f.verdict == "holds" and "Q1" in f.this_run


def test_low_bit_does_not_hold_when_pairs_with_q1_transfer_more():
    tm = [[1, 0.2, 0.9],
          [0.2, 1, 0.9],
          [0.9, 0.9, 1]]
    f = low_bit_input_finding(["a", "b", "c"], tm, SPECS3)
    # with q1: 0.9 (4 pairs) vs among FP 0.2
    assert f.holds is False and f.verdict == "does not hold"


def test_low_bit_skips_undefined_pairs_and_weight_quantized_models():
    tm = [[1, 0.8, NAN, 0.5],
          [0.6, 1, 0.3, 0.5],
          [0.2, 0.4, 1, 0.5],
          [0.5, 0.5, 0.5, 1]]
    # d is W2: neither low-bit input nor a full-precision model; its pairs count nowhere
    f = low_bit_input_finding(["a", "b", "c", "d"], tm, SPECS3 + [_spec("fp", w=2)])
    # with q1: 0.3 + 0.2 + 0.4 + (c<->d 0.5 + 0.5) = 1.9 over 5 -> 0.38
    assert f.values["pairs_with_low_bit"] == 5
    assert f.values["mean_tm_pairs_with_low_bit"] == pytest.approx(0.38)
    assert f.values["other_models"] == ["a", "b", "d"]


def test_low_bit_not_measured_without_the_models():
    f = low_bit_input_finding(["a", "b"], [[1, 0.5], [0.5, 1]], [_spec("fp"), _spec("fp")])
    assert f.holds is None and f.verdict == "not measured" and "no Q1/Q2/HT model" in f.this_run
    f = low_bit_input_finding(["a", "b"], [[1, 0.5], [0.5, 1]], [_spec("q1"), _spec("ht")])
    assert f.holds is None and "no model other than Q1/Q2/HT" in f.this_run


# -- 2. asymmetry -------------------------------------------------------------------------------------


def test_asymmetry_holds_beyond_three_standard_errors():
    tm = [[1, 0.9],
          [0.5, 1]]
    f = asymmetry_finding(["a", "b"], tm, [[100, 100], [100, 100]])
    # SE = sqrt(0.9*0.1/100 + 0.5*0.5/100) = sqrt(0.0034) = 0.0583; |0.9 - 0.5| = 0.4 > 3 * 0.0583
    assert f.values["max_standard_error"] == pytest.approx(math.sqrt(0.0034))
    assert f.values["mean_abs_difference"] == pytest.approx(0.4)
    assert f.values["max_pair"] == ["a", "b"] and f.holds is True


def test_asymmetry_does_not_hold_within_the_noise():
    tm = [[1, 0.55],
          [0.5, 1]]
    f = asymmetry_finding(["a", "b"], tm, [[100, 100], [100, 100]])
    # SE = sqrt(0.55*0.45/100 + 0.25/100) = 0.0705; 0.05 < 3 * 0.0705: no evidence either way
    assert f.values["asymmetric_pairs"] == 0 and f.verdict == "inconclusive"


def test_asymmetry_names_the_larger_direction_first_and_skips_undefined():
    tm = [[1, 0.1, NAN],
          [0.7, 1, 0.4],
          [0.3, 0.4, 1]]
    f = asymmetry_finding(["a", "b", "c"], tm, np.full((3, 3), 1000))
    # defined both ways: (a, b) |0.1 - 0.7| = 0.6 and (b, c) 0; mean 0.3
    assert f.values["pairs"] == 2 and f.values["mean_abs_difference"] == pytest.approx(0.3)
    assert f.values["max_pair"] == ["b", "a"] and f.values["max_tm_forward"] == pytest.approx(0.7)
    assert f.values["asymmetric_pairs"] == 1  # a difference of 0 is never asymmetric


def test_asymmetry_not_measured_without_a_pair_defined_both_ways():
    f = asymmetry_finding(["a", "b"], [[1, NAN], [0.5, 1]], [[10, 0], [10, 10]])
    assert f.holds is None


# -- 3. seeds -----------------------------------------------------------------------------------------


def test_seed_holds_when_seeds_transfer_more_than_other_configs():
    tm = [[1, 0.9, 0.3],
          [0.7, 1, 0.2],
          [0.4, 0.1, 1]]
    f = seed_finding(["a0", "a1", "b0"], tm, ["A", "A", "B"], [0, 1, 0])
    # seeds of A: 0.9 and 0.7 -> mean 0.8; the authors' std divides by the 2 pairs: sqrt(0.02 / 2) = 0.1
    assert f.values["mean_tm_same_config"] == pytest.approx(0.8)
    assert f.values["std_tm_same_config"] == pytest.approx(0.1)
    assert seed_finding(["a0", "a1", "b0"], tm, ["A", "A", "B"], [0, 1, 0], ddof=1).values[
        "std_tm_same_config"] == pytest.approx(math.sqrt(0.02))
    # other configs: 0.3 + 0.2 + 0.4 + 0.1 = 1.0 over 4 -> 0.25
    assert f.values["mean_tm_other_configs"] == pytest.approx(0.25)
    assert f.holds is True


def test_seed_does_not_hold_when_seeds_transfer_less():
    tm = [[1, 0.2, 0.9],
          [0.2, 1, 0.9],
          [0.9, 0.9, 1]]
    f = seed_finding(["a0", "a1", "b0"], tm, ["A", "A", "B"], [0, 1, 0])
    assert f.holds is False


def test_seed_not_measured_without_two_seeds_of_one_config():
    tm = [[1, 0.9], [0.7, 1]]
    assert seed_finding(["a", "b"], tm, ["A", "B"], [0, 0]).holds is None
    assert seed_finding(["a", "b"], tm, ["A", "A"], [0, 0]).holds is None  # same seed twice: not a seed pair
    only_seeds = seed_finding(["a", "b"], tm, ["A", "A"], [0, 1])
    assert only_seeds.holds is None and only_seeds.values["mean_tm_same_config"] == pytest.approx(0.8)


# -- 6. export ----------------------------------------------------------------------------------------


def test_export_accuracy_equal_and_different():
    # 0.85 of 200 = 170 correct both ways
    assert export_accuracy_finding(0.85, 200, 0.85, 200).holds is True
    # 170 vs 169 correct
    assert export_accuracy_finding(0.85, 200, 0.845, 200).holds is False
    assert export_accuracy_finding(0.85, 200, 0.85, 100).holds is None  # different image counts
    assert export_accuracy_finding(None, None, 0.85, 100).holds is None


# -- output -------------------------------------------------------------------------------------------


def test_markdown_table_escapes_pipes_and_newlines():
    from trendcli.report.findings import READING_NOTE
    from trendcli.stats import ClaimResult

    f = Finding("k", "a | b", "paper\nnumber", "run", decided(True))
    tested = Finding("t", "x", "y", "z", ClaimResult("inconclusive", "exact McNemar", 0.0312, -0.002, (-0.0104, 0.006), 500))
    md = findings_markdown([f, Finding("j", "c", "d", "e", decided(None)), tested], "heading")
    assert md.splitlines() == [
        "heading",
        "",
        "| claim | paper | this run | verdict | test | p | effect [95 % interval] | n |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        "| a \\| b | paper number | run | holds | point estimate | n/a | n/a | n/a |",
        "| c | d | e | not measured | point estimate | n/a | n/a | n/a |",
        "| x | y | z | inconclusive | exact McNemar | 0.031 | -0.002 [-0.010, +0.006] | 500 |",
        "",
        READING_NOTE,
    ]


def test_finding_json_carries_the_structured_result():
    f = seed_finding(["a", "b", "c"], [[NAN, 0.9, 0.2], [0.8, NAN, 0.3], [0.1, 0.2, NAN]], ["A", "A", "B"], [0, 1, 0])
    d = f.to_dict()
    # seeds: (0.9 + 0.8) / 2 = 0.85; other configs: (0.2 + 0.3 + 0.1 + 0.2) / 4 = 0.2; effect 0.65
    assert d["verdict"] == "holds" and d["holds"] is True and d["test"] == "point estimate"
    assert d["effect"] == pytest.approx(0.65) and d["p_value"] is None and d["interval"] == [None, None]
