"""The app: startup imports no torch, Ctrl-C says what was kept and how to resume, exit 130."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from trendcli.cli import interrupted_message
from trendcli.cli.app import COMMANDS, app

from ..conftest import needs_fmnist, sigint_default

HEAVY = ("torch", "torchvision", "onnx", "onnxruntime", "h5py")

#: Runs `trend ARGS` in a fresh interpreter and reports which heavy packages got imported.
RUNNER = """
import json, sys
from trendcli.cli import main
try:
    main(json.loads(sys.argv[1]))
except SystemExit:
    pass
sys.stderr.write("\\nIMPORTED=" + json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.argv[2])))))
"""


def trend_script() -> str:
    return str(Path(sys.executable).parent / "trend")


@pytest.mark.parametrize("argv", [["--help"], ["plugins"], *([name, "--help"] for name, _, _ in COMMANDS)], ids=" ".join)
def test_help_and_plugins_import_no_torch(argv):
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps(argv), json.dumps(HEAVY)], capture_output=True, text=True, timeout=120
    )
    imported = json.loads(proc.stderr.rsplit("IMPORTED=", 1)[1])
    assert imported == [], f"trend {' '.join(argv)} imported {imported}"
    assert "Usage: trend" in proc.stdout or "names by kind" in proc.stdout


def test_every_command_is_a_module_level_function():
    for name, command, _ in COMMANDS:
        assert command.__qualname__ == command.__name__, f"{name} is declared inside another function"
        assert command.__module__.startswith("trendcli.cli."), name
    assert [c.name for c in app.registered_commands] == [name for name, _, _ in COMMANDS]


def test_interrupted_message_names_what_is_kept_and_the_exact_command():
    assert interrupted_message(["attack", "--model", "runs/models/a b", "--eps", "8/255"]) == (
        "interrupted: finished work is kept (finished attack chunks); "
        "resume with: trend attack --model 'runs/models/a b' --eps 8/255"
    )
    assert interrupted_message(["design", "--matrix", "m.json", "--size", "3"]) == (
        "interrupted: nothing partial is kept; rerun with: trend design --matrix m.json --size 3"
    )


@pytest.mark.slow
@needs_fmnist
def test_sigint_during_training_prints_the_resume_command_and_exits_130(tmp_path):
    out = tmp_path / "m"
    argv = ["train", "--epochs", "200", "--limit-train", "256", "--device", "cpu", "--out", str(out)]
    proc = subprocess.Popen([trend_script(), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, preexec_fn=sigint_default)
    try:
        for line in proc.stderr:  # epoch 2 logged: epoch 1's checkpoint is written
            if line.startswith("epoch 2/"):
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130
    last = err.strip().splitlines()[-1]
    assert last == f"interrupted: finished work is kept (finished epochs); resume with: trend {' '.join(argv)}"
    assert "Traceback" not in err and not out.exists()
    assert (tmp_path / ".m.resume").is_dir()  # the finished epoch, for the resume
