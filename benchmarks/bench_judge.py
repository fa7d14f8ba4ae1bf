"""Comparative judge throughput: one judged tick of many canaries, scored in one numpy pass.

Run from the repository root:

    python benchmarks/bench_judge.py [--canaries 10000] [--metrics 2] [--samples 60] [--runs 7]

Target: a judged tick of 10,000 canaries x 2 metrics x 60 samples each is scored in under
50 ms. What is timed is ``analysis._judge.score_matrix`` on the stacked arrays of the tick (one
row per judged check: its 60 canary samples since the analysis started and 120 primary samples,
history then concurrent), best of several runs with ``time.perf_counter``; stacking the arrays
and writing the explanations is timed separately (``judge_batch`` end to end, which builds one
Python object per check). Numbers are per machine: record them with the CPU model and Python
version.
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

from analysis import JudgeInput, Verdict, judge_batch
from analysis._judge import score_matrix

TARGET_MS = 50.0
STEP = 60.0


def stacked(checks: int, samples: int, seed: int = 20261201) -> dict[str, np.ndarray]:
    """The arrays of one tick: per check, ``samples`` canary samples (one a minute, the newest at
    t = 0) and the primary's samples over twice that span (history, then concurrent)."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(10.0, 1000.0, checks)
    m = 2 * samples
    primary = level[:, None] * rng.lognormal(0.0, 0.1, (checks, m))
    primary[rng.random((checks, m)) < 0.02] = np.nan  # scrape gaps
    p_times = np.ascontiguousarray(
        np.broadcast_to(STEP * np.arange(-m + 1, 1, dtype=float), (checks, m))
    )
    canary = level[:, None] * rng.lognormal(0.0, 0.1, (checks, samples))
    regressed = rng.random(checks) < 0.05
    canary[regressed, -3:] *= 2.0
    c_times = np.ascontiguousarray(p_times[:, -samples:])
    harmful = rng.integers(0, 3, checks)  # 0 increase, 1 decrease, 2 both
    return {
        "canary_times": c_times,
        "canary_values": canary,
        "primary_times": p_times,
        "primary_values": primary,
        "reference_end": c_times[:, 0].copy(),  # the analysis started at the first sample
        "window": np.full(checks, STEP * m),
        "alpha": np.where(harmful == 2, 0.01 / 12 / 2, 0.01 / 12),
        "tolerance": np.full(checks, 0.1),
        "half_step": np.full(checks, STEP / 2),
        "increase": harmful != 1,
        "decrease": harmful != 0,
    }


def _harmful(increase: bool, decrease: bool) -> str:
    if increase and decrease:
        return "both"
    return "increase" if increase else "decrease"


def best_ms(run: Callable[[], object], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best * 1000.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--canaries", type=int, default=10_000)
    parser.add_argument("--metrics", type=int, default=2)
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    checks = args.canaries * args.metrics
    arrays = stacked(checks, args.samples)
    scored = score_matrix(**arrays)
    ms = best_ms(lambda: score_matrix(**arrays), args.runs)

    inputs = [
        JudgeInput(
            canary_times=arrays["canary_times"][i],
            canary_values=arrays["canary_values"][i],
            primary_times=arrays["primary_times"][i],
            primary_values=arrays["primary_values"][i],
            now=0.0,
            start=float(arrays["canary_times"][i, 0]),
            step=STEP,
            window=float(arrays["window"][i]),
            harmful=_harmful(bool(arrays["increase"][i]), bool(arrays["decrease"][i])),
            confidence=0.99,
            looks=12,
        )
        for i in range(checks)
    ]
    outcomes = judge_batch(inputs)
    full_ms = best_ms(lambda: judge_batch(inputs), max(1, args.runs // 3))
    failed = sum(o.verdict is Verdict.FAIL for o in outcomes)

    print(f"python {platform.python_version()} on {platform.machine()}, numpy {np.__version__}")
    print(
        f"{args.canaries} canaries x {args.metrics} metrics x {args.samples} canary samples "
        f"(and {2 * args.samples} primary samples) = {checks} judged checks; "
        f"{int(scored.breach.any(axis=1).sum())} fail ({failed} failed verdicts end to end)"
    )
    verdict = "OK" if ms < TARGET_MS else "MISSED"
    print(f"score_matrix (one numpy pass): {ms:.1f} ms  (target < {TARGET_MS:.0f} ms: {verdict})")
    print(f"judge_batch end to end (stacking + explanations): {full_ms:.0f} ms")
    return 0 if ms < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
