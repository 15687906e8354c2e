"""A tiny finished run for the hostile-input campaign: two models, a matrix, an ensemble, an ONNX
export and a one-model study, built once per session in-process (about 30 s on 2 CPU cores)."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..conftest import FMNIST_DIR

STUDY = """
[study]
name = "hostile"
dataset = "fashion-mnist"
cpus_per_task = 1

[train]
epochs = 1
limit_train = 128
batch_size = 64

[zoo]
arch = "smallcnn"
input_quant = ["fp"]
"""


@dataclass
class Zoo:
    root: Path
    m1: Path
    m2: Path
    matrix: Path
    ensemble: Path
    onnx: Path
    study: Path
    store: Path
    run: Path


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("error: ")]


def trend(*argv: str) -> Result:
    """`trend ARGV` in-process: the exit code, stdout and stderr."""
    from trendcli.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main([str(a) for a in argv])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def zoo(tmp_path_factory) -> Zoo:
    if not (FMNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("Debian dataset-fashion-mnist not installed")
    from trendcli.deploy.export import run_export
    from trendcli.ensemble.selection import run_design
    from trendcli.transfer.matrix import run_matrix
    from trendcli.zoo.training import TrainConfig, train

    root = tmp_path_factory.mktemp("hostile")
    m1, m2 = root / "m1", root / "m2"
    train(TrainConfig(epochs=1, limit_train=128, batch_size=64, device="cpu"), m1)
    train(TrainConfig(epochs=1, limit_train=128, batch_size=64, device="cpu", input_quant="q2", seed=1), m2)
    store = root / "adv"
    run_matrix([m1, m2], root / "mx" / "pgd", "pgd", {"eps": 0.1, "steps": 1}, limit=32, device="cpu", store=store,
               layout="contiguous")
    ensemble = run_design(root / "mx" / "pgd.json", 2, root / "ens.json", tie_break="first").ensemble
    onnx = run_export(ensemble, root / "ens.onnx", infer_limit=32).path
    study = root / "study.toml"
    study.write_text(STUDY)
    from trendcli.study import load_study, run_study

    run_dir = run_study(load_study(study, run_dir=root / "run")).run_dir
    return Zoo(root, m1, m2, root / "mx" / "pgd.json", ensemble, onnx, study, store, run_dir)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TREND_PLUGINS", raising=False)
