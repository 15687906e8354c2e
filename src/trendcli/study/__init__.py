"""Studies: a TOML file describing a whole TREND experiment, its task graph and executors."""

from __future__ import annotations

from trendcli.study.config import Study, load_study
from trendcli.study.graph import Task, build_tasks
from trendcli.study.runner import StudyResult, run_study

__all__ = ["Study", "load_study", "Task", "build_tasks", "StudyResult", "run_study"]
