"""Fault scenarios with real processes: SIGINT and SIGKILL during train, attack and run, then a
rerun that resumes and equals the uninterrupted result; two concurrent writers of one set."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..conftest import sigint_default

pytestmark = pytest.mark.slow

TREND = str(Path(sys.executable).parent / "trend")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
TRAIN = ["train", "--epochs", "2", "--limit-train", "256", "--batch-size", "64", "--device", "cpu"]


def _start(argv, cwd) -> subprocess.Popen:
    return subprocess.Popen([TREND, *map(str, argv)], cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=sigint_default)


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"finished before the signal: {proc.communicate()}"
        assert time.monotonic() < end, "timed out waiting for the process to reach the point of interruption"
        time.sleep(0.05)


def _interrupt(proc: subprocess.Popen, sig: int) -> tuple[int, str]:
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def _run(argv, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([TREND, *map(str, argv)], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)


def _weights(model_dir: Path) -> str:
    return json.loads((model_dir / "model.json").read_text())["weights_sha256"]


def _interrupted_line(err: str, argv: list) -> None:
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("train ", "attack "))]
    assert "Traceback" not in err
    assert lines and lines[-1].startswith("interrupted: "), err
    assert "trend " + " ".join(map(str, argv)) in lines[-1], lines[-1]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> str:
    cwd = tmp_path_factory.mktemp("straight")
    assert _run([*TRAIN, "--out", "m"], cwd).returncode == 0
    return _weights(cwd / "m")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_train_interrupted_after_an_epoch_resumes_to_the_same_weights(sig, uninterrupted, tmp_path):
    argv = [*TRAIN, "--out", "m"]
    proc = _start(argv, tmp_path)
    _wait_for(lambda: (tmp_path / ".m.resume" / "state.json").exists(), proc)
    code, err = _interrupt(proc, sig)
    assert not (tmp_path / "m").exists()
    if sig == signal.SIGINT:
        assert code == 130
        _interrupted_line(err, argv)
    else:
        assert code == -signal.SIGKILL
    rerun = _run(argv, tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert _weights(tmp_path / "m") == uninterrupted
    assert not (tmp_path / ".m.resume").exists()


def test_attack_sigint_says_what_was_kept_and_resumes(zoo, tmp_path):
    argv = ["attack", "--model", zoo.m1, "--limit", "2048", "--batch-size", "64", "--steps", "10", "--eps", "0.1",
            "--device", "cpu", "--layout", "contiguous", "--store", tmp_path / "adv"]
    proc = _start(argv, tmp_path)
    _wait_for(lambda: any((tmp_path / "adv").glob("*.h5")), proc)
    time.sleep(1.0)
    code, err = _interrupt(proc, signal.SIGINT)
    assert code == 130
    _interrupted_line(err, argv)
    first = _run([*argv, "--json"], tmp_path)
    assert first.returncode == 0, first.stderr
    straight = _run([*argv[:-1], tmp_path / "adv2", "--json"], tmp_path)
    assert straight.returncode == 0, straight.stderr
    a, b = json.loads(first.stdout), json.loads(straight.stdout)
    assert a["key"] == b["key"] and a["success_rate"] == b["success_rate"]


def test_run_sigint_during_training_resumes_to_the_same_study(zoo, tmp_path):
    argv = ["run", zoo.study, "--run-dir", tmp_path / "run"]
    proc = _start(argv, tmp_path)
    _wait_for(lambda: any((tmp_path / "run" / "models").glob(".*.resume/state.json")), proc)
    code, err = _interrupt(proc, signal.SIGINT)
    assert code == 130
    _interrupted_line(err, argv)
    rerun = _run(argv, tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    (model,) = (tmp_path / "run" / "models").iterdir()
    assert _weights(model) == _weights(zoo.run / "models" / model.name)


def test_two_concurrent_identical_attacks_both_succeed(zoo, tmp_path):
    argv = ["attack", "--model", zoo.m1, "--limit", "512", "--steps", "5", "--eps", "0.1", "--device", "cpu",
            "--layout", "contiguous", "--store", tmp_path / "adv", "--json"]
    procs = [_start(argv, tmp_path) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    results = [json.loads(o) for o, _ in outs]
    assert results[0]["key"] == results[1]["key"]
    assert results[0]["success_rate"] == results[1]["success_rate"]
    assert sorted(r["cached"] for r in results) == [False, True]
