"""Operator commands: how fast they start, and how soon the controller acts on one.

Run from the repository root (with the package installed):

    python benchmarks/bench_commands.py [--runs 15] [--commands 40]

1. Start-up: ``kubectl-canary --help`` and ``canary-engine promote --help`` (median wall time of
   fresh processes), target under 150 ms like ``canary-engine --help`` (bench_startup.py).
2. Latency: the controller (``run_controller``) drives the seed's webhook-server against the
   Kubernetes API test server over HTTP (tests/kubeapi.py, as the end-to-end tests do; virtual
   time stands still, so no regular tick interferes); the benchmark sends pause and resume in
   turn, each as the command line does (one merge patch through a KubeCluster), and measures the
   real time from sending the patch until the Canary's status records the command as handled
   (watch event, command tick, status write). Target: median under 250 ms and every command
   under 1 s, against a 60 s analysis interval ("at once").
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_startup, from any directory

from bench_startup import ROOT, wall_ms
from bench_startup import TARGET_MS as STARTUP_TARGET_MS

sys.path.insert(0, str(ROOT))

MEDIAN_TARGET_MS = 250.0
WORST_TARGET_MS = 1000.0


async def latencies(count: int) -> list[float]:
    from engine.cli.operator import send_command
    from engine.shell.clock import RealClock
    from tests.e2e.test_controller_kube import NAME, NS, V2, open_world, start
    from traffic import open_kube_cluster

    out: list[float] = []
    with tempfile.TemporaryDirectory() as directory:
        async with open_world(Path(directory)) as w:
            w.seed()
            run = await start(w)
            try:
                await w.time.run_until(lambda: w.phase() == "Initialized")
                await w.set_image(NAME, V2)
                await w.time.run_until(lambda: w.status().get("canaryWeight") == 15)
                clock = RealClock()
                async with open_kube_cluster(
                    str(w.kubeconfig("bench-user")), sleep=clock.sleep, cache_kinds=()
                ) as cluster:
                    for i in range(count):
                        name = "pause" if i % 2 == 0 else "resume"
                        began = time.perf_counter()
                        sent = await send_command(
                            cluster, clock, namespace=NS, name=NAME, command=name
                        )
                        await handled(lambda: w.status(), sent.id)
                        out.append((time.perf_counter() - began) * 1000.0)
            finally:
                await run.shutdown()
    return out


async def handled(status: Callable[[], dict[str, Any]], command_id: str) -> None:
    """Poll (every millisecond, up to 10 s) until the status records the command as handled."""
    for _ in range(10_000):
        if (status().get("lastCommand") or {}).get("id") == command_id:
            return
        await asyncio.sleep(0.001)
    raise SystemExit(f"command {command_id} was not handled within 10 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--commands", type=int, default=40)
    args = parser.parse_args()
    ok = True
    plugin = shutil.which("kubectl-canary")
    engine = shutil.which("canary-engine")
    for label, command in (
        ("kubectl-canary --help", [plugin] if plugin else None),
        ("canary-engine promote --help", [engine, "promote"] if engine else None),
    ):
        if command is None:
            print(f"{label}: not installed (pip install -e .)")
            ok = False
            continue
        ms = wall_ms([*command, "--help"], args.runs)
        verdict = "OK" if ms < STARTUP_TARGET_MS else "MISSED"
        ok &= ms < STARTUP_TARGET_MS
        print(f"{label}: {ms:.0f} ms  (target < {STARTUP_TARGET_MS:.0f} ms: {verdict})")
    samples = asyncio.run(latencies(args.commands))
    median, worst = statistics.median(samples), max(samples)
    p95 = statistics.quantiles(samples, n=20)[-1]
    verdict = "OK" if median < MEDIAN_TARGET_MS and worst < WORST_TARGET_MS else "MISSED"
    ok &= verdict == "OK"
    print(
        f"command to effect, {len(samples)} commands (pause/resume): median {median:.0f} ms, "
        f"p95 {p95:.0f} ms, worst {worst:.0f} ms  (target median < {MEDIAN_TARGET_MS:.0f} ms, "
        f"worst < {WORST_TARGET_MS:.0f} ms: {verdict})"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
