"""Two-node Ray on one machine: a head and a worker started apart, as README "Studies and clusters" says.

The head offers no CPUs (``--num-cpus 0``), so every task (each asks for a CPU) runs in the
worker's raylet; the worker's own temp dir then holds the Ray worker logs and the head's none.
The study is the tiny one of test_runner.py; the Ray run goes through the CLI exactly as the
README recipe does. A worker that dies (``os._exit``) is retried, or reported and never
recorded as done (its task marker is not written).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from trendcli.study import run_study

from ..conftest import needs_fmnist, needs_loopback_only_network
from .test_runner import _results, _study

pytestmark = [pytest.mark.slow, needs_fmnist]
ray = pytest.importorskip("ray")

BIN = Path(sys.executable).parent
START_TIMEOUT = 120  # seconds for each `ray start`; a cold start takes 5-20 s on two shared cores
# Timings and paths differ between two runs of one study; everything else must not.
VOLATILE = {"seconds", "created", "finished", "timing", "versions", "images_per_s", "attack_seconds",
            "eval_seconds", "train_seconds", "elapsed", "study", "latency_ms", "generated"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """A head and a worker on 127.0.0.1 with separate temp dirs; `ray stop` whatever happens."""
    needs_loopback_only_network()
    port = _free_port()
    head_tmp, worker_tmp = (Path(tempfile.mkdtemp(prefix=p, dir="/tmp")) for p in ("trh", "trw"))  # short: socket paths
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16), "RAY_USAGE_STATS_ENABLED": "0"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the driver (this process and `trend run`) needs the token too
    address = f"127.0.0.1:{port}"
    head = [str(BIN / "ray"), "start", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1",
            "--temp-dir", str(head_tmp), "--num-cpus", "0", "--include-dashboard", "false", "--disable-usage-stats"]
    worker = [str(BIN / "ray"), "start", "--address", address, "--node-ip-address", "127.0.0.1",
              "--temp-dir", str(worker_tmp), "--num-cpus", "2", "--disable-usage-stats"]
    try:
        for cmd in (head, worker):
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=START_TIMEOUT)
            assert done.returncode == 0, done.stdout + done.stderr
        yield {"address": address, "head_tmp": head_tmp, "worker_tmp": worker_tmp}
    finally:
        subprocess.run([str(BIN / "ray"), "stop"], capture_output=True, timeout=120)
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        for d in (head_tmp, worker_tmp):
            shutil.rmtree(d, ignore_errors=True)


def _worker_logs(tmp: Path) -> list[Path]:
    return list(tmp.glob("session_*/logs/python-core-worker-*.log"))


def _json_outputs(run_dir: Path) -> dict[str, object]:
    """Every JSON file of a run with timings, versions and the run directory itself taken out."""

    def clean(v):
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items() if k not in VOLATILE}
        if isinstance(v, list):
            return [clean(x) for x in v]
        if isinstance(v, str):
            return v.replace(str(run_dir.resolve()), "RUN").replace(str(run_dir), "RUN")
        return v

    skip = ("last_run.json", "study.json")
    return {str(p.relative_to(run_dir)): clean(json.loads(p.read_text()))
            for p in sorted(run_dir.rglob("*.json")) if p.name not in skip and ".tasks" not in p.parts}


def test_two_node_study_equals_local(tmp_path, cluster):
    local_dir, ray_dir = tmp_path / "local", tmp_path / "ray"
    local = run_study(_study(tmp_path, "local"))
    cmd = [str(BIN / "trend"), "run", str(tmp_path / "tiny.toml"), "--executor", "ray", "--address", cluster["address"],
           "--run-dir", str(ray_dir), "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    ran = [t for t in json.loads(done.stdout)["tasks"] if t["status"] == "ran"]
    assert len(ran) == len(local.ran) > 0
    # the tasks ran in the worker's raylet: only its temp dir holds Ray worker logs
    assert _worker_logs(cluster["worker_tmp"]) and not _worker_logs(cluster["head_tmp"])
    assert _results(local_dir) == _results(ray_dir)
    assert _differences(_json_outputs(local_dir), _json_outputs(ray_dir)) == []


def _differences(a, b, where: str = "") -> list[str]:
    """Where two JSON values differ (paths like ``matrices/pgd.json.tm[0][1]``)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _differences(a.get(k), b.get(k), f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {str(a)[:80]} != {str(b)[:80]}"]


# The driver of a run whose train tasks' workers die (os._exit): the first attempt only, or
# always for the task whose id ends with ALWAYS. A separate process, since Ray reads its token
# settings once per process; the replacement of execute_task, defined in __main__, travels
# to the worker by value.
CRASHING_DRIVER = """
import json, os, sys
from pathlib import Path
from trendcli.errors import StudyError
from trendcli.study import load_study, run_study, runner

study_file, run_dir, address, flag, always = sys.argv[1:6]
real = runner.execute_task


def execute(task, run_dir, threads=None, progress=None):
    if task["stage"] == "train" and ((always and task["id"].endswith(always)) or (not always and not os.path.exists(flag))):
        open(flag, "w").close()
        os._exit(3)
    return real(task, run_dir, threads, progress)


runner.execute_task = execute
try:
    result = run_study(load_study(Path(study_file), run_dir=Path(run_dir)), only="train", executor="ray", address=address)
    print(json.dumps({"ran": result.ran}))
except StudyError as exc:
    print(json.dumps({"error": str(exc)}))
"""


def _crashing_run(tmp_path: Path, name: str, address: str, always: str = "") -> dict:
    _study(tmp_path, name)  # writes tiny.toml
    cmd = [sys.executable, "-c", CRASHING_DRIVER, str(tmp_path / "tiny.toml"), str(tmp_path / name), address,
           str(tmp_path / "crashed"), always]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_worker_that_dies_once_is_retried(tmp_path, cluster):
    out = _crashing_run(tmp_path, "retry", cluster["address"])
    assert (tmp_path / "crashed").exists()  # a worker really died
    assert len(out["ran"]) == 3 and all(t.startswith("train:") for t in out["ran"]), out
    assert len(list((tmp_path / "retry").glob("models/*/model.json"))) == 3


def test_a_task_whose_worker_keeps_dying_is_reported_not_recorded(tmp_path, cluster):
    out = _crashing_run(tmp_path, "dies", cluster["address"], always="-q1-s0")
    assert "error" in out, out
    assert re.search(r"train:smallcnn-q1-s0 \(its Ray worker died 3 times", out["error"]), out["error"]
    planned = [t["id"] for t in run_study(_study(tmp_path, "dies"), dry_run=True).tasks if t["status"] == "planned"]
    assert [t for t in planned if t.startswith("train:")] == ["train:smallcnn-q1-s0"]
