"""Start-up time of the command line: ``canary-engine --help`` and ``validate`` of one file.

Run from the repository root (with the package installed, so the ``canary-engine`` script exists):

    python benchmarks/bench_startup.py [--runs 15]

Target: each under 150 ms wall on this machine (median of the runs, each a fresh process).
Commands import what they need when they run (numpy, httpx, kubernetes-asyncio only for
simulate, record and run). Printed beside them for reference: Python itself starting and
exiting, and Python importing pydantic's ``BaseModel`` and PyYAML, the floor under ``validate``
(it parses YAML into pydantic models).

The commands run as ``python -m engine.cli`` with this interpreter (a pyenv or virtualenv shim
in front of the ``canary-engine`` script would add its own start-up), with bytecode allowed: an
installed package has its ``.pyc`` files, so each command runs once, unmeasured, to write them
when ``PYTHONDONTWRITEBYTECODE`` would otherwise have every run compile the sources again. A
command that fails stops the benchmark: a failure is not a fast start.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_MS = 150.0
ROOT = Path(__file__).resolve().parents[1]


CLI = [sys.executable, "-m", "engine.cli"]
#: As installed: bytecode written once and read afterwards.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def wall_ms(command: list[str], runs: int) -> float:
    """Median wall milliseconds of ``runs`` fresh processes of ``command`` (after one warm-up)."""
    samples = []
    for attempt in range(runs + 1):
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=ENV, check=False, capture_output=True)
        elapsed = (time.perf_counter() - start) * 1000.0
        if done.returncode != 0:
            reason = done.stderr.decode(errors="replace").strip().splitlines()[-1:]
            raise SystemExit(f"{' '.join(command)} exited {done.returncode}: {reason}")
        if attempt:
            samples.append(elapsed)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    for label, code in (
        ("python -c pass", "pass"),
        (
            "python importing pydantic.BaseModel and yaml",
            "import yaml; from pydantic import BaseModel",
        ),
    ):
        print(f"{label}: {wall_ms([sys.executable, '-c', code], args.runs):.0f} ms (reference)")
    worst = 0.0
    for label, extra in (
        ("canary-engine --help", ["--help"]),
        ("canary-engine validate (one file)", ["validate", "config/examples/webhook-server.yaml"]),
    ):
        ms = wall_ms([*CLI, *extra], args.runs)
        worst = max(worst, ms)
        verdict = "OK" if ms < TARGET_MS else "MISSED"
        print(f"{label}: {ms:.0f} ms  (target < {TARGET_MS:.0f} ms: {verdict})")
    return 0 if worst < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
