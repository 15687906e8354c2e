"""The files of a matrix: names, CSV layout, group files, and nothing written on a bad group field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trendcli.errors import UsageError
from trendcli.transfer.matrix import TransferMatrix
from trendcli.transfer.outputs import matrix_paths, matrix_prefix, write_matrix_files


def _matrix() -> TransferMatrix:
    entries = [{"name": n, "id": n, "spec": {"arch": "smallcnn", "input_quant": q}, "train": {"seed": s}}
               for n, q, s in (("a", "fp", 0), ("b", "fp", 1), ("c", "q1", 0))]
    n_g = np.array([[4, 4, 4], [5, 5, 5], [2, 2, 2]])
    n_t = np.array([[4, 2, 1], [5, 5, 0], [2, 1, 2]])
    return TransferMatrix(names=["a", "b", "c"], model_dirs=[None] * 3, n_c=n_g + 1, n_g=n_g, n_t=n_t,
                          clean_accuracy={"a": 0.9, "b": 0.8, "c": 0.7}, models=entries,
                          attack={"method": "fgsm", "params": {"eps": 0.1}, "n_images": 8, "split": "test"})


def test_prefix_and_paths():
    assert matrix_prefix("runs/mx/pgd.json") == matrix_prefix("runs/mx/pgd") == Path("runs/mx/pgd")
    assert {k: p.name for k, p in matrix_paths("m/pgd.png").items()} == {"json": "pgd.json", "csv": "pgd.csv", "png": "pgd.png",
                                                                            "pairs_csv": "pgd.pairs.csv"}
    assert matrix_paths("m/pgd", ["input_quant"])["groups_csv"] == Path("m/pgd.groups.csv")


def test_write_matrix_files_with_groups(tmp_path):
    paths = write_matrix_files(_matrix(), tmp_path / "toy", group_by=["input_quant"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["toy.json", "toy.csv", "toy.pairs.csv", "toy.png", "toy.groups.csv", "toy.groups.stats.csv", "toy.groups.png"])
    assert paths == matrix_paths(tmp_path / "toy", ["input_quant"])
    data = json.loads(paths["json"].read_text())
    assert data["groups"]["fields"] == ["input_quant"] and data["groups"]["members"] == {"fp": ["a", "b"], "q1": ["c"]}
    # TM row a: a->b 2/4 = 0.5, a->c 1/4 = 0.25 -> average without the diagonal 0.375
    rows = paths["csv"].read_text().splitlines()
    assert rows[0] == "source \\ target,a,b,c,avg" and rows[1] == "a,1.0000,0.5000,0.2500,0.3750"
    # groups: fp->fp = mean(a->b 0.5, b->a 1.0) = 0.75; fp->q1 = mean(0.25, 0) = 0.125; q1->fp = mean(0.5, 1.0)
    # = 0.75; q1 has one model, so q1->q1 is c->c = 1
    groups = paths["groups_csv"].read_text().splitlines()
    assert groups[1:3] == ["fp,0.7500,0.1250,0.1250", "q1,0.7500,1.0000,0.7500"]


def test_unknown_group_field_writes_nothing(tmp_path):
    with pytest.raises(UsageError, match="unknown group_by field 'colour'"):
        write_matrix_files(_matrix(), tmp_path / "toy", group_by=["colour"])
    assert list(tmp_path.iterdir()) == []


def test_intervals_in_json_and_csv(tmp_path):
    from trendcli.stats import wilson_interval
    from trendcli.transfer.outputs import wide_intervals

    mx = _matrix()
    paths = write_matrix_files(mx, tmp_path / "toy", group_by=["input_quant"], wide_interval=0.5)
    data = json.loads(paths["json"].read_text())
    # a->b: N_t 2 of N_g 4
    assert data["tm_interval"][0][1] == pytest.approx(list(wilson_interval(2, 4)))
    # c->? row has N_g 0 somewhere -> null interval where undefined
    undefined = [(s, t) for s in range(3) for t in range(3) if mx.n_g[s, t] == 0]
    assert all(data["tm_interval"][s][t] == [None, None] for s, t in undefined)
    # clean accuracy 0.9 of 8 images -> round(7.2) = 7 of 8
    assert data["clean_accuracy_interval"]["a"]["k"] == 7 and data["clean_accuracy_interval"]["a"]["n"] == 8
    pairs = paths["pairs_csv"].read_text().splitlines()
    assert pairs[0] == "source,target,n_c,n_g,n_t,tm,tm_lo,tm_hi"
    lo, hi = wilson_interval(2, 4)
    assert pairs[2] == f"a,b,5,4,2,0.5000,{lo:.4f},{hi:.4f}"
    stats_rows = paths["groups_stats_csv"].read_text().splitlines()
    assert stats_rows[0] == "source_group,target_group,pairs,tm_mean,tm_std_ddof0,tm_pooled,tm_lo,tm_hi"
    assert data["groups"]["ddof"] == 0 and "number of pairs" in data["groups"]["std"]
    # every Wilson interval on 4 images is wider than 0.5; on 5 of 5 (b->a) as well
    width = np.array([[wilson_interval(int(t), int(g))[1] - wilson_interval(int(t), int(g))[0] if g else np.nan
                       for t, g in zip(rt, rg)] for rt, rg in zip(mx.n_t, mx.n_g)])
    np.testing.assert_array_equal(wide_intervals(mx, 0.5), np.nan_to_num(width, nan=0) > 0.5)
