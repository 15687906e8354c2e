"""The findings' rules on hand-made numbers: each claim holds one way, does not hold the other."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trendcli.report.findings import (
    Finding,
    agd_vs_dag_finding,
    asymmetry_finding,
    ensemble_robustness_finding,
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
    # into q1 (column c): (0.1 + 0.3) / 2 = 0.2; from q1 (row c): (0.2 + 0.4) / 2 = 0.3
    assert f.values["mean_tm_into_low_bit"] == pytest.approx(0.2)
    assert f.values["mean_tm_from_low_bit"] == pytest.approx(0.3)
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
    assert f.values["fp_models"] == ["a", "b"]


def test_low_bit_not_measured_without_the_models():
    f = low_bit_input_finding(["a", "b"], [[1, 0.5], [0.5, 1]], [_spec("fp"), _spec("fp")])
    assert f.holds is None and f.verdict == "not measured" and "no Q1/Q2/HT model" in f.this_run
    f = low_bit_input_finding(["a", "b"], [[1, 0.5], [0.5, 1]], [_spec("fp"), _spec("ht")])
    assert f.holds is None and "fewer than two full-precision models" in f.this_run


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
    # SE = sqrt(0.55*0.45/100 + 0.25/100) = 0.0705; 0.05 < 3 * 0.0705
    assert f.values["asymmetric_pairs"] == 0 and f.holds is False


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
    # seeds of A: 0.9 and 0.7 -> mean 0.8, sample std sqrt(((0.1)^2 + (0.1)^2) / 1) = 0.1414
    assert f.values["mean_tm_same_config"] == pytest.approx(0.8)
    assert f.values["std_tm_same_config"] == pytest.approx(math.sqrt(0.02))
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


# -- 4. A-GD vs D-AG ----------------------------------------------------------------------------------


def test_agd_beats_dag_at_the_smallest_eps():
    f = agd_vs_dag_finding([0.02, 0.01], [0.5, 0.3], [0.5, 0.2])
    # smallest eps 0.01: 0.3 / 0.2 = 1.5; at 0.02: 1.0
    assert f.values["smallest_eps"] == 0.01 and f.values["ratio_at_smallest_eps"] == pytest.approx(1.5)
    assert f.values["ratio"] == [pytest.approx(1.5), pytest.approx(1.0)]
    assert f.holds is True and "1.50x" in f.this_run


def test_agd_does_not_beat_dag():
    f = agd_vs_dag_finding([0.01, 0.02], [0.2, 0.6], [0.3, 0.4])
    # at 0.01: 0.2 / 0.3 = 0.667 (the larger ratio 1.5 at 0.02 does not decide)
    assert f.holds is False and f.values["max_ratio"] == pytest.approx(1.5)


def test_agd_ratio_with_zero_dag_success():
    f = agd_vs_dag_finding([0.01, 0.02], [0.0, 0.1], [0.0, 0.0])
    # 0 / 0 undefined at 0.01, so the smallest defined eps is 0.02 with 0.1 / 0 = inf
    assert f.values["smallest_eps"] == 0.02 and math.isinf(f.values["ratio_at_smallest_eps"])
    assert f.holds is True and f.to_dict()["values"]["ratio"] == [None, None]  # JSON: non-finite -> null
    assert agd_vs_dag_finding([0.01], [0.0], [0.0]).holds is None


# -- 5. ensemble robustness ---------------------------------------------------------------------------


def test_ensemble_more_robust_than_every_member_at_the_eps_nearest_0_01():
    f = ensemble_robustness_finding("agd", [0.005, 0.012, 0.03], [0.9, 0.6, 0.1],
                                    {"q1": [0.8, 0.5, 0.2], "fp": [0.5, 0.1, 0.0]})
    # nearest 0.01 is 0.012: 0.6 / 0.5 = 1.2 vs q1, 0.6 / 0.1 = 6.0 vs fp
    assert f.values["eps_used"] == 0.012
    assert f.values["ratios"] == {"q1": pytest.approx(1.2), "fp": pytest.approx(6.0)}
    assert f.holds is True and "6.00x vs fp" in f.this_run
    assert math.isinf(f.values["ratios_per_eps"][0.03]["fp"])  # 0.1 / 0 at eps 0.03


def test_ensemble_not_more_robust_than_one_member():
    f = ensemble_robustness_finding("agd", [0.01], [0.4], {"q1": [0.5], "fp": [0.1]})
    # 0.4 / 0.5 = 0.8 < 1 vs q1
    assert f.values["ratios"]["q1"] == pytest.approx(0.8) and f.holds is False


def test_ensemble_equal_to_a_member_is_not_more_robust():
    f = ensemble_robustness_finding("agd", [0.01], [0.0], {"q1": [0.0]})
    assert f.values["ratios"]["q1"] is None and f.holds is False


def test_ensemble_robustness_not_measured_without_numbers():
    assert ensemble_robustness_finding("agd", [0.01], [None], {"q1": [0.5]}).holds is None


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
    f = Finding("k", "a | b", "paper\nnumber", "run", True)
    md = findings_markdown([f, Finding("j", "c", "d", "e", None)], "heading")
    assert md.splitlines() == [
        "heading",
        "",
        "| claim | paper | this run | holds? |",
        "| --- | --- | --- | --- |",
        "| a \\| b | paper number | run | holds |",
        "| c | d | e | not measured |",
    ]
