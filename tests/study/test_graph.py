"""The task graph: order, keys, dependencies and skipping."""

from __future__ import annotations

import json

from trendcli.study import build_tasks, load_study
from trendcli.study.graph import is_done, marker_path

from .test_config import MINIMAL, write


def test_tasks_in_stage_order_with_dependencies(tmp_path):
    tasks = build_tasks(load_study(write(tmp_path, MINIMAL), run_dir=tmp_path / "run"))
    stages = [t.stage for t in tasks]
    assert stages == sorted(stages, key=["train", "attack", "matrix", "design", "evaluate", "export", "report"].index)
    ids = {t.id: t for t in tasks}
    assert len([t for t in tasks if t.stage == "train"]) == 5
    assert len([t for t in tasks if t.stage == "attack"]) == 5  # one set per model
    matrix = ids["matrix:pgd"]
    assert "train:w2" in matrix.deps and any(d.startswith("attack:pgd@w2") for d in matrix.deps)
    assert ids["design:trend2"].deps == ["matrix:pgd"]
    assert ids["evaluate:robust"].deps == ["design:trend2"]
    seen = set()
    for t in tasks:  # topological: every dependency comes first
        assert set(t.deps) <= seen, t.id
        seen.add(t.id)


def test_a_changed_setting_changes_that_task_and_everything_downstream(tmp_path):
    base = {t.id: t.key for t in build_tasks(load_study(write(tmp_path, MINIMAL)))}
    changed = {t.id: t.key for t in build_tasks(load_study(write(tmp_path, MINIMAL.replace("eps = 0.1\nsteps = 5", "eps = 0.2\nsteps = 5"))))}
    differ = {tid for tid in base if base[tid] != changed[tid]}
    assert all(not t.startswith("train:") for t in differ)
    assert {"matrix:pgd", "design:trend2", "evaluate:robust", "export:deploy", "report:report"} <= differ


def test_is_done_needs_matching_key_and_outputs(tmp_path):
    study = load_study(write(tmp_path, MINIMAL), run_dir=tmp_path / "run")
    task = next(t for t in build_tasks(study) if t.id == "design:trend2")
    run = tmp_path / "run"
    assert not is_done(run, task)
    marker = marker_path(run, task)
    marker.parent.mkdir(parents=True)
    marker.write_text(json.dumps({"key": task.key}))
    assert not is_done(run, task)  # output missing
    (run / "ensembles").mkdir()
    (run / "ensembles" / "trend2.json").write_text("{}")
    assert is_done(run, task)
    marker.write_text(json.dumps({"key": "other"}))
    assert not is_done(run, task)


def test_layout_is_an_argument_of_every_attacking_task_and_part_of_its_key(tmp_path):
    base = {t.id: t for t in build_tasks(load_study(write(tmp_path, MINIMAL)))}
    fixed = {t.id: t for t in build_tasks(load_study(write(tmp_path, MINIMAL.replace("[study]\n", '[study]\nlayout = "channels_last"\n', 1))))}
    attacking = [t for t in fixed.values() if t.stage in ("attack", "matrix")]
    assert attacking and all(t.args["layout"] == "channels_last" for t in attacking)
    assert all(t.args["layout"] == "auto" for t in base.values() if t.stage in ("attack", "matrix"))
    # the layout changes float rounding: the attacks and everything after them rerun, training does not
    differ = {tid for tid in base if base[tid].key != fixed[tid].key}
    assert {t.id for t in attacking} <= differ and "design:trend2" in differ
    assert not any(tid.startswith("train:") for tid in differ)
