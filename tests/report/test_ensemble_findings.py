"""The ensemble claims' rules on hand-made numbers (shared by `trend evaluate` and `trend report`)."""

from __future__ import annotations

import math

import pytest

from trendcli.report.ensemble_findings import (
    agd_vs_dag_finding,
    black_box_finding,
    ensemble_findings,
    ensemble_robustness_finding,
    strongest_attack,
    worst_case_finding,
)

# -- A-GD vs D-AG: every eps below 0.03 ---------------------------------------------------------------


def test_agd_beats_dag_at_every_small_eps():
    f = agd_vs_dag_finding([0.02, 0.01, 0.05], [0.5, 0.3, 0.9], [0.4, 0.2, 0.95], n=200)
    # eps < 0.03: 0.01: 0.3 / 0.2 = 1.5; 0.02: 0.5 / 0.4 = 1.25; 0.05 is not small (and A-GD behind there)
    assert [r["eps"] for r in f.values["by_eps"]] == [0.01, 0.02]
    assert f.values["ratio"] == [pytest.approx(1.5), pytest.approx(1.25), pytest.approx(0.9 / 0.95)]
    assert f.holds is True and "1.50x" in f.this_run and f.values["max_ratio"] == pytest.approx(1.5)
    # margin: min(0.3 - 0.2, 0.5 - 0.4) = 0.1
    assert f.result.effect == pytest.approx(0.1) and f.result.n == 200 and f.result.test == "point estimate"


def test_agd_ahead_at_the_smallest_eps_only_does_not_hold():
    f = agd_vs_dag_finding([0.005, 0.02], [0.4, 0.6], [0.3, 0.7])
    # ahead at 0.005 (0.4 > 0.3), behind at 0.02 (0.6 < 0.7): not at every small eps
    assert f.holds is False and f.verdict == "does not hold" and f.result.effect == pytest.approx(-0.1)


def test_agd_ratio_with_zero_dag_success_is_undefined():
    f = agd_vs_dag_finding([0.01, 0.02], [0.0, 0.1], [0.0, 0.0])
    # 0 / 0 and 0.1 / 0 are undefined (NaN, n/a); the comparison itself still decides: 0 > 0 is false
    assert all(math.isnan(r) for r in f.values["ratio"]) and "n/a" in f.this_run
    assert f.holds is False and f.to_dict()["values"]["ratio"] == [None, None]  # JSON: NaN -> null
    assert "max_ratio" not in f.values


def test_agd_not_measured_without_a_small_eps():
    assert agd_vs_dag_finding([0.05], [0.5], [0.4]).verdict == "not measured"
    assert agd_vs_dag_finding([0.01], [None], [0.4]).verdict == "not measured"


# -- the ensemble against its members: at the eps nearest 0.01 --------------------------------------


def test_ensemble_more_robust_than_every_member_at_the_eps_nearest_0_01():
    f = ensemble_robustness_finding("agd", [0.005, 0.012, 0.03], [0.9, 0.6, 0.1],
                                    {"q1": [0.8, 0.5, 0.2], "fp": [0.5, 0.1, 0.0]})
    # nearest 0.01 is 0.012: 0.6 / 0.5 = 1.2 vs q1, 0.6 / 0.1 = 6.0 vs fp; margin min(0.1, 0.5) = 0.1
    assert f.values["eps_used"] == 0.012
    assert f.values["ratios"] == {"q1": pytest.approx(1.2), "fp": pytest.approx(6.0)}
    assert f.holds is True and "6.00x vs fp" in f.this_run and f.result.effect == pytest.approx(0.1)
    at_003 = f.values["by_eps"][2]
    assert math.isnan(at_003["members"]["fp"]["ratio"])  # 0.1 / 0 at eps 0.03: undefined
    assert at_003["beats_all"] is False  # 0.1 < 0.2 vs q1: shown beside, does not decide


def test_ensemble_nearest_tie_takes_the_smaller_eps():
    # |0.25 - 0.5| = |0.75 - 0.5| exactly (binary fractions)
    f = ensemble_robustness_finding("agd", [0.75, 0.25], [0.1, 0.5], {"q1": [0.2, 0.4]}, paper_eps=0.5)
    assert f.values["eps_used"] == 0.25 and f.holds is True


def test_ensemble_not_more_robust_than_one_member():
    f = ensemble_robustness_finding("agd", [0.01], [0.4], {"q1": [0.5], "fp": [0.1]})
    # 0.4 / 0.5 = 0.8 < 1 vs q1
    assert f.values["ratios"]["q1"] == pytest.approx(0.8) and f.holds is False


def test_ensemble_equal_to_a_member_is_not_more_robust():
    f = ensemble_robustness_finding("agd", [0.01], [0.0], {"q1": [0.0]})
    assert math.isnan(f.values["ratios"]["q1"]) and f.holds is False and "n/a vs q1" in f.this_run


def test_ensemble_robustness_not_measured_without_numbers():
    assert ensemble_robustness_finding("agd", [0.01], [None], {"q1": [0.5]}).verdict == "not measured"


def test_worst_case_and_black_box_use_the_same_rule():
    w = worst_case_finding([0.01, 0.03], ["dag", "agd"], [0.2, 0.1], {"q1": [0.1, 0.3]})
    assert w.holds is True and w.values["attack"] == "dag"
    b = black_box_finding("outside", [0.01], [0.7], {"q1": [0.8], "fp": [0.5]})
    assert b.holds is False and b.values["attack"] == "pgd on outside"


def test_strongest_attack_skips_missing_numbers():
    adv = {"agd": {0.01: 0.3, 0.03: None}, "dag": {0.01: 0.6, 0.03: 0.05}}
    assert strongest_attack(adv, 0.01) == "agd" and strongest_attack(adv, 0.03) == "dag"
    assert strongest_attack(adv, 0.5) is None


def test_ensemble_findings_order_and_not_measured():
    found = ensemble_findings({"agd": {0.01: 0.3}}, {"fp": {0.01: 0.1}}, None, n=10)
    assert [f.key for f in found] == ["agd_vs_dag", "ensemble_robustness", "ensemble_robustness_worst_case",
                                      "ensemble_robustness_black_box"]
    assert [f.verdict for f in found] == ["not measured", "holds", "holds", "not measured"]


def test_an_eps_like_8_255_meets_its_json_key_so_the_paired_test_decides():
    """evaluation.json keys eps with %g ("0.0313725") but its sets hold the full float 8/255."""
    import numpy as np

    from trendcli.stats import mcnemar_exact

    e = 8 / 255
    ens_ok = np.array([True] * 12 + [False] * 8)  # the vote: 12 of 20 right
    fp_ok = np.array([True] * 2 + [False] * 18)  # the member: 2 of 20, every one of them also right in the vote
    outcomes = {"ensemble": {"square": {e: ens_ok}}, "member": {"fp": {e: fp_ok}},
                "transfer": {e: {"ensemble": ens_ok, "members": {"fp": fp_ok}}}}
    transfer = {float("0.0313725"): {"source": "s", "ensemble_accuracy": 0.6, "member_accuracy": {"fp": 0.1}}}
    found = ensemble_findings({"square": {float("0.0313725"): 0.6}}, {"fp": {float("0.0313725"): 0.1}}, transfer, n=20,
                              outcomes=outcomes, member_attack="square")
    worst, black_box = found[2], found[3]
    # 10 discordant images, all for the vote: two-sided exact McNemar p = 2 * 0.5^10
    assert mcnemar_exact(10, 0) == pytest.approx(2 * 0.5 ** 10)
    for f in (worst, black_box):
        assert f.verdict == "holds" and f.result.test.startswith("exact McNemar")
        assert f.result.p_value == pytest.approx(2 * 0.5 ** 10)
    assert "Square on each member" in worst.this_run
