"""CLI startup: how long `trend --help` and friends take, beside `import torch`, in one run.

Each command runs N times in a fresh interpreter (wall time of the whole process, output
discarded); the table shows the median and the fastest run, and whether torch was imported.

    .venv/bin/python benchmarks/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PYTHON = sys.executable
TREND = str(Path(sys.executable).parent / "trend")

#: (label, argv) of each measured command.
CASES = [
    ("python -c pass", [PYTHON, "-c", "pass"]),
    ("python -c 'import torch'", [PYTHON, "-c", "import torch"]),
    ("python -c 'import trendcli'", [PYTHON, "-c", "import trendcli"]),
    ("trend --help", [TREND, "--help"]),
    ("trend train --help", [TREND, "train", "--help"]),
    ("trend plugins", [TREND, "plugins"]),
]

#: `trend ARGS` through trendcli.cli.main, then whether torch is in sys.modules.
PROBE = """
import sys
from trendcli.cli import main
try:
    main({args!r})
except SystemExit:
    pass
sys.stderr.write("TORCH=%d" % ("torch" in sys.modules))
"""


def wall(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def imports_torch(argv: list[str]) -> str:
    if argv[0] == TREND:
        code = PROBE.format(args=argv[1:])
    else:
        code = argv[-1] + "; import sys; sys.stderr.write('TORCH=%d' % ('torch' in sys.modules))"
    err = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=True).stderr
    return "yes" if err.rsplit("TORCH=", 1)[1].startswith("1") else "no"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per command (median reported)")
    args = parser.parse_args()
    for _, argv in CASES:  # warm the file cache
        wall(argv)
    times: dict[str, list[float]] = {label: [] for label, _ in CASES}
    for _ in range(args.runs):  # interleaved, so a burst of load hits every command alike
        for label, argv in CASES:
            times[label].append(wall(argv))
    load = os.getloadavg()[0]
    print(f"{args.runs} runs each, interleaved; load average {load:.1f} on {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    print()
    print("| command | median s | fastest s | imports torch |")
    print("|---|---:|---:|---|")
    for label, argv in CASES:
        t = times[label]
        print(f"| `{label}` | {statistics.median(t):.3f} | {min(t):.3f} | {imports_torch(argv)} |")


if __name__ == "__main__":
    main()
