"""TREND design: lowest mean pairwise TM_sym, exhaustive and greedy search."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trendcli.ensemble.selection import design, design_order, score_subset
from trendcli.errors import UsageError

NAMES = ["a", "b", "c", "d", "e"]


def sym(pairs: dict[tuple[str, str], float], names=NAMES, default=0.9) -> np.ndarray:
    n = len(names)
    m = np.full((n, n), default)
    np.fill_diagonal(m, 1.0)
    for (x, y), v in pairs.items():
        i, j = names.index(x), names.index(y)
        m[i, j] = m[j, i] = v
    return m


# (a, b) is the single most diverse pair, but both transfer well to everyone else: a greedy that
# starts from the best pair lands on {a, b, *} with score (0 + 0.9 + 0.9) / 3 = 0.6, while
# {b, d, e} scores (0.1 + 0.2 + 0.3) / 3 = 0.2, the true optimum.
TOY = sym({("a", "b"): 0.0, ("b", "d"): 0.1, ("b", "e"): 0.2, ("d", "e"): 0.3, ("c", "d"): 0.5})


def test_score_is_mean_pairwise_tm_sym():
    # {b, d, e}: (0.1 + 0.2 + 0.3) / 3 = 0.2 ; {a, b, c}: (0.0 + 0.9 + 0.9) / 3 = 0.6
    assert score_subset(TOY, [1, 3, 4]) == pytest.approx(0.2)
    assert score_subset(TOY, [0, 1, 2]) == pytest.approx(0.6)


def test_exhaustive_finds_the_known_best_subset():
    result = design(TOY, NAMES, 3, method="exhaustive")
    assert result.method == "exhaustive"
    assert set(result.best.members) == {"b", "d", "e"}
    assert result.best.score == pytest.approx(0.2)
    assert result.subsets_total == result.subsets_scored == 10  # C(5, 3)
    scores = [c.score for c in result.candidates]
    assert scores == sorted(scores) and len(scores) == 5


def test_greedy_agrees_with_exhaustive_on_the_toy():
    ex = design(TOY, NAMES, 3, method="exhaustive")
    gr = design(TOY, NAMES, 3, method="greedy")
    assert gr.method == "greedy"
    assert set(gr.best.members) == set(ex.best.members)
    assert gr.best.score == pytest.approx(ex.best.score)


def test_greedy_finds_a_planted_subset_among_many():
    # 14 models, background TM_sym in [0.5, 1]; planted 5 with pairwise values in [0.1, 0.2]:
    # any set containing a background model has a pair >= 0.5, so the planted set is optimal.
    rng = np.random.default_rng(3)
    n, planted = 14, [1, 4, 7, 9, 12]
    m = rng.uniform(0.5, 1.0, (n, n))
    m = (m + m.T) / 2
    for i in planted:
        for j in planted:
            if i != j:
                m[i, j] = m[j, i] = 0.1 + 0.1 * ((i * j) % 7) / 7
    names = [f"m{i}" for i in range(n)]
    gr = design(m, names, 5, method="auto", exhaustive_limit=100)  # C(14, 5) = 2002 > 100
    ex = design(m, names, 5, method="exhaustive")
    assert gr.method == "greedy" and gr.subsets_scored < 2002
    assert sorted(gr.best.indices) == planted == sorted(ex.best.indices)
    assert gr.best.score == pytest.approx(ex.best.score)


def test_require_forces_members_and_candidates_restrict_the_pool():
    # a required: best is a with its two least-transferable partners: {a, b, ?}. Pairs with a are
    # 0.0 (b), 0.9 otherwise; {a, b, d}: (0 + 0.9 + 0.1) / 3 = 0.333 beats {a, b, e}: (0 + 0.9 + 0.2) / 3
    result = design(TOY, NAMES, 3, require=["a"])
    assert set(result.best.members) == {"a", "b", "d"}
    assert result.best.members[0] == "a"  # required members lead the design order
    assert all("a" in c.members for c in result.candidates)
    # without d in the pool: {b, c, e}: (0.9 + 0.2 + 0.9) / 3 = 0.667 vs {a, b, e}: (0 + 0.2 + 0.9) / 3 = 0.367
    result = design(TOY, NAMES, 3, candidates=["a", "b", "c", "e"])
    assert set(result.best.members) == {"a", "b", "e"}
    assert result.pool == ["a", "b", "c", "e"]


def test_nan_pairs_are_worst_by_default_and_skippable():
    m = TOY.copy()
    m[1, 3] = m[3, 1] = np.nan  # (b, d) undefined
    worst = design(m, NAMES, 3)
    # "worst": {b, d, e} = (1.0 + 0.2 + 0.3) / 3 = 0.5 loses to {a, b, e} = (0 + 0.2 + 0.9) / 3 = 0.367
    assert set(worst.best.members) == {"a", "b", "e"}
    skip = design(m, NAMES, 3, nan_policy="skip")
    # {b, d, e} under "skip": (0.2 + 0.3) / 2 = 0.25, one undefined pair
    assert set(skip.best.members) == {"b", "d", "e"}
    assert skip.best.score == pytest.approx(0.25) and skip.best.undefined_pairs == 1


def test_all_undefined_set_ranks_last_under_skip():
    m = np.full((3, 3), np.nan)
    result = design(m, ["x", "y", "z"], 2, nan_policy="skip")
    assert all(math.isnan(c.score) for c in result.candidates)
    assert [c.undefined_pairs for c in result.candidates] == [1, 1, 1]


def test_equal_scores_prefer_higher_clean_accuracy():
    m = sym({}, names=["p", "q", "r"], default=0.5)  # every pair 0.5
    acc = {"p": 0.8, "q": 0.9, "r": 0.95}
    result = design(m, ["p", "q", "r"], 2, clean_accuracy=acc)
    assert set(result.best.members) == {"q", "r"}
    assert result.best.mean_clean_accuracy == pytest.approx(0.925)


def test_design_order_puts_the_most_diverse_pair_first():
    # within {b, d, e}: lowest pair (b, d) = 0.1 first, then e
    assert design_order(TOY, (1, 3, 4), [], "worst") == (1, 3, 4)
    assert design_order(TOY, (1, 3, 4), [4], "worst") == (4, 1, 3)  # e required; b-e 0.2 < d-e 0.3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"size": 6}, "more than the 5"),
        ({"size": 1}, "at least 2"),
        ({"size": 3, "require": ["zz"]}, "not in the matrix"),
        ({"size": 2, "require": ["a", "b", "c"]}, "do not fit"),
        ({"size": 3, "nan_policy": "zero"}, "NaN policy"),
    ],
)
def test_bad_arguments_are_usage_errors(kwargs, message):
    with pytest.raises(UsageError, match=message):
        design(TOY, NAMES, **kwargs)


# -- from a saved matrix, and the CLI ---------------------------------------------------------

# N_t (rows source, columns target) with N_g = 100 everywhere, so TM = N_t / 100:
#   TM_sym(a,b) = (5 + 15) / 200 = 0.10, (a,c) = 0.50, (a,d) = 0.80, (b,c) = 0.15, (b,d) = 0.70, (c,d) = 0.90
#   {a,b,c} = (0.10 + 0.50 + 0.15) / 3 = 0.25 is the best triple ({b,c,d} = 0.583, {a,b,d} = 0.533)
N_T = [[100, 5, 60, 80], [15, 100, 20, 70], [40, 10, 100, 90], [80, 70, 90, 100]]


@pytest.fixture(scope="module")
def matrix_file(tmp_path_factory):
    import torch

    from trendcli.transfer.matrix import TransferMatrix
    from trendcli.zoo.spec import ModelSpec
    from trendcli.zoo.files import build_model, save_model

    root = tmp_path_factory.mktemp("design")
    spec = ModelSpec(arch="smallcnn", dataset="fashion_mnist", in_channels=1, image_size=28, num_classes=10, mean=(0.5,), std=(0.5,))
    dirs = []
    for i, name in enumerate("abcd"):
        torch.manual_seed(i)
        dirs.append(str(save_model(build_model(spec), root / "models" / name, {"id": name})))
    tmx = TransferMatrix(
        names=list("abcd"), model_dirs=dirs, n_c=np.full((4, 4), 200), n_g=np.full((4, 4), 100), n_t=np.array(N_T),
        clean_accuracy={"a": 0.9, "b": 0.8, "c": 0.85, "d": float("nan")},
    )
    return tmx.save(root / "matrix.json")


def test_design_from_matrix_symmetrizes_and_carries_dirs(matrix_file):
    from trendcli.ensemble.selection import design_from_matrix, ensemble_from_design

    result = design_from_matrix(matrix_file, 3)
    assert result.best.members == ("a", "b", "c")  # design order: pair (a, b) first, then c
    assert result.best.score == pytest.approx(0.25)
    assert result.best.mean_clean_accuracy == pytest.approx(0.85)
    assert result.candidates[1].mean_clean_accuracy is None  # {a, b, d}: d's accuracy is undefined
    ens = ensemble_from_design(result, tie_break="paper", seed=4)
    assert ens.ids == ["a", "b", "c"] and ens.tie_break == "paper" and ens.seed == 4
    assert ens.design["score"] == pytest.approx(0.25) and ens.design["matrix"] == str(matrix_file)


def test_design_command_writes_the_ensemble(matrix_file, tmp_path, capsys):
    import json

    from trendcli.cli import main
    from trendcli.ensemble.members import Ensemble

    out = tmp_path / "e.json"
    with pytest.raises(SystemExit) as exit_:
        main(["design", "--matrix", str(matrix_file), "--size", "3", "--require", "d", "--out", str(out), "--json"])
    assert exit_.value.code == 0
    printed = json.loads(capsys.readouterr().out)
    # d required: {a,b,d} = 0.533 < {b,c,d} = 0.583 < {a,c,d} = 0.733
    assert [c["members"] for c in printed["candidates"]] == [["d", "b", "a"], ["d", "b", "c"], ["d", "a", "c"]]
    assert printed["out"] == str(out)
    ens = Ensemble.load(out)
    assert ens.ids == ["d", "b", "a"]

    with pytest.raises(SystemExit) as exit_:
        main(["design", "--matrix", str(matrix_file), "--size", "2", "--candidates", "b,c,d"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "0.1500" in text and "TREND candidates" in text  # best pair in the pool: (b, c)

    with pytest.raises(SystemExit) as exit_:
        main(["design", "--matrix", str(matrix_file), "--size", "9"])
    assert exit_.value.code == 1
    assert "more than the 4 candidate models" in capsys.readouterr().err


def test_all_members_required_is_the_only_candidate():
    # {a, c, d}: (TM_sym(a,c) 0.9 + (a,d) 0.9 + (c,d) 0.5) / 3 = 0.7667
    for method in ("exhaustive", "greedy"):
        result = design(TOY, NAMES, 3, require=["a", "c", "d"], method=method)
        assert [set(c.members) for c in result.candidates] == [{"a", "c", "d"}]
        assert result.best.score == pytest.approx(2.3 / 3)


def test_run_design_writes_the_best_ensemble_with_its_ranked_candidates(matrix_file, tmp_path):
    from trendcli.ensemble.members import Ensemble
    from trendcli.ensemble.selection import run_design

    run = run_design(matrix_file, 3, tmp_path / "ens" / "e.json", tie_break="confidence")
    assert run.ensemble == tmp_path / "ens" / "e.json"
    ens = Ensemble.load(run.ensemble)
    # {a,b,c} = 0.25 best, then {a,b,d} = (0.10 + 0.80 + 0.70) / 3 = 0.533
    assert ens.ids == ["a", "b", "c"] and ens.tie_break == "confidence"
    recorded = ens.design["candidates"]
    assert [c["members"] for c in recorded] == [list(c.members) for c in run.result.candidates]
    assert recorded[0]["score"] == pytest.approx(0.25) and recorded[1]["score"] == pytest.approx(1.6 / 3)
    assert run_design(matrix_file, 3).ensemble is None  # no out: rank only, nothing written
