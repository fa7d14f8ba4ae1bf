"""The metric-provider registry's cost on the Prometheus path: one tick through ``MetricSources``
(every provider; what the controller uses) against the bare ``PrometheusSource``.

Run from the repository root:

    python benchmarks/bench_metric_sources.py [--canaries 1000] [--latency-ms 5] [--ticks 5]

Same fake Prometheus, fleet and tick as ``bench_prometheus.py`` (two builtin metrics per canary,
Istio provider, grouped). Reported: HTTP requests per tick each way (target: equal, 2) and the
median wall time of ``--ticks`` ticks each way. Numbers are per machine: record them with the CPU
model and Python version.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_prometheus import _no_sleep, canaries, fake_prometheus, timed_ticks

from analysis import (
    Check,
    CheckResult,
    Verdict,
    open_metric_sources,
    open_prometheus,
    plan_checks,
)


async def run_ticks(
    url: str, batches: list[list[Check]], *, registry: bool, ticks: int
) -> tuple[int, list[float], bool]:
    """(requests in one tick, wall seconds per tick, every check passed)."""
    if registry:
        async with open_metric_sources(sleep=_no_sleep, now=time.time, concurrency=64) as sources:
            assert sources.prometheus is not None
            await sources.prometheus.ping(url)  # open the connection pool outside the timing
            return _passed(await timed_ticks(sources, batches, ticks))
    async with open_prometheus(sleep=_no_sleep, concurrency=64) as source:
        await source.ping(url)
        return _passed(await timed_ticks(source, batches, ticks))


def _passed(
    ticked: tuple[int, list[float], list[list[CheckResult]]],
) -> tuple[int, list[float], bool]:
    per_tick, walls, results = ticked
    return per_tick, walls, all(r.verdict is Verdict.PASS for batch in results for r in batch)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--canaries", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--ticks", type=int, default=5)
    args = parser.parse_args()

    with fake_prometheus(args.canaries, args.latency_ms / 1000) as url:
        batches = [
            plan_checks(c, {}, provider="istio", default_server=url)
            for c in canaries(args.canaries)
        ]
        bare = asyncio.run(run_ticks(url, batches, registry=False, ticks=args.ticks))
        through = asyncio.run(run_ticks(url, batches, registry=True, ticks=args.ticks))

    print(f"python {platform.python_version()} on {platform.processor() or platform.machine()}")
    print(f"{args.canaries} canaries x 2 builtin metrics; endpoint latency {args.latency_ms:g} ms")
    print(f"{'':18} {'requests/tick':>14} {'tick wall (median)':>20} {'all passed':>11}")
    for label, (requests, walls, passed) in (
        ("PrometheusSource", bare),
        ("MetricSources", through),
    ):
        print(
            f"{label:18} {requests:>14} {statistics.median(walls) * 1000:>17.1f} ms {passed!s:>11}"
        )
    ok = bare[0] == through[0] and bare[2] and through[2]
    print(f"target: the same requests per tick through the registry: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
