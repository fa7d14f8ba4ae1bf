"""Comparative judge throughput: one judged tick of many canaries, scored in one numpy pass.

Run from the repository root:

    python benchmarks/bench_judge.py [--canaries 10000] [--metrics 2] [--samples 60] [--runs 7]

Target: a judged tick of 10,000 canaries x 2 metrics x 60 primary samples each is scored in
under 50 ms. What is timed is ``analysis._judge.score_rows`` on the stacked arrays of the tick
(one row per judged check: its newest canary sample, its primary samples in the window and the
concurrent one), best of several runs with ``time.perf_counter``; stacking the arrays and writing
the explanations is timed separately (``judge_batch`` end to end, which builds one Python object
per check). Numbers are per machine: record them with the CPU model and Python version.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from analysis import JudgeInput, Verdict, judge_batch
from analysis._judge import score_rows

TARGET_MS = 50.0
STEP = 60.0


def stacked(rows: int, samples: int, seed: int = 20261201) -> dict[str, np.ndarray]:
    """The arrays of one tick: canary sample at t = 0, primary samples at -samples+1 .. 0 min."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(10.0, 1000.0, rows)
    primary = level[:, None] * rng.lognormal(0.0, 0.1, (rows, samples))
    primary[rng.random((rows, samples)) < 0.02] = np.nan  # scrape gaps
    times = np.broadcast_to(STEP * np.arange(-samples + 1, 1, dtype=float), (rows, samples))
    value = level * rng.lognormal(0.0, 0.1, rows)
    regressed = rng.random(rows) < 0.05
    value[regressed] *= 2.0
    harmful = rng.integers(0, 3, rows)  # 0 increase, 1 decrease, 2 both
    return {
        "value": value,
        "time": np.zeros(rows),
        "primary_times": np.ascontiguousarray(times),
        "primary_values": primary,
        "window": np.full(rows, STEP * samples),
        "alpha": np.where(harmful == 2, 0.01 / 12 / 2, 0.01 / 12),
        "tolerance": np.full(rows, 0.1),
        "half_step": np.full(rows, STEP / 2),
        "increase": harmful != 1,
        "decrease": harmful != 0,
    }


def _harmful(increase: bool, decrease: bool) -> str:
    if increase and decrease:
        return "both"
    return "increase" if increase else "decrease"


def best_ms(run: object, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        run()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best * 1000.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--canaries", type=int, default=10_000)
    parser.add_argument("--metrics", type=int, default=2)
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    rows = args.canaries * args.metrics
    arrays = stacked(rows, args.samples)
    scored = score_rows(**arrays)
    ms = best_ms(lambda: score_rows(**arrays), args.runs)

    inputs = [
        JudgeInput(
            canary_times=np.array([0.0]),
            canary_values=np.array([arrays["value"][i]]),
            primary_times=arrays["primary_times"][i],
            primary_values=arrays["primary_values"][i],
            now=0.0,
            start=-STEP * args.samples,
            step=STEP,
            window=STEP * args.samples,
            harmful=_harmful(bool(arrays["increase"][i]), bool(arrays["decrease"][i])),
            confidence=0.99,
            looks=12,
        )
        for i in range(rows)
    ]
    outcomes = judge_batch(inputs)
    full_ms = best_ms(lambda: judge_batch(inputs), max(1, args.runs // 3))
    failed = sum(o.verdict is Verdict.FAIL for o in outcomes)

    print(f"python {platform.python_version()} on {platform.machine()}, numpy {np.__version__}")
    print(
        f"{args.canaries} canaries x {args.metrics} metrics x {args.samples} samples = "
        f"{rows} judged checks; {int(scored.above.sum() + scored.below.sum())} outside the "
        f"envelope ({failed} failed verdicts end to end)"
    )
    verdict = "OK" if ms < TARGET_MS else "MISSED"
    print(f"score_rows (one numpy pass): {ms:.1f} ms  (target < {TARGET_MS:.0f} ms: {verdict})")
    print(f"judge_batch end to end (stacking + explanations): {full_ms:.0f} ms")
    return 0 if ms < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
