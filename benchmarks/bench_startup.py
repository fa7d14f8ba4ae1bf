"""Start-up time of the command line: ``canary-engine --help`` and ``validate`` of one file.

Run from the repository root (with the package installed, so the ``canary-engine`` script exists):

    python benchmarks/bench_startup.py [--runs 15]

Target: each under 150 ms wall on this machine (median of the runs, each a fresh process).
Python itself starting and exiting is printed beside it for reference. Commands import what
they need when they run (numpy, httpx, kubernetes-asyncio only for simulate, record and run).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_MS = 150.0
ROOT = Path(__file__).resolve().parents[1]


def cli() -> list[str]:
    """The installed ``canary-engine`` script, or the module run by this Python."""
    script = shutil.which("canary-engine")
    return [script] if script else [sys.executable, "-m", "engine.cli"]


def wall_ms(command: list[str], runs: int) -> float:
    """Median wall milliseconds of ``runs`` fresh processes of ``command``."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=False, capture_output=True)
        samples.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    bare = wall_ms([sys.executable, "-c", "pass"], args.runs)
    print(f"python -c pass: {bare:.0f} ms (reference)")
    worst = 0.0
    for label, extra in (
        ("canary-engine --help", ["--help"]),
        ("canary-engine validate (one file)", ["validate", "config/examples/webhook-server.yaml"]),
    ):
        ms = wall_ms([*cli(), *extra], args.runs)
        worst = max(worst, ms)
        verdict = "OK" if ms < TARGET_MS else "MISSED"
        print(f"{label}: {ms:.0f} ms  (target < {TARGET_MS:.0f} ms: {verdict})")
    return 0 if worst < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
