"""Output through a pipe: tables at full width, nothing cut at 80 columns."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from trendcli.cli.render import fmt


def test_piped_tables_are_not_truncated():
    env = {**os.environ, "COLUMNS": "60"}  # even a narrow COLUMNS does not cut piped output
    rows = json.loads(subprocess.run([sys.executable, "-m", "trendcli.cli", "plugins", "--json"],
                                     capture_output=True, text=True, timeout=120, check=True).stdout)["names"]
    proc = subprocess.run([sys.executable, "-m", "trendcli.cli", "plugins"], capture_output=True, text=True,
                          timeout=120, env=env, check=True)
    assert "…" not in proc.stdout
    longest = max(rows, key=lambda r: len(r["description"]))
    line = next(ln for ln in proc.stdout.splitlines() if f" {longest['name']} " in ln)
    assert longest["description"] in line and len(line) > 80


def test_fmt_writes_na_for_missing_and_nan():
    assert fmt(None) == "n/a" and fmt(float("nan")) == "n/a"
    assert fmt(0.12345) == "0.123" and fmt(0.5, ".1%") == "50.0%"
