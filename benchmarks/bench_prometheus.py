"""Prometheus requests and wall time of one analysis tick for many canaries: grouped vs not.

Run from the repository root:

    python benchmarks/bench_prometheus.py [--canaries 1000] [--latency-ms 5] [--ticks 5]

A Prometheus-compatible endpoint is served on 127.0.0.1 by a separate process (aiohttp): it
answers ``/api/v1/query`` (GET or POST form) after ``--latency-ms``, with one sample for a
per-canary query and one series per canary for a grouped one (``sum by (...)`` / ``by (le, ...)``).
The client is the real ``PrometheusSource`` (``open_prometheus``), at most 64 requests in flight,
and a tick is ``analyze_batches`` over every canary's planned checks (the two builtin metrics,
Istio provider): one fetch, one vectorised evaluation. Planning (``plan_checks``) is timed
separately. Reported: HTTP requests per tick (target: 2 grouped, against 2 x canaries as Flagger
sends, one per check) and the median wall time of ``--ticks`` ticks each way. Numbers are per
machine: record them with the CPU model and Python version.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import platform
import re
import socket
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from analysis import (
    Check,
    CheckResult,
    MetricSources,
    PrometheusSource,
    Verdict,
    analyze_batches,
    open_prometheus,
    plan_checks,
)
from config import Canary, parse_canary

SUCCESS_RATE = 99.9
DURATION_MS = 120.0
TARGET_GROUPED_REQUESTS = 2


def names(count: int) -> list[tuple[str, str]]:
    return [(f"team-{i % 25}", f"app-{i}") for i in range(count)]


# ---------------------------------------------------------------------------------------------
# The fake Prometheus (runs in its own process)
# ---------------------------------------------------------------------------------------------


def serve(port: int, count: int, latency: float) -> None:
    from aiohttp import web

    fleet = names(count)
    by_clause = re.compile(r"by \(([^)]*)\)")

    def answer(query: str) -> dict[str, Any]:
        value = DURATION_MS if "histogram_quantile" in query else SUCCESS_RATE
        found = by_clause.findall(query)
        labels = [x.strip() for clause in found for x in clause.split(",") if x.strip() != "le"]
        if not labels:  # per-canary query: one sample
            result = [{"metric": {}, "value": [time.time(), repr(value)]}]
        else:
            ns_label, name_label = labels[0], labels[1]
            result = [
                {"metric": {ns_label: ns, name_label: name}, "value": [time.time(), repr(value)]}
                for ns, name in fleet
            ]
        return {"status": "success", "data": {"resultType": "vector", "result": result}}

    async def handle(request: web.Request) -> web.Response:
        if request.method == "POST":
            query = str((await request.post())["query"])
        else:
            query = request.query["query"]
        await asyncio.sleep(latency)
        return web.json_response(answer(query))

    app = web.Application()
    app.router.add_route("*", "/api/v1/query", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, handle_signals=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_listening(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"the fake Prometheus did not listen on port {port}")


@contextmanager
def fake_prometheus(count: int, latency: float) -> Iterator[str]:
    """Serve the fake Prometheus for ``count`` canaries in its own process; yield its URL."""
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(
        target=serve, args=(port, count, latency), daemon=True
    )
    server.start()
    try:
        wait_listening(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.join(timeout=5)


# ---------------------------------------------------------------------------------------------
# The client side
# ---------------------------------------------------------------------------------------------


def canaries(count: int) -> list[Canary]:
    out = []
    for namespace, name in names(count):
        out.append(
            parse_canary(
                {
                    "apiVersion": "flagger.app/v1beta1",
                    "kind": "Canary",
                    "metadata": {"name": name, "namespace": namespace},
                    "spec": {
                        "provider": "istio",
                        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                        "service": {"port": 80},
                        "analysis": {
                            "interval": "1m",
                            "threshold": 5,
                            "stepWeight": 10,
                            "maxWeight": 50,
                            "metrics": [
                                {"name": "request-success-rate", "thresholdRange": {"min": 99}},
                                {"name": "request-duration", "thresholdRange": {"max": 500}},
                            ],
                        },
                    },
                }
            )
        )
    return out


async def _no_sleep(seconds: float) -> None:
    return None


async def timed_ticks(
    source: PrometheusSource | MetricSources, batches: list[list[Check]], ticks: int
) -> tuple[int, list[float], list[list[CheckResult]]]:
    """(requests in one tick, wall seconds per tick, the last tick's results)."""
    walls: list[float] = []
    results: list[list[CheckResult]] = []
    per_tick = 0
    for _ in range(ticks):
        before = source.requests_sent
        started = time.perf_counter()
        results = await analyze_batches(source, batches)
        walls.append(time.perf_counter() - started)
        per_tick = source.requests_sent - before
    return per_tick, walls, results


async def run_ticks(
    url: str, batches: list[list[Check]], *, group: bool, ticks: int
) -> tuple[int, list[float], list[list[CheckResult]]]:
    """(requests in one tick, wall seconds per tick, the last tick's results)."""
    async with open_prometheus(sleep=_no_sleep, group=group, concurrency=64) as source:
        await source.ping(url)  # open the connection pool outside the timing
        return await timed_ticks(source, batches, ticks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--canaries", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--ticks", type=int, default=5)
    args = parser.parse_args()

    with fake_prometheus(args.canaries, args.latency_ms / 1000) as url:
        fleet = canaries(args.canaries)
        started = time.perf_counter()
        batches = [plan_checks(c, {}, provider="istio", default_server=url) for c in fleet]
        planning = time.perf_counter() - started
        grouped = asyncio.run(run_ticks(url, batches, group=True, ticks=args.ticks))
        single = asyncio.run(run_ticks(url, batches, group=False, ticks=args.ticks))

    checks = sum(len(b) for b in batches)
    for label, (_, _, results) in (("grouped", grouped), ("per-check", single)):
        flat = [r for batch in results for r in batch]
        bad = [r for r in flat if r.verdict is not Verdict.PASS]
        if len(flat) != checks or bad:
            print(f"{label}: {len(bad)} of {len(flat)} checks did not pass: {bad[:1]}")
            return 1
    same = [[(r.verdict, r.value) for r in b] for b in grouped[2]] == [
        [(r.verdict, r.value) for r in b] for b in single[2]
    ]
    print(f"python {platform.python_version()} on {platform.processor() or platform.machine()}")
    print(
        f"{args.canaries} canaries x 2 builtin metrics = {checks} checks per tick; endpoint "
        f"latency {args.latency_ms:g} ms; plan_checks for all: {planning * 1000:.1f} ms"
    )
    print(f"{'':10} {'requests/tick':>14} {'tick wall (median)':>20} {'min':>9} {'max':>9}")
    for label, (requests, walls, _) in (("grouped", grouped), ("per-check", single)):
        print(
            f"{label:10} {requests:>14} {statistics.median(walls) * 1000:>17.1f} ms "
            f"{min(walls) * 1000:>6.1f} ms {max(walls) * 1000:>6.1f} ms"
        )
    print(f"grouped and per-check answers identical: {same}")
    ok = grouped[0] <= TARGET_GROUPED_REQUESTS and single[0] == checks and same
    print(
        f"target: {TARGET_GROUPED_REQUESTS} requests per tick grouped vs {checks} per check: "
        f"{'met' if ok else 'NOT met'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
