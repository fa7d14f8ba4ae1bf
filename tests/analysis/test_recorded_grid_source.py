"""``RecordedMetricSource.fetch_series`` answers as a Prometheus range query over the recording.

Live, a judge's range request is answered with one point per step on the live source's grid,
each point the latest sample at or before it within the 5-minute lookback. A replay must answer
the same points, or ``simulate`` and ``run`` judge the same data differently: a recording denser
than the step would be judged on every row, a sparser one would miss every other step.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random

import httpx
import numpy as np
import pytest
import respx

from analysis import (
    LOOKBACK_SECONDS,
    CheckKind,
    Endpoint,
    MetricQuery,
    Recording,
    Series,
    open_prometheus,
)
from analysis._recorded import RecordedMetricSource
from analysis._types import FailureKind, QueryFailure, SeriesRequest

QUERY = MetricQuery(
    canary="staging/app", metric="latency", kind=CheckKind.QUERY, expr="latency", target="canary"
)


def request(start: float, end: float, step: float = 60.0) -> SeriesRequest:
    return SeriesRequest(query=QUERY, start=start, end=end, step=step)


def fetch(
    samples: list[tuple[float, float | None]], req: SeriesRequest, now: float | None = None
) -> Series:
    recording = Recording({("canary", "latency"): samples})
    source = RecordedMetricSource(recording, lambda: req.end if now is None else now)
    [answer] = asyncio.run(source.fetch_series([req]))
    assert isinstance(answer, Series)
    return answer


class PrometheusOver:
    """``/api/v1/query_range`` over a recording, as Prometheus evaluates it: at start, start +
    step, ... <= end, each point the latest sample at or before it within the 5-minute lookback
    (no point without one), and refusing more than 11,000 steps."""

    def __init__(self, samples: list[tuple[float, float | None]]) -> None:
        self.times = np.array([t for t, _ in samples])
        self.values = [v for _, v in samples]
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        params = request.url.params if request.method == "GET" else None
        if params is None:
            params = httpx.QueryParams(request.content.decode())
        start, end, step = (round(float(params[k]) * 1000) for k in ("start", "end", "step"))
        if (end - start) // step > 11_000:
            return httpx.Response(400, json={"status": "error", "error": "exceeded 11,000"})
        points = np.arange(start, end + 1, step) / 1000
        latest = np.searchsorted(self.times, points, side="right") - 1
        values = [
            [p, str(self.values[i])]
            for p, i in zip(points.tolist(), latest.tolist(), strict=True)
            if i >= 0 and p - self.times[i] <= 300 and self.values[i] is not None
        ]
        result = [{"metric": {}, "values": values}] if values else []
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "matrix", "result": result}}
        )


T0 = 1_767_225_600.0  # a whole minute (2026-01-01T00:00:00Z): live requests are Unix times
# The primary's series: a canary's replay reads no row from before its window (below).
LIVE = dataclasses.replace(
    QUERY, endpoint=Endpoint(server="http://prom.test:9090"), target="primary"
)


@pytest.mark.parametrize(
    ("spacing", "start", "end", "step"),
    [
        (1.0, -86_400.0, 0.0, 60.0),  # dense: a day of one-second rows, a one-minute step
        (120.0, -86_400.0, 0.0, 60.0),  # sparse: a row every two minutes
        (60.0, 0.0, 720.0, 60.0),  # one row per step, on the grid
        (60.0, 30.0, 750.5, 60.0),  # ... and a window off it
        (17.3, -3_600.0, 1_234.567, 45.0),  # irregular
        (1.0, -14_400.0, 0.0, 1.0),  # 14,401 points: more than one range query holds
        (400.0, -7_200.0, 0.0, 60.0),  # gaps longer than the lookback between rows
    ],
)
async def test_simulate_reads_the_points_a_live_range_query_answers(
    spacing: float, start: float, end: float, step: float
) -> None:
    rng = random.Random(5)
    samples: list[tuple[float, float | None]] = [
        (T0 + t, round(rng.uniform(100, 300), 3))
        for t in np.arange(-90_000.0, 3_600.0, spacing).tolist()
    ]
    fake = PrometheusOver(samples)
    req = SeriesRequest(query=LIVE, start=T0 + start, end=T0 + end, step=step)
    with respx.mock:
        respx.route(url__regex=r".*/api/v1/query_range").mock(side_effect=fake)

        async def no_sleep(_: float) -> None:
            return None

        async with open_prometheus(sleep=no_sleep) as prometheus:
            [live] = await prometheus.fetch_series([req])
    source = RecordedMetricSource(Recording({("primary", "latency"): samples}), lambda: T0 + end)
    [replayed] = await source.fetch_series([req])
    assert isinstance(live, Series) and isinstance(replayed, Series), (live, replayed)
    assert fake.requests >= 1
    assert len(replayed) > 0
    assert replayed.times.tolist() == live.times.tolist()
    assert replayed.values.tolist() == live.values.tolist()


def test_a_canary_window_reads_no_row_from_before_it() -> None:
    # Live, the canary's pods did not exist before the analysis (the target is scaled to zero
    # between runs), so no point of its window reads an earlier sample through the lookback; a
    # recording's earlier canary rows are the replaced revision's and are not read either. The
    # primary's earlier rows are read as live (the lookback).
    samples: list[tuple[float, float | None]] = [(-60.0, 900.0), (90.0, 100.0), (150.0, 110.0)]
    recording = Recording({("canary", "latency"): samples, ("primary", "latency"): samples})
    source = RecordedMetricSource(recording, lambda: 180.0)
    primary = dataclasses.replace(QUERY, target="primary")
    canary_window = SeriesRequest(query=QUERY, start=0.001, end=180.0, step=60.0)
    primary_window = SeriesRequest(query=primary, start=0.001, end=180.0, step=60.0)
    canary, primary_series = asyncio.run(source.fetch_series([canary_window, primary_window]))
    assert isinstance(canary, Series) and isinstance(primary_series, Series)
    assert canary.times.tolist() == [120.0, 180.0]
    assert canary.values.tolist() == [100.0, 110.0]
    assert primary_series.times.tolist() == [60.0, 120.0, 180.0]
    assert primary_series.values.tolist() == [900.0, 100.0, 110.0]


def test_a_canary_row_at_the_analysis_start_is_read_through_the_lookback() -> None:
    # The judge asks from 1 ms after the start; a row at the start itself is this run's, and a
    # live query at the next points reads it through the lookback, as the replay does.
    recording = Recording({("canary", "latency"): [(0.0, 120.0), (180.0, 130.0)]})
    source = RecordedMetricSource(recording, lambda: 120.0)
    window = SeriesRequest(query=QUERY, start=0.001, end=120.0, step=60.0)
    [series] = asyncio.run(source.fetch_series([window]))
    assert isinstance(series, Series)
    assert series.times.tolist() == [60.0, 120.0]
    assert series.values.tolist() == [120.0, 120.0]


def test_a_dense_recording_is_read_once_per_step() -> None:
    # One row per second: a range query answers one point per minute, the row at that instant.
    samples: list[tuple[float, float | None]] = [(float(t), float(t)) for t in range(601)]
    series = fetch(samples, request(0.0, 600.0))
    assert series.times.tolist() == [60.0 * i for i in range(11)]
    assert series.values.tolist() == [60.0 * i for i in range(11)]


def test_a_sparse_recording_answers_every_step_within_the_lookback() -> None:
    # One row every 2 minutes at a 1-minute step: every step reads the latest row, as live.
    samples: list[tuple[float, float | None]] = [(float(t), float(t)) for t in range(0, 601, 120)]
    series = fetch(samples, request(0.0, 600.0))
    assert series.times.tolist() == [60.0 * i for i in range(11)]
    assert series.values.tolist() == [120.0 * (i // 2) for i in range(11)]


def test_a_gap_longer_than_the_lookback_is_no_data() -> None:
    # Rows every minute up to 600 s, then nothing until 1500 s: the last row is read for the
    # lookback (up to 900 s), then the steps have no point at all, as in a live range query.
    samples: list[tuple[float, float | None]] = [(float(t), 1.0) for t in range(0, 601, 60)]
    samples += [(float(t), 2.0) for t in range(1500, 1801, 60)]
    series = fetch(samples, request(0.0, 1800.0))
    assert LOOKBACK_SECONDS == 300
    expected = list(range(0, 901, 60)) + list(range(1500, 1801, 60))
    assert series.times.tolist() == [float(t) for t in expected]
    assert series.values.tolist() == [1.0] * 16 + [2.0] * 6


def test_each_point_reads_what_an_instant_query_at_it_reads() -> None:
    # Irregular times, no-data rows and history before 0: every point equals Recording.value_at.
    from analysis._recorded import grid_points  # (here: the module imports without it)

    rng = random.Random(3)
    times = sorted({round(rng.uniform(-3000, 3000), 3) for _ in range(150)})
    samples: list[tuple[float, float | None]] = [
        (t, None if rng.random() < 0.1 else rng.uniform(0, 100)) for t in times
    ]
    recording = Recording({("canary", "latency"): samples})
    req = request(-3600.0, 3600.0, 37.0)
    series = fetch(samples, req)
    answered = dict(zip(series.times.tolist(), series.values.tolist(), strict=True))
    for point in grid_points(req).tolist():
        value = recording.value_at("canary", "latency", point)
        stale = all(t > point or point - t > LOOKBACK_SECONDS for t in times)
        if stale:
            assert point not in answered
        elif value is None:
            assert math.isnan(answered[point])  # a recorded no-data row: a step without data
        else:
            assert answered[point] == value


def test_no_point_after_now_and_a_recording_with_one_row_per_step_reads_back_row_for_row() -> None:
    samples: list[tuple[float, float | None]] = [(60.0 * i, float(i)) for i in range(-5, 30)]
    series = fetch(samples, request(-300.0, 1200.0), now=600.0)
    assert series.times.tolist() == [60.0 * i for i in range(-5, 11)]
    assert series.values.tolist() == [float(i) for i in range(-5, 11)]


def test_invalid_windows_fail_as_live_and_unknown_series_are_empty() -> None:
    source = RecordedMetricSource(Recording({}), lambda: 100.0)
    answers = asyncio.run(
        source.fetch_series(
            [request(10.0, 0.0), request(0.0, math.inf), request(0.0, 10.0, 0.0), request(0, 60)]
        )
    )
    for bad in answers[:3]:
        assert isinstance(bad, QueryFailure) and bad.kind is FailureKind.REJECTED
        assert bad.message.startswith("invalid series window")
    assert isinstance(answers[3], Series) and len(answers[3]) == 0


def test_a_day_of_one_second_rows_answers_a_days_window() -> None:
    # correctness only: speed targets belong in benchmarks/, not in timed unit tests
    rows = 86_400
    samples: list[tuple[float, float | None]] = [(float(t - rows), 1.0) for t in range(rows + 1)]
    recording = Recording({("canary", "latency"): samples})
    source = RecordedMetricSource(recording, lambda: 0.0)
    req = request(-float(rows), 0.0)
    for _ in range(200):  # the arrays are built once; each request is a searchsorted
        [series] = asyncio.run(source.fetch_series([req]))
    assert isinstance(series, Series) and len(series) == rows // 60 + 1
