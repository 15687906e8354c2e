"""One implementation per stage: a run made with plain `trend` commands and the same run made with
`trend run STUDY.toml` write the same files with the same contents, and their reports show the
same sections. Three smallcnn models, 256 training images, one epoch, FGSM on 64 images."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from trendcli.study import load_study

from .conftest import needs_fmnist

STUDY = """
[study]
name = "parity"
dataset = "fashion-mnist"
device = "cpu"
cpus_per_task = 1

[train]
epochs = 1
limit_train = 256
batch_size = 64

[zoo]
arch = "smallcnn"
input_quant = ["fp", "q1", "q2"]

[[attacks]]
name = "fgsm"
method = "fgsm"
eps = 0.1

[[matrices]]
name = "fgsm"
attack = "fgsm"
limit = 64
batch_size = 32
group_by = ["arch"]

[[ensembles]]
name = "pair"
matrix = "fgsm"
size = 2

[[exports]]
name = "pair"
ensemble = "pair"
infer_limit = 100
"""

#: The study's own bookkeeping (task markers, the study record); plain commands have no study.
STUDY_ONLY = ("study.json", "last_run.json", "tasks/")
#: Values that differ between any two runs: clocks and speeds.
VOLATILE = {"created", "finished", "generated", "seconds", "attack_seconds", "eval_seconds", "images_per_s", "latency_ms"}
#: What the report takes from study.json alone (trendcli.report.runs.Run.dataset): "?" without a study.
STUDY_RECORD: dict[str, set[str]] = {}


def _cli(argv: list[str]) -> None:
    from trendcli.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0, argv


def _train_flags(config: dict) -> list[str]:
    flags = []
    for key, value in config.items():
        flags += [f"--{key.replace('_', '-')}", str(value)]
    return flags


def _plain_commands(run: Path, study) -> None:
    """The study's stages, one `trend` command each, writing where the study writes."""
    (atk,), (mx,), (ens,), (ex,) = study.attacks, study.matrices, study.ensembles, study.exports
    common = ["--device", "cpu", "--store", str(run / "adv")]
    dirs = [str(run / "models" / m.name) for m in study.models]
    for m, d in zip(study.models, dirs):
        _cli(["train", "--out", d, "--device", "cpu", "--dataset", study.dataset, *_train_flags(m.config)])
    sets = ["--eps", str(atk.params["eps"]), "--limit", str(mx.limit), "--batch-size", str(mx.batch_size), *common]
    for d in dirs:
        _cli(["attack", "--model", d, "--method", atk.method, *sets])
    models = [flag for d in dirs for flag in ("--model", d)]
    _cli(["matrix", *models, "--attack", atk.method, *sets, "--group-by", ",".join(mx.group_by),
          "--out", str(run / "matrices" / mx.name)])
    _cli(["design", "--matrix", str(run / "matrices" / f"{mx.name}.json"), "--size", str(ens.size),
          "--out", str(run / "ensembles" / f"{ens.name}.json")])
    _cli(["export-ensemble", "--ensemble", str(run / "ensembles" / f"{ens.name}.json"),
          "--out", str(run / "exports" / f"{ex.name}.onnx"), "--infer-limit", str(ex.infer_limit)])
    _cli(["report", str(run)])


def _files(run: Path) -> list[str]:
    names = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())
    return [n for n in names if not n.startswith(STUDY_ONLY)]


def _clean(value, run: Path):
    """``value`` with volatile keys dropped and the run directory written as <RUN>."""
    if isinstance(value, dict):
        return {k: _clean(v, run) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_clean(v, run) for v in value]
    if isinstance(value, str):
        return value.replace(str(run), "<RUN>")
    return value


def _contents(run: Path, name: str):
    path = run / name
    if path.suffix == ".json":
        data = _clean(json.loads(path.read_text()), run)
        return {k: v for k, v in data.items() if k not in STUDY_RECORD.get(name, ())} if isinstance(data, dict) else data
    if path.suffix == ".jsonl":
        return [_clean(json.loads(line), run) for line in path.read_text().splitlines()]
    if path.suffix == ".onnx":
        from trendcli.deploy.runtime import read_metadata

        return _clean(read_metadata(path), run)
    if path.suffix == ".csv":
        return path.read_text()
    return None  # images, weights and adversarial sets: named by content or checked through the JSON


def _headings(run: Path) -> list[str]:
    return re.findall(r"<h[23]>(.*?)</h[23]>", (run / "report" / "index.html").read_text())


@pytest.mark.slow
@needs_fmnist
def test_plain_commands_and_a_study_write_the_same_run(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the study's cpus_per_task, for both runs: the same float reductions
    try:
        by_study, by_cli = tmp_path / "study" / "parity", tmp_path / "cli" / "parity"
        study_file = tmp_path / "parity.toml"
        study_file.write_text(STUDY)
        _cli(["run", str(study_file), "--run-dir", str(by_study)])
        _plain_commands(by_cli, load_study(study_file, run_dir=by_cli))
    finally:
        torch.set_num_threads(threads)

    files = _files(by_study)
    assert files == _files(by_cli)
    # every stage's files are there, the export's dataset check among them
    for name in ("matrices/fgsm.json", "matrices/fgsm.csv", "matrices/fgsm.png", "matrices/fgsm.groups.csv",
                 "matrices/fgsm.groups.png", "ensembles/pair.json", "exports/pair.onnx", "exports/pair.infer.json",
                 "report/index.html"):
        assert name in files, name
    differ = [n for n in files if _contents(by_study, n) != _contents(by_cli, n)]
    assert differ == []
    headings = _headings(by_study)
    assert "Export" in headings and "Transferability" in headings
    assert headings == _headings(by_cli)
