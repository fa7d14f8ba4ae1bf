"""The comparative judge's false alarms on A/A runs, beside the bound its explanations state.

Run from the repository root:

    python benchmarks/judge_false_alarms.py [--runs 8000] [--history 1440] [--looks 12]

An A/A run draws the primary's history (``--history`` one-minute samples before the analysis),
then ``--looks`` canary samples and as many concurrent primary samples, all from one
distribution, and judges the analysis at each of its looks (the canary's samples so far, the
primary's history and concurrent samples so far, ``tolerance: 0``, the default ``confidence`` and
``window``). A run is a false alarm when any look fails. Four metric shapes (normal, log-normal,
Poisson counts, centred on zero) and both ``harmful: increase`` and ``harmful: both``; each line
prints the share of runs that failed with its Wilson 95 % interval and the false-alarm bound the
judge states for that window (``JudgeOutcome.false_alarm_bound``: 1 - confidence, or looks x
directions / (samples + 1) when the window holds too few samples for that). Exits 1 when an
interval lies wholly above its bound (a broken guarantee, not noise).

The runs are seeded (``--seed``), so a figure in ``docs/judge.md`` can be reproduced exactly.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from _scoring import wilson  # (a script's own directory, benchmarks/, is on sys.path)

from analysis import JudgeInput, Verdict, judge_batch

STEP = 60.0
#: Runs judged per ``judge_batch`` call (each look of a run is one row of history + samples).
CHUNK = 250

Draw = Callable[[np.random.Generator, int], np.ndarray]
SHAPES: dict[str, Draw] = {
    "normal": lambda rng, n: rng.normal(200.0, 20.0, n),
    "log-normal": lambda rng, n: rng.lognormal(0.0, 1.0, n),
    "poisson counts": lambda rng, n: rng.poisson(3.0, n).astype(float),
    "around zero": lambda rng, n: rng.normal(0.0, 1.0, n),
}


def looks_of_one_run(
    rng: np.random.Generator, draw: Draw, *, history: int, looks: int, harmful: str
) -> list[JudgeInput]:
    """The judge's input at each look of one A/A run (canary samples at 60, 120, ... seconds;
    history one a minute before time 0)."""
    past = draw(rng, history)
    canary = draw(rng, looks)
    primary = draw(rng, looks)
    c_times = STEP * np.arange(1, looks + 1)
    h_times = -STEP * np.arange(history, 0, -1) + STEP / 2
    return [
        JudgeInput(
            canary_times=c_times[: j + 1],
            canary_values=canary[: j + 1],
            primary_times=np.concatenate([h_times, c_times[: j + 1]]),
            primary_values=np.concatenate([past, primary[: j + 1]]),
            now=float(c_times[j]),
            start=0.0,
            step=STEP,
            window=24 * 3600.0,
            harmful=harmful,
            confidence=0.99,
            tolerance=0.0,
            looks=looks,
        )
        for j in range(looks)
    ]


def false_alarms(
    draw: Draw, *, runs: int, history: int, looks: int, harmful: str, seed: int
) -> tuple[int, float]:
    """How many of ``runs`` A/A runs failed at some look, and the bound the judge stated."""
    rng = np.random.default_rng(seed)
    failed = 0
    bound = 0.0
    for first in range(0, runs, CHUNK):
        inputs: list[JudgeInput] = []
        for _ in range(min(CHUNK, runs - first)):
            inputs += looks_of_one_run(rng, draw, history=history, looks=looks, harmful=harmful)
        outcomes = judge_batch(inputs)
        for run in range(len(inputs) // looks):
            mine = outcomes[run * looks : (run + 1) * looks]
            failed += any(o.verdict is Verdict.FAIL for o in mine)
            bound = max(bound, max(o.false_alarm_bound for o in mine))
    return failed, bound


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=8000)
    parser.add_argument("--history", type=int, default=1440, help="primary samples before t=0")
    parser.add_argument("--looks", type=int, default=12)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    print(
        f"{args.runs} A/A runs each, {args.looks} looks, {args.history} one-minute samples of "
        "history, tolerance 0, confidence 0.99"
    )
    broken = False
    for harmful in ("increase", "both"):
        for name, draw in SHAPES.items():
            failed, bound = false_alarms(
                draw,
                runs=args.runs,
                history=args.history,
                looks=args.looks,
                harmful=harmful,
                seed=args.seed,
            )
            low, high = wilson(failed, args.runs)
            verdict = "ABOVE THE BOUND" if low > bound else "ok"
            broken |= low > bound
            print(
                f"harmful: {harmful:8} {name:15} {failed / args.runs:6.2%} failed "
                f"[{low:.2%}, {high:.2%}]  stated bound {bound:.2%}  {verdict}"
            )
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
