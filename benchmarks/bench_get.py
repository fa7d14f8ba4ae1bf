"""``canary-engine get``: how fast it answers, how fast ``--watch`` shows a change, how big the
status it reads may grow.

Run from the repository root (with the package installed):

    python benchmarks/bench_get.py [--runs 10] [--changes 20]

1. Start-up: ``canary-engine get --help`` (median wall time of fresh processes), target under
   150 ms like ``canary-engine --help`` (bench_startup.py).
2. One ``get`` (a fresh process: start, load the kubeconfig, GET the Canary, LIST its namespace's
   events, print) against the Kubernetes API test server over HTTP (tests/kubeapi.py) holding the
   seed's webhook-server mid-analysis and 200 events in its namespace. Target: median under
   1.5 s. Most of it is imports: kubernetes-asyncio (~0.3-0.5 s, the Cluster seam), the
   ``analysis`` package (numpy, httpx: ~0.25 s, for ``redact``) and ``config`` (pydantic, ~0.2 s,
   for the spec's defaults); the requests themselves take milliseconds.
3. ``--watch``: time from a status patch (over HTTP, as the controller writes it) until the
   running ``get --watch`` has printed the new value. Target: median under 250 ms.
4. Size: the largest ``status.lastAnalysis`` the controller can write (32 checks with
   512-character explanations, 32 webhooks), target under 32 KiB (etcd objects may hold 1.5 MiB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_startup, from any directory

from bench_startup import CLI, ROOT, wall_ms
from bench_startup import TARGET_MS as STARTUP_TARGET_MS

sys.path.insert(0, str(ROOT))

GET_TARGET_MS = 1500.0
WATCH_TARGET_MS = 250.0
SIZE_TARGET = 32 * 1024
NS, NAME = "staging", "webhook-server"


def canary() -> dict[str, Any]:
    import yaml

    body: dict[str, Any] = next(
        yaml.safe_load_all((ROOT / "config/deploy/samples/webhook-server.yaml").read_text())
    )
    body["status"] = {
        "phase": "Progressing",
        "canaryWeight": 15,
        "failedChecks": 1,
        "lastAnalysis": {
            "time": "2026-01-01T00:03:00Z",
            "checks": [
                {"metric": m, "target": "canary", "value": 99.5, "min": 95, "verdict": "pass"}
                for m in ("request-success-rate", "request-duration", "error-rate")
            ],
            "webhooks": [{"name": "load-test", "type": "rollout", "ok": True}],
        },
    }
    return body


def event(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{NAME if i % 2 else 'other'}.{i:04d}", "namespace": NS},
        "involvedObject": {"kind": "Canary", "name": NAME if i % 2 else "other"},
        "type": "Normal",
        "message": f"Advance {NAME}.{NS} canary weight {i % 30}",
        "lastTimestamp": f"2026-01-01T0{i // 600}:{i // 10 % 60:02d}:00Z",
    }


async def measure(runs: int, changes: int) -> tuple[float, list[float]]:
    import aiohttp

    from tests.kubeapi import serve_kube_api

    async with serve_kube_api() as api:
        api.store.seed(canary(), *(event(i) for i in range(200)))
        with tempfile.TemporaryDirectory() as tmp:
            config = str(api.write_kubeconfig(Path(tmp) / "kubeconfig", namespace=NS))
            once = []
            for _ in range(runs):
                start = time.perf_counter()
                proc = await asyncio.create_subprocess_exec(
                    *CLI, "get", NAME, "--kubeconfig", config, stdout=asyncio.subprocess.PIPE
                )
                await proc.communicate()
                once.append((time.perf_counter() - start) * 1000.0)
                assert proc.returncode == 0
            watch = await asyncio.create_subprocess_exec(
                *CLI,
                "get",
                NAME,
                "-w",
                "-o",
                "json",
                "--kubeconfig",
                config,
                stdout=asyncio.subprocess.PIPE,
            )
            assert watch.stdout is not None
            await watch.stdout.readline()  # the first document
            url = f"{api.url}/apis/flagger.app/v1beta1/namespaces/{NS}/canaries/{NAME}/status"
            headers = {"Content-Type": "application/merge-patch+json"}
            seen = []
            async with aiohttp.ClientSession() as session:
                for i in range(changes):
                    patch = {"status": {"failedChecks": i + 2}}
                    start = time.perf_counter()
                    async with session.patch(url, data=json.dumps(patch), headers=headers) as r:
                        assert r.status == 200
                    doc = json.loads(await watch.stdout.readline())
                    seen.append((time.perf_counter() - start) * 1000.0)
                    assert doc["failedChecks"] == i + 2
            watch.kill()
            await watch.wait()
    return statistics.median(once), seen


def largest_status() -> int:
    from analysis import CheckKind, CheckResult, HookOutcome, MetricQuery, Verdict
    from config import CanaryStatus, Webhook
    from engine.shell.last_analysis import record_tick

    hooks = [Webhook(name=f"hook-{i:02d}-" + "x" * 40, url="http://t/") for i in range(40)]
    checks = [
        CheckResult(
            query=MetricQuery(
                canary="s/n", metric=f"metric-{i}-" + "m" * 60, kind=CheckKind.TEMPLATE
            ),
            hi=1.0,
            value=1.5,
            verdict=Verdict.FAIL,
            message="",
            explanation="e" * 5000,
        )
        for i in range(100)
    ]
    status = record_tick(
        CanaryStatus(),
        CanaryStatus(),
        checks=checks,
        hook_calls=[HookOutcome(h, False, "") for h in hooks],
        hooks=hooks,
        routes=None,
        when="2026-01-01T00:00:00Z",
    )
    return len(json.dumps(status.to_body()["lastAnalysis"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--changes", type=int, default=20)
    args = parser.parse_args()
    ok = True

    def report(label: str, value: float, target: float, unit: str = "ms") -> None:
        nonlocal ok
        good = value < target
        ok = ok and good
        verdict = "OK" if good else "MISSED"
        print(f"{label}: {value:.0f} {unit}  (target < {target:.0f} {unit}: {verdict})")

    report(
        "canary-engine get --help", wall_ms([*CLI, "get", "--help"], args.runs), STARTUP_TARGET_MS
    )
    once, seen = asyncio.run(measure(args.runs, args.changes))
    report("canary-engine get (fresh process, 200 events in the namespace)", once, GET_TARGET_MS)
    report(
        "get --watch: status patch to printed (median)", statistics.median(seen), WATCH_TARGET_MS
    )
    print(f"  worst of {len(seen)}: {max(seen):.0f} ms")
    report("largest status.lastAnalysis", largest_status(), SIZE_TARGET, "bytes")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
