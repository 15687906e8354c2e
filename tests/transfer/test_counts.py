"""Counting of eq. 1, averages, symmetrization, figure normalization, seed statistics."""

from __future__ import annotations

import math

import numpy as np

from trendcli.stats import bootstrap_weights, wilson_interval
import pytest

from trendcli.errors import UsageError
from trendcli.transfer.counts import (
    averages,
    figure_normalization,
    group_stats,
    pair_counts,
    symmetrize,
    tm_bootstrap,
    tm_from_counts,
    transfer_counts,
)

NAN = float("nan")


def test_tm_counts_only_images_both_models_got_right():
    # 6 images, labels all 0 except the last (1).
    # clean: source right on 0,1,2,3,4 ; target right on 0,1,2,3,5  -> C = {0,1,2,3}, n_c = 4
    # adv:   source wrong on 0,1,2,4,5 -> N_g = |C & src wrong| = {0,1,2} = 3 (4 not in C)
    #        target wrong on 1,2,4     -> N_t = {1,2} = 2 ;  TM = 2/3
    labels = np.array([0, 0, 0, 0, 0, 1])
    src_clean = np.array([0, 0, 0, 0, 0, 0])
    tgt_clean = np.array([0, 0, 0, 0, 3, 1])
    src_adv = np.array([5, 5, 5, 0, 5, 0])
    tgt_adv = np.array([0, 7, 7, 0, 7, 1])
    c = transfer_counts(labels, src_clean, src_adv, tgt_clean, tgt_adv)
    assert (c.n_c, c.n_g, c.n_t) == (4, 3, 2)
    assert c.tm == pytest.approx(2 / 3)


def test_pair_counts_broadcasts_over_stacked_targets():
    # 4 images; source right on all clean, fooled on 0,1,2.
    # target A: clean right on all, adv wrong on 0,1 -> C=4, N_g=3, N_t=2
    # target B: clean wrong on 0,   adv wrong on 0,2 -> C=3 {1,2,3}, N_g=2 {1,2}, N_t=1 {2}
    src_clean = np.array([True, True, True, True])
    src_adv = np.array([False, False, False, True])
    tgt_clean = np.array([[True, True, True, True], [False, True, True, True]])
    tgt_adv = np.array([[False, False, True, True], [False, True, False, True]])
    c = pair_counts(src_clean, src_adv, tgt_clean, tgt_adv)
    assert c.n_c.tolist() == [4, 3]
    assert c.n_g.tolist() == [3, 2]
    assert c.n_t.tolist() == [2, 1]
    assert c.tm.tolist() == pytest.approx([2 / 3, 1 / 2])


def test_pair_counts_rejects_mismatched_lengths():
    with pytest.raises(UsageError, match="cover 3 images"):
        pair_counts(np.ones(4, bool), np.ones(3, bool), np.ones(4, bool), np.ones(4, bool))


def test_zero_generated_is_undefined_not_zero_or_one():
    # source never fooled on C -> N_g = 0 -> TM undefined
    c = transfer_counts(np.zeros(3, int), np.zeros(3, int), np.zeros(3, int), np.zeros(3, int), np.ones(3, int))
    assert (c.n_g, c.n_t) == (0, 0)
    assert math.isnan(c.tm)


def test_target_wrong_on_everything_gives_empty_c_and_undefined_tm():
    # target misclassifies every clean image -> C empty -> N_g = 0 -> undefined
    c = transfer_counts(np.zeros(4, int), np.zeros(4, int), np.ones(4, int), np.ones(4, int), np.ones(4, int))
    assert (c.n_c, c.n_g, c.n_t) == (0, 0, 0)
    assert math.isnan(c.tm)


def test_tm_matrix_diagonal_is_one_and_asymmetry_is_kept():
    # n_g / n_t: a->b 3/4 , b->a 1/4 ; a->a 5/5 ; b->b 0/0 (never fooled: undefined)
    n_g = np.array([[5, 4], [4, 0]])
    n_t = np.array([[5, 3], [1, 0]])
    tm = tm_from_counts(n_g, n_t)
    assert tm[0, 0] == 1.0
    assert math.isnan(tm[1, 1])
    assert tm[0, 1] == 0.75 and tm[1, 0] == 0.25  # asymmetric, kept as is


def test_averages_skip_diagonal_and_undefined_by_default():
    tm = np.array(
        [
            [1.0, 0.2, 0.4],
            [0.6, 1.0, NAN],
            [0.3, 0.5, 1.0],
        ]
    )
    rows, cols = averages(tm)
    # rows: (0.2+0.4)/2 = 0.3 ; 0.6 (NaN skipped) ; (0.3+0.5)/2 = 0.4
    assert rows.tolist() == pytest.approx([0.3, 0.6, 0.4])
    # cols: (0.6+0.3)/2 = 0.45 ; (0.2+0.5)/2 = 0.35 ; 0.4 (NaN skipped)
    assert cols.tolist() == pytest.approx([0.45, 0.35, 0.4])
    rows_d, cols_d = averages(tm, include_diagonal=True)
    # row 0 with its diagonal: (1 + 0.2 + 0.4)/3 = 0.5333
    assert rows_d[0] == pytest.approx(1.6 / 3)
    # col 2 with diagonal: (0.4 + 1.0)/2 = 0.7
    assert cols_d[2] == pytest.approx(0.7)


def test_average_of_all_undefined_row_is_undefined():
    tm = np.array([[1.0, NAN], [0.5, 1.0]])
    rows, cols = averages(tm)
    assert math.isnan(rows[0]) and rows[1] == 0.5
    assert cols[0] == 0.5 and math.isnan(cols[1])


def test_symmetrize_keeps_nan():
    tm = np.array([[1.0, 0.2, NAN], [0.6, 1.0, 0.1], [0.3, 0.5, 1.0]])
    sym = symmetrize(tm)
    assert sym[0, 1] == sym[1, 0] == pytest.approx(0.4)  # (0.2 + 0.6)/2
    assert sym[1, 2] == pytest.approx(0.3)  # (0.1 + 0.5)/2
    assert math.isnan(sym[0, 2]) and math.isnan(sym[2, 0])
    with pytest.raises(UsageError):
        symmetrize(np.ones((2, 3)))


def test_figure_normalization_per_model_divides_by_self_count():
    # N_t(s->s) = 10 for a, 4 for b; a->b 5 -> 0.5; b->a 3 -> 0.75
    n_t = np.array([[10, 5], [3, 4]])
    f = figure_normalization(n_t)
    np.testing.assert_allclose(f, [[1.0, 0.5], [0.75, 1.0]])
    assert math.isnan(figure_normalization(np.array([[0, 2], [1, 3]]))[0, 1])


def test_figure_normalization_seed_means():
    # groups: fp = {0, 1} (two seeds), q1 = {2}
    # self counts: 10, 6, 8 -> fp mean 8, q1 mean 8
    # fp->fp (s != t): n_t[0,1] = 4, n_t[1,0] = 2 -> mean 3 -> 3/8
    # fp->q1: n_t[0,2] = 1, n_t[1,2] = 3 -> mean 2 -> 2/8 ; q1->fp: (6 + 2)/2 = 4 -> 4/8 ; q1->q1: self 8/8
    n_t = np.array([[10, 4, 1], [2, 6, 3], [6, 2, 8]])
    f = figure_normalization(n_t, ["fp", "fp", "q1"])
    np.testing.assert_allclose(f, [[3 / 8, 2 / 8], [4 / 8, 1.0]])


def test_group_stats_seed_grouping_on_a_toy():
    # 3 seeds of "fp" (0,1,2) and 2 seeds of "q1" (3,4)
    n_g = np.array(
        [
            [90, 80, 82, 70, 71],
            [78, 95, 84, 72, 73],
            [86, 88, 91, 74, 75],
            [60, 61, 62, 50, 52],
            [63, 64, 65, 54, 55],
        ]
    )
    n_t = n_g // 2
    tm = tm_from_counts(n_g, n_t)
    st = group_stats(n_g, n_t, tm, ["fp", "fp", "fp", "q1", "q1"])
    assert st.groups == ["fp", "q1"]
    assert st.members == [[0, 1, 2], [3, 4]]
    # fp->fp: the 6 off-diagonal pairs 80, 82, 78, 84, 86, 88 -> mean 83, sample std
    fp_fp = np.array([80, 82, 78, 84, 86, 88])
    assert st.pairs[0, 0] == 6
    assert st.n_g_mean[0, 0] == pytest.approx(83.0)
    # the authors' std divides by the number of pairs: deviations -3 -1 -5 1 3 5 -> sqrt(70 / 6)
    assert st.ddof == 0
    assert st.n_g_std[0, 0] == pytest.approx(math.sqrt(70 / 6))
    assert st.n_t_mean[0, 0] == pytest.approx((fp_fp // 2).mean())
    # q1->q1: 52 and 54 -> mean 53 ; population std sqrt((1 + 1) / 2) = 1, sample std sqrt(2)
    assert st.pairs[1, 1] == 2
    assert st.n_g_mean[1, 1] == pytest.approx(53.0)
    assert st.n_g_std[1, 1] == pytest.approx(1.0)
    sample = group_stats(n_g, n_t, tm, ["fp", "fp", "fp", "q1", "q1"], ddof=1)
    assert sample.n_g_std[0, 0] == pytest.approx(math.sqrt(70 / 5))
    assert sample.n_g_std[1, 1] == pytest.approx(math.sqrt(2))
    # pooled TM of q1->q1: (26 + 27) / (52 + 54), Wilson interval of 53 of 106
    assert st.tm_pooled[1, 1] == pytest.approx(53 / 106)
    assert st.tm_interval[1, 1].tolist() == pytest.approx(list(wilson_interval(53, 106)))
    # fp->q1: every fp source against every q1 target, 6 pairs: 70..75 -> mean 72.5
    assert st.pairs[0, 1] == 6
    assert st.n_g_mean[0, 1] == pytest.approx(72.5)
    # tm of fp->fp pairs: (n_g//2)/n_g each
    assert st.tm_mean[0, 0] == pytest.approx(np.mean((fp_fp // 2) / fp_fp))


def test_group_stats_single_member_group_uses_self_pair_and_skips_nan():
    n_g = np.array([[4, 0], [2, 3]])
    n_t = np.array([[4, 0], [1, 3]])
    tm = tm_from_counts(n_g, n_t)  # tm[0,1] undefined
    st = group_stats(n_g, n_t, tm, ["a", "b"])
    assert st.pairs.tolist() == [[1, 1], [1, 1]]
    assert st.tm_mean[0, 0] == 1.0
    assert math.isnan(st.tm_mean[0, 1])
    assert st.n_g_std[0, 0] == 0.0  # one pair: population std 0
    assert math.isnan(group_stats(n_g, n_t, tm, ["a", "b"], ddof=1).n_g_std[0, 0])  # no sample std
    with pytest.raises(UsageError, match="ddof"):
        group_stats(n_g, n_t, tm, ["a", "b"], ddof=2)
    with pytest.raises(UsageError, match="3 group keys for 2 models"):
        group_stats(n_g, n_t, tm, ["a", "b", "c"])


def test_tm_bootstrap_with_unit_weights_is_the_matrix():
    # 2 models, 4 images. clean_ok, and adv_ok[s, t] = t correct on s's adversarial images.
    clean = np.array([[1, 1, 1, 0], [1, 1, 0, 1]], bool)
    adv = np.array([
        [[0, 0, 1, 0], [0, 1, 1, 1]],   # source 0 fools itself on 0, 1 (and 3, not clean); 1 survives on 1
        [[1, 0, 1, 1], [1, 0, 1, 0]],   # source 1 fools itself on 1, 3
    ], bool)
    reps = tm_bootstrap(clean, adv, np.ones((1, 4)))
    # 0->1: C = {0, 1}, generated = {0, 1}, transferred = {0} -> 1/2; 1->0: C = {0, 1}, generated {1}, transferred {1} -> 1
    assert reps[0, 0, 1] == pytest.approx(0.5)
    assert reps[0, 1, 0] == pytest.approx(1.0)
    # weight 2 on image 0, 0 on image 1: 0->1 transferred 2 of 2
    assert tm_bootstrap(clean, adv, np.array([[2, 0, 1, 1]]))[0, 0, 1] == pytest.approx(1.0)
    assert bootstrap_weights(4, 3, seed=1).sum(1).tolist() == [4, 4, 4]
