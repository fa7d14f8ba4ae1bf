"""benchmarks/bench_sweep.py runs and reports both rates (a smoke test: no timing is asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_sweep_benchmark_prints_the_batch_and_single_run_rates() -> None:
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_sweep.py"),
            "--settings",
            "6",
            "--recordings",
            "12",
            "--single",
            "5",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    assert "6 settings x 12 recordings = 72 replays" in run.stdout
    assert re.search(r"^batch: +[\d,]+ replays/s", run.stdout, re.M)
    # The benchmark itself checks that sampled pairs decide the same in the engine.
    assert re.search(r"^single-run: +[\d,]+ replays/s .*same decisions", run.stdout, re.M)
