"""The soak: a fleet of canaries released over and over under injected faults, on virtual time.

Run from the repository root:

    python benchmarks/soak.py [--canaries 1000] [--releases 10] [--ticks 10000] [--interval 60]
                              [--bad-fraction 0.3] [--seed 1] [--no-faults] [--json]

The controller runs exactly as ``canary-engine run`` wires it, on a ``VirtualClock`` against an
in-memory API server that answers 429 / 500 (also after a write went through), makes writes
conflict (409), drops the Canary watch and expires Events after an hour; a Prometheus that goes
down for minutes at a time and answers no data or garbage (±Inf, NaN, strings, bools, broken
bodies); webhooks that hang until their timeout or answer 500 (``_soak_faults``). Every canary
is released ``--releases`` times (30 % of releases bad), each release a few intervals after the
last was decided; the run ends when every rollout is decided, or at ``--ticks`` intervals of
virtual time. What is checked is in ``_soak`` (every rollout decided; no promotion of a bad
release, on a tick with a failing, missing or garbage answer, or before the steps' passing
analyses; the primary runs what the outcome says; memory flat over the second half).

Printed: wall and virtual time, canary ticks (and how many ended in an error), releases and
decisions, the faults injected by kind, the warnings the controller logged, memory every
``--sample-every`` intervals (Python's allocated blocks after a collection, and RSS) and its
growth over the second half. Exit status 1 when a check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _soak import SoakConfig, SoakResult, run_soak
from _soak_faults import FaultRates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--canaries", type=int, default=1000)
    parser.add_argument("--releases", type=int, default=10, help="releases per canary")
    parser.add_argument(
        "--ticks", type=int, default=10_000, help="bound of the run, in analysis intervals"
    )
    parser.add_argument("--interval", type=int, default=60, help="analysis interval, seconds")
    parser.add_argument("--bad-fraction", type=float, default=0.3)
    parser.add_argument("--sample-every", type=int, default=10, help="intervals between samples")
    parser.add_argument(
        "--max-growth",
        type=float,
        default=0.05,
        help="largest memory growth at steady state accepted (fraction, blocks and RSS)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-faults", action="store_true", help="the same run without faults")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    config = SoakConfig(
        canaries=args.canaries,
        releases=args.releases,
        ticks=args.ticks,
        interval=args.interval,
        bad_fraction=args.bad_fraction,
        sample_every=args.sample_every,
        rates=FaultRates.none() if args.no_faults else FaultRates(),
        seed=args.seed,
        verbose=not args.json,
    )
    if not args.json:
        print(
            f"soak: {config.canaries:,} canaries x {config.releases} releases, interval "
            f"{config.interval}s, bound {config.ticks:,} intervals, seed {config.seed}, "
            f"{'no faults' if args.no_faults else 'faults on'} "
            f"({platform.python_version()}, {os.cpu_count()} CPUs)",
            file=sys.stderr,
        )
    result = asyncio.run(run_soak(config))
    failures = _failures(result, args.max_growth)
    if args.json:
        print(json.dumps(_as_json(result, failures), indent=2))
    else:
        _print(result, failures)
    return 1 if failures else 0


def _failures(result: SoakResult, max_growth: float) -> list[str]:
    failures = [f"violation: {v}" for v in result.violations]
    failures += [f"undecided at the end: {u}" for u in result.undecided[:20]]
    growth = result.memory_growth()
    if growth.blocks > max_growth or growth.rss > max_growth:
        failures.append(
            f"memory grew at steady state: blocks {growth.blocks:+.1%}, RSS "
            f"{growth.rss:+.1%} (bound {max_growth:.0%})"
        )
    return failures


def _print(result: SoakResult, failures: list[str]) -> None:
    config = result.config
    interval = config.interval
    growth = result.memory_growth()
    print(f"wall time        {result.wall_seconds:,.1f} s ({result.cpu_seconds:,.1f} s of CPU)")
    print(
        f"virtual time     {result.virtual_seconds / interval:,.0f} intervals "
        f"({result.virtual_seconds / 3600:,.1f} h; bound {config.ticks:,})"
    )
    print(
        f"canary ticks     {result.ticks:,} ({result.ticks / result.wall_seconds:,.0f}/s; "
        f"{result.tick_errors:,} ended in an error, retried next interval)"
    )
    print(
        f"releases         {sum(result.releases.values()):,} "
        f"({result.releases['good']:,} good, {result.releases['bad']:,} bad)"
    )
    print(
        f"decided          {result.decided:,}: "
        + ", ".join(f"{kind} {n:,}" for kind, n in sorted(result.decisions.items()))
    )
    print(f"undecided        {len(result.undecided):,}")
    print(
        f"promotions       {result.promotions:,} template copies "
        f"(longest rollout {result.decision_ticks_max:.1f} intervals)"
    )
    print("faults injected  " + _counts(result.faults))
    print(f"canary watches   {result.watches:,} opened (the first, then after each drop)")
    print("controller logs  " + _counts(result.logs))
    print(
        f"memory           steady state ({growth.samples} samples over {growth.ticks:,} ticks), "
        f"second half vs first: blocks {growth.blocks:+.2%} "
        f"(median drift {growth.blocks_per_tick:+.3f} per tick), RSS {growth.rss:+.2%}; "
        f"end {result.memory[-1].rss_kib / 1024:,.0f} MiB RSS"
    )
    for failure in failures:
        print(f"FAILED: {failure}")
    if not failures:
        print("every rollout decided, no promotion without a passing analysis, memory flat")


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{kind} {n:,}" for kind, n in counter.most_common()) or "none"


def _as_json(result: SoakResult, failures: list[str]) -> dict[str, object]:
    growth = result.memory_growth()
    return {
        "canaries": result.config.canaries,
        "releasesPerCanary": result.config.releases,
        "interval": result.config.interval,
        "wallSeconds": result.wall_seconds,
        "cpuSeconds": result.cpu_seconds,
        "virtualIntervals": result.virtual_seconds / result.config.interval,
        "ticks": result.ticks,
        "tickErrors": result.tick_errors,
        "releases": dict(result.releases),
        "decisions": dict(result.decisions),
        "undecided": result.undecided,
        "promotions": result.promotions,
        "violations": result.violations,
        "faults": dict(result.faults),
        "watchesOpened": result.watches,
        "logs": dict(result.logs),
        "memory": [dataclasses.asdict(s) for s in result.memory],
        "memoryGrowth": dataclasses.asdict(growth),
        "failures": failures,
    }


if __name__ == "__main__":
    sys.exit(main())
