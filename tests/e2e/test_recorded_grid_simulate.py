"""``simulate`` judges a recording as a live run would read it: one point per step of the judge.

A live run asks Prometheus for range queries, answered one point per step (the latest sample
within the 5-minute lookback). So a recording denser or sparser than the step must give the
verdicts of the same recording resampled onto the step's grid, in every tick: a row per second
must not be held to the envelope 60 times per minute, and a row every two minutes must not leave
every other tick without a sample.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np

from analysis import Recording
from config import Canary, Manifests, parse_canary
from engine.cli.simulate import SimulationResult, simulate
from tests.e2e.test_simulate_judge import judged_canary

Samples = dict[tuple[str, str], list[tuple[float, float | None]]]
KEY = ("canary", "latency"), ("primary", "latency")


def run(canary: Canary, samples: Samples) -> SimulationResult:
    return asyncio.run(simulate(Manifests(canaries=[canary]), canary, Recording(samples)))


def verdicts(result: SimulationResult) -> list[tuple[float, str]]:
    doc = result.to_json()
    return [
        (tick["t"], check["verdict"])
        for tick in doc["ticks"]
        for check in tick["checks"]
        if check["metric"] == "latency"
    ]


def on_grid(samples: Samples, end: float, step: float = 60.0) -> Samples:
    """The recording a range query of ``step`` reads: at each step, the latest row within 300 s."""
    out: Samples = {}
    for key, rows in samples.items():
        rows = sorted(rows)
        times = np.array([t for t, _ in rows])
        start = math.floor(times[0] / step) * step
        grid: list[tuple[float, float | None]] = []
        for point in np.arange(start, end + step / 2, step):
            i = int(np.searchsorted(times, point, side="right")) - 1
            if i >= 0 and point - times[i] <= 300:
                grid.append((float(point), rows[i][1]))
        out[key] = grid
    return out


def history(seed: int = 3) -> list[tuple[float, float | None]]:
    """A day of one-minute primary samples around 200 (noise sd 10) before time 0."""
    rng = np.random.default_rng(seed)
    return [(float(t), float(rng.normal(200.0, 10.0))) for t in range(-86_340, 1, 60)]


def canary() -> Canary:
    body: dict[str, Any] = judged_canary(threshold=1)
    return parse_canary(body)


def test_a_dense_recording_gives_the_verdicts_of_its_one_per_step_reading() -> None:
    # A row per second from time 0. Between the minutes the canary has short spikes that a live
    # range query (one point per minute) never reads; the minute rows are like the primary's.
    rng = np.random.default_rng(11)
    end = 1500
    c_rows: list[tuple[float, float | None]] = []
    p_rows = history()
    for t in range(1, end + 1):
        spike = t % 60 == 30
        c_rows.append((float(t), 900.0 if spike else float(rng.normal(200.0, 10.0))))
        p_rows.append((float(t), float(rng.normal(200.0, 10.0))))
    dense: Samples = {KEY[0]: c_rows, KEY[1]: p_rows}
    got = run(canary(), dense)
    want = run(canary(), on_grid(dense, end))
    assert want.result == "promoted"
    assert verdicts(got) == verdicts(want)
    assert got.result == want.result and got.decided_at == want.decided_at
    assert got.to_json() == want.to_json()


def test_a_sparse_recording_gives_the_verdicts_of_its_one_per_step_reading() -> None:
    # A row every 2 minutes at a 1-minute interval: every tick still reads the latest row (as
    # the static check of the same row does), so no tick is "no sample in the last 1m".
    rng = np.random.default_rng(12)
    end = 1800
    c_rows: list[tuple[float, float | None]] = []
    p_rows = [(t, v) for t, v in history() if t % 120 == 0]
    for t in range(120, end + 1, 120):
        c_rows.append((float(t), float(rng.normal(200.0, 10.0))))
        p_rows.append((float(t), float(rng.normal(200.0, 10.0))))
    sparse: Samples = {KEY[0]: c_rows, KEY[1]: p_rows}
    got = run(canary(), sparse)
    want = run(canary(), on_grid(sparse, end))
    assert want.result == "promoted"
    assert "inconclusive" not in {v for _, v in verdicts(want)}
    assert verdicts(got) == verdicts(want)
    assert got.result == want.result and got.decided_at == want.decided_at


def test_a_gap_longer_than_the_lookback_is_still_no_data() -> None:
    # Both versions stop answering for 10 minutes: the last rows are read for 5 minutes, then
    # the judge has nothing in the last step (the source is silent: inconclusive, by default).
    rng = np.random.default_rng(13)
    c_rows: list[tuple[float, float | None]] = []
    p_rows = history()
    gap = range(301, 901)
    for t in range(1, 1801):
        if t in gap:
            continue
        c_rows.append((float(t), float(rng.normal(200.0, 10.0))))
        p_rows.append((float(t), float(rng.normal(200.0, 10.0))))
    got = verdicts(run(canary(), {KEY[0]: c_rows, KEY[1]: p_rows}))
    silent = {t for t, v in got if v == "inconclusive"}
    assert silent, got
    # Within the lookback of the last row (t <= 600) a tick still reads it; after it, not.
    assert all(600 < t < 901 for t in silent), got
    assert all(v == "pass" for t, v in got if t not in silent)
