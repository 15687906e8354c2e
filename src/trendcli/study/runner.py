"""Run a study's tasks: skip what is done, run the rest locally or on Ray, resume after a stop."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trendcli.errors import StudyError, UsageError
from trendcli.fsio import writable_dir, write_json_atomic
from trendcli.progress import NullProgress, Progress
from trendcli.study.config import STAGES, Study
from trendcli.study.graph import Task, build_tasks, is_done, marker_path

EXECUTORS = ("local", "ray")
#: Times Ray reruns a task whose worker process (or node) died, before the study reports it.
RAY_MAX_RETRIES = 2


@dataclass
class StudyResult:
    """What a run did: each task's status ("skipped", "ran", "planned") and time."""

    run_dir: Path
    tasks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ran(self) -> list[str]:
        return [t["id"] for t in self.tasks if t["status"] == "ran"]

    @property
    def skipped(self) -> list[str]:
        return [t["id"] for t in self.tasks if t["status"] == "skipped"]

    @property
    def report(self) -> Path | None:
        path = self.run_dir / "report" / "index.html"
        return path if path.exists() else None


def execute_task(task: dict[str, Any], run_dir: str, threads: int | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Run one task (in this process or a Ray worker) and write its marker. Returns the record."""
    import torch

    from trendcli.study.stages import run_stage

    if threads:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    summary = run_stage(task["stage"], task["args"], Path(run_dir), progress or NullProgress())
    record = {"id": task["id"], "key": task["key"], "seconds": round(time.perf_counter() - start, 2), "summary": summary,
              "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_json_atomic(marker_path(Path(run_dir), Task(**task)), record)
    return record


def _write_if_changed(path: Path, data: dict[str, Any]) -> None:
    """Write JSON ``data`` to ``path`` unless it already holds exactly that."""
    try:
        if json.loads(path.read_text(encoding="utf-8")) == json.loads(json.dumps(data, default=str)):
            return
    except (OSError, ValueError):
        pass
    write_json_atomic(path, data)


def run_study(
    study: Study,
    only: str | None = None,
    dry_run: bool = False,
    executor: str = "local",
    address: str | None = None,
    progress: Progress | None = None,
    force: bool = False,
) -> StudyResult:
    """Build the task graph, skip finished tasks, and run the rest in dependency order.

    ``force`` reruns every task (of ``only``'s stage, if given) and regenerates its adversarial
    sets instead of reading them from the store; outputs are replaced, never files trendcli did
    not write.
    """
    progress = progress or NullProgress()
    if only is not None and only not in STAGES:
        raise UsageError(f"unknown stage {only!r}; stages: {', '.join(STAGES)}")
    if executor not in EXECUTORS:
        raise UsageError(f"unknown executor {executor!r}; use {' or '.join(EXECUTORS)}")
    run_dir = study.run_dir
    threads = study.cpus_per_task or (os.cpu_count() or 1)
    tasks = build_tasks(study, cpus=threads)
    result = StudyResult(run_dir)
    finished = {t.id for t in tasks if is_done(run_dir, t)}
    done = set() if force else finished
    todo = [t for t in tasks if t.id not in done and (only is None or t.stage == only)]
    for t in tasks:
        if t.id in done:
            result.tasks.append({"id": t.id, "status": "skipped", "seconds": 0.0})
    if dry_run:
        result.tasks += [{"id": t.id, "status": "planned", "seconds": 0.0, "deps": t.deps} for t in todo]
        return result
    if only is not None:
        wanted = {t.id for t in todo}
        missing = sorted({d for t in todo for d in t.deps if d not in finished and d not in wanted})
        if missing:
            raise StudyError(f"--only {only}: earlier tasks are not finished ({', '.join(missing[:4])}); run without --only first")

    record = {"study": str(study.path), "name": study.name, "dataset": study.dataset,
              "models": [{"name": m.name, "dir": f"models/{m.name}", **m.config} for m in study.models],
              "tasks": [t.to_dict() for t in tasks]}
    if not todo:  # a finished study writes only a changed record, and nothing in a read-only run directory
        if os.access(run_dir, os.W_OK):
            _write_if_changed(run_dir / "study.json", record)
        return result
    writable_dir(run_dir, "study's run directory")
    _write_if_changed(run_dir / "study.json", record)
    if force:  # after the record: force is how this run goes, not part of any task's identity
        for t in todo:
            t.args["force"] = True
    overall = progress.task(f"study {study.name}", total=len(todo))
    if executor == "local":
        for t in todo:
            progress.log(f"[{t.stage}] {t.id.split(':', 1)[1]}")
            record = execute_task(t.to_dict(), str(run_dir), threads, progress)
            result.tasks.append({"id": t.id, "status": "ran", "seconds": record["seconds"]})
            progress.advance(overall)
    else:
        for record in _run_on_ray(todo, done, run_dir, threads, address, progress, overall):
            result.tasks.append({"id": record["id"], "status": "ran", "seconds": record["seconds"]})
    progress.done(overall)
    write_json_atomic(run_dir / "last_run.json", {"executor": executor, "tasks": result.tasks})
    return result


def _run_on_ray(todo: list[Task], done: set[str], run_dir: Path, threads: int, address: str | None, progress: Progress,
                overall: Any):
    """Submit each task as a Ray task once its dependencies finished; yield records as they end.

    A task whose worker process or node dies is retried by Ray (``RAY_MAX_RETRIES`` times); one
    that still fails, or raises, is never recorded as done: its marker is written only by a
    task that finished. After a failure nothing new is submitted, the tasks already running are
    waited for (their markers make a rerun resume there), and StudyError names what failed.
    """
    try:
        import ray
    except ImportError:
        raise UsageError("--executor ray needs Ray: pip install 'trendcli[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                 runtime_env={"env_vars": {"PYTHONUNBUFFERED": "1"}})
    remote = ray.remote(execute_task)
    finished = set(done)
    pending: dict[Any, Task] = {}
    waiting = list(todo)
    failed: list[str] = []
    try:
        while (waiting and not failed) or pending:
            for t in [t for t in waiting if not failed and all(d in finished for d in t.deps)]:
                waiting.remove(t)
                ref = remote.options(num_cpus=t.cpus, num_gpus=t.gpus, name=t.id, max_retries=RAY_MAX_RETRIES,
                                     retry_exceptions=False).remote(t.to_dict(), str(run_dir.resolve()), t.cpus)
                pending[ref] = t
            if not pending:
                raise StudyError(f"tasks wait on unfinished dependencies: {', '.join(t.id for t in waiting[:4])}")
            ready, _ = ray.wait(list(pending), num_returns=1)
            task = pending.pop(ready[0])
            try:
                record = ray.get(ready[0])
            except ray.exceptions.RayTaskError as exc:  # the stage raised: an instance of its own error too
                if not pending and not failed:
                    raise
                failed.append(f"{task.id} ({type(exc.cause).__name__}: {exc.cause})")
                continue
            except ray.exceptions.RayError as exc:  # the worker process or its node died, past the retries
                failed.append(f"{task.id} (its Ray worker died {RAY_MAX_RETRIES + 1} times: {type(exc).__name__})")
                continue
            finished.add(task.id)
            progress.log(f"[{task.stage}] {task.id.split(':', 1)[1]} (ray, {record['seconds']:.1f} s)")
            progress.advance(overall)
            yield record
    finally:
        if started_here:
            ray.shutdown()
    if failed:
        raise StudyError(f"{len(failed)} task(s) failed on Ray and were not recorded as done: {'; '.join(failed)}; "
                         f"{len(waiting)} task(s) not started; fix the cause and rerun to resume")
