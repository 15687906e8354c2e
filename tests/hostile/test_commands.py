"""Every bad input of the campaign gives one `error:` line, a non-zero exit, no traceback, and
leaves every file it was pointed at as it was (tests/hostile/cases.py)."""

from __future__ import annotations

import hashlib

import pytest

from trendcli.registry import set_registry

from .cases import CASES
from .conftest import trend


def _digests(tmp_path, names):
    return {n: hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in names}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.xfail(reason=c.xfail, strict=True)) if c.xfail else c
                                  for c in CASES], ids=[c.id for c in CASES])
def test_bad_input_is_one_error_line(case, zoo, tmp_path, monkeypatch):
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    argv = case.build(zoo, tmp_path)
    before = _digests(tmp_path, case.keep)
    if case.env:
        set_registry(None)  # a fresh process-wide registry reads the environment
    try:
        result = trend(*argv)
    finally:
        if case.env:
            set_registry(None)
    assert "Traceback" not in result.err + result.out
    assert result.code != 0, result.out[-400:]
    assert len(result.error_lines) == 1 and result.err.strip() == result.error_lines[0], result.err
    assert _digests(tmp_path, case.keep) == before, "a file the command was pointed at changed"


def test_the_campaign_covers_every_command():
    commands = {c.id.split("-")[0] for c in CASES}
    assert {"train", "attack", "matrix", "design", "export", "infer", "evaluate", "sweep", "report", "run", "plugins"} <= commands
