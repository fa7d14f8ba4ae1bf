"""Every benchmark script still loads (a smoke test: no timing is asserted).

The benchmarks run by hand, not in CI, so a renamed helper they import can break one unseen:
``bench_get.py`` once imported a function ``bench_startup.py`` no longer had.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py") if not p.name.startswith("_"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_benchmark_loads_and_explains_itself(script: str) -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "usage:" in run.stdout


def test_the_controller_benchmarks_fleet_is_the_callers_to_rewrite() -> None:
    # The fake API server's seeding rewrites owner references in the bodies the in-memory run
    # left behind; a cluster hands out read-only bodies, so the fleet must come back as copies.
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_controller

    objects = asyncio.run(bench_controller.initialized_objects(2, 10))
    kinds = sorted({body["kind"] for body in objects})
    assert kinds == ["Canary", "Deployment", "Service"]
    owned = [owner for body in objects for owner in body["metadata"].get("ownerReferences") or ()]
    assert owned, "the primary objects carry owner references to their Canary"
    for owner in owned:
        owner["uid"] = "rewritten"
    assert {
        owner["uid"] for body in objects for owner in body["metadata"].get("ownerReferences") or ()
    } == {"rewritten"}


def test_the_false_alarm_benchmark_prints_each_rate_beside_its_bound() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "judge_false_alarms.py"), "--runs", "40"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr[-2000:]
    lines = [line for line in run.stdout.splitlines() if line.startswith("harmful:")]
    assert len(lines) == 8  # four metric shapes, two directions
    assert all("stated bound 1.00%" in line for line in lines if "increase" in line)
    assert all("stated bound 1.67%" in line for line in lines if "both" in line)
