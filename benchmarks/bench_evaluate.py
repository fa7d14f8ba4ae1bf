"""Evaluator throughput: numpy ``evaluate`` vs the plain-Python ``evaluate_reference``.

Run from the repository root:

    python benchmarks/bench_evaluate.py [--checks 1000000] [--runs 7]

Targets: ``evaluate`` scores 10^6 checks in under 50 ms and is more than 50x faster than the
reference over the same checks. Both are timed on prepared inputs (arrays for numpy, lists for the
loop; building them is not timed), best of several runs with ``time.perf_counter``. The mix is
realistic-ish: 5% NaN (no data), 1% failed queries, 10% missing lower / 30% missing upper bounds,
values straddling the bounds (some exactly on them) and a few ±Inf. Numbers are per machine:
record them with the CPU model and Python version.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from analysis import Verdict, evaluate, evaluate_reference

TARGET_MS = 50.0
TARGET_SPEEDUP = 50.0


def make_checks(n: int, seed: int = 20261126) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    lo = rng.uniform(90.0, 99.0, n)
    hi = lo + rng.uniform(0.5, 10.0, n)
    values = rng.uniform(85.0, 110.0, n)
    on_edge = rng.random(n) < 0.02
    values[on_edge] = lo[on_edge]
    values[rng.random(n) < 0.05] = np.nan
    values[rng.random(n) < 0.001] = np.inf
    values[rng.random(n) < 0.001] = -np.inf
    lo[rng.random(n) < 0.10] = -np.inf
    hi[rng.random(n) < 0.30] = np.inf
    failed = rng.random(n) < 0.01
    return values, lo, hi, failed


def best_of(runs: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7, help="numpy runs (the loop gets fewer)")
    args = parser.parse_args()
    n = args.checks

    values, lo, hi, failed = make_checks(n)
    lists = (values.tolist(), lo.tolist(), hi.tolist(), failed.tolist())

    codes = evaluate(values, lo, hi, failed)
    reference = evaluate_reference(*lists)
    if codes.tolist() != reference:
        print("MISMATCH between evaluate and evaluate_reference", file=sys.stderr)
        return 1

    numpy_s = best_of(args.runs, lambda: evaluate(values, lo, hi, failed))
    python_s = best_of(max(2, args.runs // 3), lambda: evaluate_reference(*lists))
    speedup = python_s / numpy_s

    counts = np.bincount(codes, minlength=len(Verdict))
    mix = ", ".join(f"{v.name.lower()} {counts[v] / n:.1%}" for v in Verdict)
    print(f"canary-engine evaluator benchmark: {n:,} checks ({mix})")
    print(
        f"Python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}, "
        f"{platform.processor() or platform.platform()}"
    )
    print()
    print(f"{'implementation':<24}{'best (ms)':>12}{'checks/s':>16}{'target':>18}")
    print("-" * 70)
    ok_time = numpy_s * 1e3 < TARGET_MS
    ok_speed = speedup > TARGET_SPEEDUP
    print(
        f"{'evaluate (numpy)':<24}{numpy_s * 1e3:>12.2f}{n / numpy_s:>16,.0f}"
        f"{f'< {TARGET_MS:.0f} ms ' + ('ok' if ok_time else 'MISSED'):>18}"
    )
    print(
        f"{'evaluate_reference':<24}{python_s * 1e3:>12.2f}{n / python_s:>16,.0f}"
        f"{'(plain Python)':>18}"
    )
    print("-" * 70)
    print(
        f"{'speedup':<24}{speedup:>11.1f}x{'':>16}"
        f"{f'> {TARGET_SPEEDUP:.0f}x ' + ('ok' if ok_speed else 'MISSED'):>18}"
    )
    return 0 if ok_time and ok_speed else 2


if __name__ == "__main__":
    raise SystemExit(main())
