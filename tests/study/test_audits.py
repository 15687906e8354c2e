"""[[audits]] in a study file: parsing, the task graph and its keys."""

from __future__ import annotations

import json

import pytest

from trendcli.errors import StudyError
from trendcli.study import build_tasks, load_study

from .test_config import MINIMAL, write

AUDIT = """
[[audits]]
name = "risk"
attack = "pgd"
target = "{target}"
limit = 32
"""


def _tasks(tmp_path, target):
    return {t.id: t for t in build_tasks(load_study(write(tmp_path, MINIMAL + AUDIT.format(target=target)),
                                                    run_dir=tmp_path / "run"))}


def test_an_audit_of_a_study_model_attacks_every_other_model(tmp_path):
    tasks = _tasks(tmp_path, "w2")
    audit = tasks["audit:risk"]
    trained = sorted(t for t in tasks if t.startswith("train:"))
    assert sorted(audit.deps) == trained  # the surrogates ("all" but the target) and the target
    assert audit.args["target"] == "models/w2" and "models/w2" not in audit.args["surrogates"]
    assert len(audit.args["surrogates"]) == len(trained) - 1 and audit.outputs == ["audits/risk.json"]
    assert audit.args["method"] == "pgd" and audit.args["params"] == {"eps": 0.1, "steps": 5}
    assert "audit:risk" in tasks["report:report"].deps


def test_an_outside_target_is_keyed_by_its_weights(tmp_path):
    member = tmp_path / "deployed"
    member.mkdir()
    (member / "model.json").write_text(json.dumps({"weights_sha256": "a" * 64}))
    first = _tasks(tmp_path, "deployed")["audit:risk"]
    assert first.args["target"] == str(member.resolve()) and first.args["target_sha256"] == "a" * 64
    (member / "model.json").write_text(json.dumps({"weights_sha256": "b" * 64}))
    assert _tasks(tmp_path, "deployed")["audit:risk"].key != first.key


def test_a_target_that_is_neither_a_model_nor_a_directory(tmp_path):
    with pytest.raises(StudyError, match=r"\[audits\]\.target: 'nowhere' is neither a model of the study .* `trend import`"):
        _tasks(tmp_path, "nowhere")
