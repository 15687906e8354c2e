"""Bit-reproducible runs: the same inputs give the same outputs under any load.

tests/adversarial/test_generate.py checks one PGD set on one model under CPU load; here the
ensemble attack (a per-minibatch Qb member and an HT member, each batch's statistics and tie
rules in play) and a whole tiny study, run twice from scratch, whose JSON must agree except
for timings and the run directory's own path.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import needs_fmnist
from trendcli.adversarial.generate import attack
from trendcli.data import get_dataset
from trendcli.zoo.files import build_model
from trendcli.zoo.spec import ModelSpec

#: keys whose values are wall-clock measurements (or when a file was written), not results
TIMING = re.compile(r"seconds|created|generated|latency|images_per_s|elapsed|started|finished|duration|timestamp|^time$|_at$"
                    # how a run went, not what it measured: cache hits, reuse, forcing
                    r"|^cached$|^force$|^(computed|reused)_pairs$|^read_from_cache$|^evaluated$|^attacked$|^status$")


def _member(input_quant: str, seed: int):
    info = get_dataset("fashion_mnist").info
    spec = ModelSpec(arch="smallcnn", dataset="fashion_mnist", in_channels=info.channels, image_size=info.image_size,
                     num_classes=info.num_classes, mean=info.mean, std=info.std, input_quant=input_quant)
    torch.manual_seed(seed)
    return build_model(spec).eval()


@needs_fmnist
@pytest.mark.slow
def test_ensemble_attack_under_cpu_load_is_bit_identical(tmp_path):
    members = lambda: [_member("fp", 0), _member("q1", 1), _member("ht", 2)]  # noqa: E731
    params = {"eps": 0.05, "alpha": 0.01, "steps": 3, "random_start": True, "seed": 0}
    quiet = attack(members(), "agd", params, limit=24, device="cpu", store=tmp_path / "quiet", tie_break="paper")
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        loaded = attack(members(), "agd", params, limit=24, device="cpu", store=tmp_path / "loaded", tie_break="paper")
    finally:
        for p in burners:
            p.kill()
            p.wait()
    assert not quiet.cached and not loaded.cached and loaded.key == quiet.key
    a, b = quiet.advset.read_adv(), loaded.advset.read_adv()
    assert float(quiet.advset.linf.max()) > 0  # the attack moved the images
    assert np.array_equal(a.view(np.int32), b.view(np.int32))
    assert np.array_equal(quiet.advset.adv_pred, loaded.advset.adv_pred)
    quiet.advset.close()
    loaded.advset.close()


def _scrub(value, run_dir: str):
    """``value`` with timing fields dropped and the run directory's path replaced by RUN."""
    if isinstance(value, dict):
        return {k: _scrub(v, run_dir) for k, v in value.items() if not TIMING.search(str(k))}
    if isinstance(value, list):
        return [_scrub(v, run_dir) for v in value]
    if isinstance(value, str):
        return value.replace(run_dir, "RUN")
    return value


def _outputs(run_dir: Path) -> dict[str, object]:
    """Every JSON file a run wrote (the study's own bookkeeping of task times aside)."""
    out = {}
    for path in sorted(run_dir.rglob("*.json")):
        rel = path.relative_to(run_dir).as_posix()
        if rel.startswith((".trend", "logs/")) or "/." in rel:
            continue
        out[rel] = _scrub(json.loads(path.read_text()), str(run_dir))
    return out


@needs_fmnist
@pytest.mark.slow
def test_a_study_run_twice_from_scratch_gives_identical_json(tmp_path):
    from tests.study.test_runner import TINY
    from trendcli.cli import main
    from trendcli.study import load_study, run_study

    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    first = run_study(load_study(path, run_dir=tmp_path / "a"))
    assert first.ran
    a = _outputs(tmp_path / "a")
    # `trend run --force` reruns every task in place and regenerates every adversarial set
    with pytest.raises(SystemExit) as exit_:
        main(["run", str(path), "--run-dir", str(tmp_path / "a"), "--force", "--json"])
    assert exit_.value.code == 0
    b = _outputs(tmp_path / "a")
    assert set(a) == set(b) and any(k.startswith("matrices/") for k in a)
    for rel in a:
        assert a[rel] == b[rel], f"{rel} differs between a run and its `trend run --force` rerun"
    evaluation = a["evaluations/pair/evaluation.json"]
    assert evaluation["ensemble"]["tie_break"] == "paper"  # the findings' default tie-break
    assert all(s["per_image"] for s in evaluation["sets"])
