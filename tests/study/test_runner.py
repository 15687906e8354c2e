"""Running a tiny study end to end: skipping, interruption and resume, local vs Ray parity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trendcli.progress import NullProgress
from trendcli.study import load_study, run_study

from ..conftest import needs_fmnist, needs_loopback_only_network

TINY = """
[study]
name = "tiny"
dataset = "fashion-mnist"
cpus_per_task = 1
layout = "contiguous"

[train]
epochs = 1
limit_train = 384
batch_size = 64

[zoo]
arch = "smallcnn"
input_quant = ["fp", "q1", "ht"]

[[attacks]]
name = "pgd"
method = "pgd"
eps = 0.1
steps = 4

[[matrices]]
name = "pgd"
attack = "pgd"
limit = 48

[[ensembles]]
name = "pair"
matrix = "pgd"
size = 2

[[evaluations]]
name = "pair"
ensemble = "pair"
attacks = ["agd", "dag"]
eps = [0.1]
limit = 48
steps = 4

[[exports]]
name = "pair"
ensemble = "pair"
infer_limit = 200
"""


class _InterruptAt(NullProgress):
    """Raises KeyboardInterrupt when the runner announces a task of ``stage``."""

    def __init__(self, stage: str):
        self.stage = stage

    def log(self, message: str) -> None:
        if message.startswith(f"[{self.stage}]"):
            raise KeyboardInterrupt


def _study(tmp_path: Path, name: str):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return load_study(path, run_dir=tmp_path / name)


def _results(run_dir: Path) -> dict:
    """What must agree between executors: weights, TM, ensemble, evaluation and inference numbers."""
    models = {p.parent.name: json.loads(p.read_text())["weights_sha256"] for p in sorted(run_dir.glob("models/*/model.json"))}
    matrix = json.loads((run_dir / "matrices" / "pgd.json").read_text())
    ensemble = json.loads((run_dir / "ensembles" / "pair.json").read_text())
    evaluation = json.loads((run_dir / "evaluations" / "pair" / "evaluation.json").read_text())
    infer = json.loads((run_dir / "exports" / "pair.infer.json").read_text())
    return {
        "models": models,
        "tm": matrix["tm"],
        "members": [m["weights_sha256"] for m in ensemble["members"]],
        "table": evaluation["table"],
        "accuracy": infer["accuracy"],
    }


@needs_fmnist
@pytest.mark.slow
def test_run_skip_interrupt_resume(tmp_path):
    study = _study(tmp_path, "local")
    with pytest.raises(KeyboardInterrupt):
        run_study(study, progress=_InterruptAt("design"))
    # train, attack, matrix finished before the interruption; design onwards did not
    first = run_study(study)
    assert all(not t.startswith(("train:", "attack:", "matrix:")) for t in first.ran), first.ran
    assert any(t.startswith("design:") for t in first.ran)
    assert first.report is not None and first.report.stat().st_size > 1000
    again = run_study(study)
    assert again.ran == [] and len(again.skipped) == len(first.skipped) + len(first.ran)
    dry = run_study(study, dry_run=True)
    assert [t for t in dry.tasks if t["status"] == "planned"] == []


@needs_fmnist
@pytest.mark.slow
def test_local_and_ray_executors_give_the_same_results(tmp_path):
    pytest.importorskip("ray")
    needs_loopback_only_network()
    local = run_study(_study(tmp_path, "local"))
    ray_run = run_study(_study(tmp_path, "ray"), executor="ray")
    assert len(ray_run.ran) == len(local.ran)
    assert _results(tmp_path / "local") == _results(tmp_path / "ray")
