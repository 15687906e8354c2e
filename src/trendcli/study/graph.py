"""The task graph of a study: train -> attack -> matrix (and audit) -> design -> evaluate -> export -> report.

Every task has a content key: a hash of its own settings and its dependencies' keys, so a
changed setting re-runs that task and everything downstream, and nothing else.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trendcli.study.config import STAGES, Study


@dataclass
class Task:
    """One unit of work; ``args`` is JSON-ready so any executor can ship it."""

    id: str  # "<stage>:<name>"
    stage: str
    args: dict[str, Any]
    deps: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)  # paths relative to the run directory
    cpus: int = 1
    gpus: float = 0.0
    key: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Task arguments that choose where a task runs and reads, not what it computes: they stay out of
#: the key. The memory layout is keyed: it changes float rounding, so it is part of every
#: adversarial set's key too (trendcli.attacks.base.MEMORY_FORMATS).
NOT_KEYED = ("device", "store", "data_dir")


def _key(stage: str, args: dict[str, Any], dep_keys: list[str]) -> str:
    blob = json.dumps({"stage": stage, "args": args, "deps": dep_keys}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def model_dir(name: str) -> str:
    return f"models/{name}"


def _weights_sha256(path: str) -> str | None:
    try:
        return json.loads((Path(path) / "model.json").read_text()).get("weights_sha256")
    except (OSError, ValueError):
        return None


def build_tasks(study: Study, cpus: int = 1, gpus: float = 0.0) -> list[Task]:
    """All tasks of ``study`` in a valid execution (topological) order."""
    tasks: dict[str, Task] = {}

    def add(stage: str, name: str, args: dict[str, Any], deps: list[str], outputs: list[str]) -> str:
        tid = f"{stage}:{name}"
        task = Task(tid, stage, args, deps, outputs, cpus=cpus, gpus=gpus)
        task.key = _key(stage, {k: v for k, v in args.items() if k not in NOT_KEYED}, [tasks[d].key for d in deps])
        tasks[tid] = task
        return tid

    common = {"device": study.device, "data_dir": str(study.data_dir) if study.data_dir else None, "store": str(study.store)}
    attacking = {**common, "layout": study.layout}
    for m in study.models:
        add("train", m.name, {**common, "dataset": study.dataset, "config": m.config, "out": model_dir(m.name)}, [], [model_dir(m.name)])

    attacks = {a.name: a for a in study.attacks}
    for mx in study.matrices:
        atk = attacks[mx.attack]
        attack_ids = []
        for mname in mx.models:
            aname = f"{mx.attack}@{mname}" + (f"[{mx.split}:{mx.limit}]" if mx.limit else f"[{mx.split}]")
            tid = f"attack:{aname}"
            if tid not in tasks:
                add("attack", aname, {**attacking, "model": model_dir(mname), "method": atk.method, "params": atk.params,
                                      "split": mx.split, "limit": mx.limit, "batch_size": mx.batch_size}, [f"train:{mname}"], [])
            attack_ids.append(tid)
        add("matrix", mx.name, {**attacking, "models": [model_dir(n) for n in mx.models], "method": atk.method, "params": atk.params,
                                "split": mx.split, "limit": mx.limit, "batch_size": mx.batch_size, "group_by": list(mx.group_by),
                                "out": f"matrices/{mx.name}"},
            [f"train:{n}" for n in mx.models] + attack_ids, [f"matrices/{mx.name}.json"])

    for au in study.audits:
        atk = attacks[au.attack]
        target = model_dir(au.target) if au.target_is_model else au.target
        # an outside target is keyed by its weights too, so a re-imported model re-runs the audit
        sha = None if au.target_is_model else _weights_sha256(au.target)
        add("audit", au.name, {**attacking, "target": target, "target_sha256": sha,
                               "surrogates": [model_dir(n) for n in au.surrogates], "method": atk.method,
                               "params": atk.params, "split": au.split, "limit": au.limit, "batch_size": au.batch_size,
                               "out": f"audits/{au.name}"},
            [f"train:{n}" for n in au.surrogates] + ([f"train:{au.target}"] if au.target_is_model else []),
            [f"audits/{au.name}.json"])

    for en in study.ensembles:
        add("design", en.name, {"matrix": f"matrices/{en.matrix}.json", "size": en.size,
                                "require": [model_dir(n) for n in en.require], "candidates": [model_dir(n) for n in en.candidates],
                                "tie_break": en.tie_break, "out": f"ensembles/{en.name}.json"},
            [f"matrix:{en.matrix}"], [f"ensembles/{en.name}.json"])

    for ev in study.evaluations:
        deps = [f"design:{ev.ensemble}"] + ([f"train:{ev.transfer_from}"] if ev.transfer_from else [])
        worst: dict[str, Any] = {}
        if ev.protocol == "worst-case":  # only then, so that the standard protocol's task keys stay as they were
            en = next(e for e in study.ensembles if e.name == ev.ensemble)
            worst = {"protocol": ev.protocol, "worst_case": ev.worst_case, "matrix": f"matrices/{en.matrix}.json"}
        add("evaluate", ev.name, {**attacking, "ensemble": f"ensembles/{ev.ensemble}.json", "attacks": list(ev.attacks),
                                  "eps": list(ev.eps), "limit": ev.limit, "params": ev.params, "per_image": ev.per_image,
                                  "transfer_from": model_dir(ev.transfer_from) if ev.transfer_from else None,
                                  "out": f"evaluations/{ev.name}", **worst},
            deps, [f"evaluations/{ev.name}/evaluation.json"])

    for ex in study.exports:
        add("export", ex.name, {**common, "dataset": study.dataset, "ensemble": f"ensembles/{ex.ensemble}.json",
                                "tie_break": ex.tie_break, "opset": ex.opset, "infer_limit": ex.infer_limit,
                                "out": f"exports/{ex.name}.onnx"},
            [f"design:{ex.ensemble}"], [f"exports/{ex.name}.onnx", f"exports/{ex.name}.infer.json"])

    if study.report:
        add("report", "report", {"out": "report"}, [t for t in tasks if not t.startswith(("train:", "attack:"))], ["report/index.html"])
    order = {s: i for i, s in enumerate(STAGES)}
    return sorted(tasks.values(), key=lambda t: order[t.stage])


def marker_path(run_dir: Path, task: Task) -> Path:
    safe = task.id.replace(":", "-").replace("/", "_").replace("@", "_at_").replace("[", "_").replace("]", "")
    return Path(run_dir) / "tasks" / f"{safe}.json"


def is_done(run_dir: Path, task: Task) -> bool:
    """Finished under the same key, and every output still exists."""
    marker = marker_path(run_dir, task)
    try:
        record = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return record.get("key") == task.key and all((Path(run_dir) / o).exists() for o in task.outputs)
