"""--force replaces a finished artifact trendcli wrote (and only then): the other side of the
refusals in cases.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .conftest import trend


def test_train_force_replaces_a_finished_model(zoo, tmp_path):
    model = Path(shutil.copytree(zoo.m1, tmp_path / "m"))
    before = json.loads((model / "model.json").read_text())["weights_sha256"]
    result = trend("train", "--epochs", "1", "--limit-train", "64", "--seed", "7", "--device", "cpu", "--force", "--out", model)
    assert result.code == 0, result.err
    card = json.loads((model / "model.json").read_text())
    assert card["weights_sha256"] != before and card["train"]["seed"] == 7
    assert sorted(p.name for p in model.iterdir()) == ["model.json", "model.safetensors", "train_log.jsonl"]


def test_design_force_replaces_a_finished_ensemble(zoo, tmp_path):
    out = tmp_path / "e.json"
    assert trend("design", "--matrix", zoo.matrix, "--size", "2", "--out", out).code == 0
    assert trend("design", "--matrix", zoo.matrix, "--size", "2", "--out", out).code == 1
    result = trend("design", "--matrix", zoo.matrix, "--size", "2", "--tie-break", "confidence", "--force", "--out", out)
    assert result.code == 0, result.err
    assert json.loads(out.read_text())["tie_break"] == "confidence"


def test_export_force_replaces_a_finished_onnx_and_its_check(zoo, tmp_path):
    out = Path(shutil.copy(zoo.onnx, tmp_path / "e.onnx"))
    shutil.copy(zoo.root / "ens.infer.json", tmp_path / "e.infer.json")
    result = trend("export-ensemble", "--ensemble", zoo.ensemble, "--out", out, "--infer-limit", "8", "--force")
    assert result.code == 0, result.err
    assert json.loads((tmp_path / "e.infer.json").read_text())["n"] == 8


def test_matrix_rerun_extends_its_own_files(zoo, tmp_path):
    for name in ("pgd.json", "pgd.csv", "pgd.pairs.csv", "pgd.png"):
        shutil.copy(zoo.root / "mx" / name, tmp_path / name)
    result = trend("matrix", "--model", zoo.m1, "--model", zoo.m2, "--limit", "32", "--steps", "1", "--eps", "0.1",
                   "--layout", "contiguous", "--device", "cpu", "--store", zoo.store, "--out", tmp_path / "pgd")
    assert result.code == 0, result.err
    assert "cache hit end to end" in result.out


def test_a_finished_study_run_twice_leaves_its_files_alone(zoo, tmp_path):
    run = Path(shutil.copytree(zoo.run, tmp_path / "run"))
    assert trend("run", zoo.study, "--run-dir", run).code == 0  # records the new run directory's paths
    stamps = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    result = trend("run", zoo.study, "--run-dir", run)
    assert result.code == 0, result.err
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()} == stamps
