"""Range windows of the Prometheus source beyond one request, and on a shared grid (respx).

* A window longer than Prometheus' 11,000 points per series is read whole, as consecutive range
  queries on one grid (each point asked exactly once), never cut to its newest 11,000 steps; a
  failing part fails the window; a grouped query is chunked the same way.
* Every request lies on the Unix-epoch multiples of its step, so the canaries of one controller
  tick (whose ``now`` differ by milliseconds) share one range request per query shape; the grid
  never reaches past a request's end and its newest point lies in the last step.
* ``judge.step`` / ``judge.window`` that cannot work are refused when the Canary is loaded.

The fake Prometheus below enforces the real server's rules (checked against 2.42 in
``tests/e2e/test_range_windows_e2e.py``): points at ``start + k * step <= end``, and HTTP 400
"exceeded maximum resolution of 11,000 points per timeseries" past ``(end - start) / step > 11000``.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Literal

import httpx
import numpy as np
import pytest
import respx

from analysis import FailureKind, MetricQuery, PrometheusSource, QueryFailure, plan_queries
from analysis._prometheus import open_prometheus
from analysis._series_cache import SeriesCache
from analysis._types import Series, SeriesRequest
from config import SpecError, parse_canary
from tests.analysis.conftest import PROM, CanaryFactory, Sleeps, canary_body, raw

RANGE_URL = f"{PROM}/api/v1/query_range"
SUCCESS = {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}
T0 = 1_767_225_600.0  # a whole minute (2026-01-01T00:00:00Z)
DAY = 86_400.0
#: Points per range request: Prometheus refuses more than 11,000 per series.
MAX_POINTS = 11_000


def params_of(request: httpx.Request) -> httpx.QueryParams:
    if request.method == "POST":
        return httpx.QueryParams(request.content.decode())
    return request.url.params


def window_ms(request: httpx.Request) -> tuple[int, int, int]:
    """The request's start, end and step in whole milliseconds (as Prometheus reads them)."""
    params = params_of(request)
    return tuple(round(float(params[k]) * 1000) for k in ("start", "end", "step"))  # type: ignore[return-value]


def points(request: httpx.Request) -> list[float]:
    """What Prometheus evaluates: start, start + step, ... <= end."""
    start, end, step = window_ms(request)
    return [(start + k * step) / 1000 for k in range((end - start) // step + 1)]


def value(t: float) -> float:
    return 100.0 + math.sin(t / 3600.0)


class FakePrometheus:
    """``/api/v1/query_range`` with Prometheus' grid and resolution limit; per-target values
    for the istio builtin (grouped or not) and ``value(t)`` for any other query."""

    def __init__(self, fail_before: float | None = None) -> None:
        self.fail_before = fail_before  # answer 503 for a chunk starting before this

    def __call__(self, request: httpx.Request) -> httpx.Response:
        start, end, step = window_ms(request)
        if (end - start) // step > 11_000:
            return httpx.Response(
                400,
                json={
                    "status": "error",
                    "errorType": "bad_data",
                    "error": "exceeded maximum resolution of 11,000 points per timeseries. "
                    "Try decreasing the query resolution (?step=XX)",
                },
            )
        if self.fail_before is not None and start / 1000 < self.fail_before:
            return httpx.Response(503, text="overloaded")
        times = points(request)
        expr = params_of(request)["query"]
        if "sum by (" in expr:
            result = [
                {
                    "metric": {
                        "destination_workload_namespace": "prod",
                        "destination_workload": workload,
                    },
                    "values": [[t, str(value(t) + offset)] for t in times],
                }
                for workload, offset in self.workloads(expr)
            ]
        else:
            result = [{"metric": {}, "values": [[t, str(value(t))] for t in times]}]
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "matrix", "result": result}}
        )

    @staticmethod
    def workloads(expr: str) -> list[tuple[str, float]]:
        names = expr.split('destination_workload=~"(?:', 1)[1].split(")", 1)[0].split("|")
        return [(name, float(len(name))) for name in names]


def ask(query: MetricQuery, start: float, end: float = T0, step: float = 60.0) -> SeriesRequest:
    return SeriesRequest(query=query, start=start, end=end, step=step)


def series(answer: Series | QueryFailure) -> Series:
    assert isinstance(answer, Series), answer
    return answer


def fleet(
    make_canary: CanaryFactory, count: int, target: Literal["canary", "primary"] = "canary"
) -> list[MetricQuery]:
    return [
        q
        for n in range(count)
        for q in plan_queries(
            make_canary([SUCCESS], name=f"svc{n}", namespace="prod"),
            {},
            provider="istio",
            default_server=PROM,
            target=target,
        )
    ]


# ---------------------------------------------------------------------------------------------
# A window of more than 11,000 points is read whole
# ---------------------------------------------------------------------------------------------


@respx.mock
async def test_a_window_over_11000_points_is_read_whole_in_consecutive_requests(
    source: PrometheusSource,
) -> None:
    route = respx.get(RANGE_URL).mock(side_effect=FakePrometheus())
    # 30 days of minutes: 43,201 points, four requests of at most 11,000 each.
    answer = series((await source.fetch_series([ask(raw(), start=T0 - 30 * DAY)]))[0])
    expected = [T0 - 30 * DAY + 60 * k for k in range(30 * 1440 + 1)]
    assert answer.times.tolist() == expected  # every point once, in order, none missing
    assert answer.values.tolist() == [value(t) for t in expected]
    spans = sorted(window_ms(call.request) for call in route.calls)
    assert len(spans) == math.ceil(len(expected) / MAX_POINTS) == 4
    assert spans[0][0] == (T0 - 30 * DAY) * 1000 and spans[-1][1] == T0 * 1000
    for (_, end, step), (next_start, _, _) in itertools.pairwise(spans):
        assert next_start == end + step  # consecutive on one grid: no gap, no overlap
    assert all((end - start) // step + 1 <= MAX_POINTS for start, end, step in spans)
    assert source.requests_sent == 4


@respx.mock
async def test_exactly_11000_points_is_one_request_and_one_more_is_two(
    source: PrometheusSource,
) -> None:
    route = respx.get(RANGE_URL).mock(side_effect=FakePrometheus())
    answers = await source.fetch_series(
        [
            ask(raw("a"), start=T0 - 10_999 * 15, step=15),
            ask(raw("b"), start=T0 - 11_000 * 15, step=15),
        ]
    )
    assert [len(series(a)) for a in answers] == [11_000, 11_001]
    by_query: dict[str, list[tuple[int, int, int]]] = {}
    for call in route.calls:
        by_query.setdefault(params_of(call.request)["query"], []).append(window_ms(call.request))
    assert len(by_query["a"]) == 1
    assert sorted(by_query["b"]) == [
        ((T0 - 11_000 * 15) * 1000, (T0 - 11_000 * 15) * 1000, 15_000),  # the oldest point
        ((T0 - 10_999 * 15) * 1000, T0 * 1000, 15_000),
    ]


@respx.mock
async def test_a_failing_part_fails_the_whole_window_never_a_shorter_one(
    source: PrometheusSource,
) -> None:
    respx.get(RANGE_URL).mock(side_effect=FakePrometheus(fail_before=T0 - 11 * DAY))
    long, short = await source.fetch_series(
        [ask(raw("long"), start=T0 - 30 * DAY), ask(raw("short"), start=T0 - DAY)]
    )
    assert isinstance(long, QueryFailure), long
    assert long.kind is FailureKind.TRANSPORT and "HTTP 503" in long.message
    assert len(series(short)) == 1441


@respx.mock
async def test_a_grouped_long_window_sends_one_request_per_chunk_for_all_canaries(
    source: PrometheusSource, make_canary: CanaryFactory
) -> None:
    route = respx.get(RANGE_URL).mock(side_effect=FakePrometheus())
    canaries = fleet(make_canary, 3)
    primaries = fleet(make_canary, 3, target="primary")
    # the canaries since the analysis started, the primaries over 4 days at 30s (11,521 points)
    requests = [ask(q, start=T0 - 1800, step=30) for q in canaries] + [
        ask(q, start=T0 - 4 * DAY, step=30) for q in primaries
    ]
    answers = await source.fetch_series(requests)
    assert route.call_count == 2  # one grouped query, read in two parts
    assert all("sum by (" in params_of(c.request)["query"] for c in route.calls)
    for request, answer in zip(requests, answers, strict=True):
        got = series(answer)
        name = request.query.canary.split("/")[1]
        name += "-primary" if request.query.target == "primary" else ""
        expected = np.arange(request.start, T0 + 1, 30.0)
        assert got.times.tolist() == expected.tolist(), name
        offset = float(len(name))
        assert got.values.tolist() == [value(t) + offset for t in expected.tolist()], name


@respx.mock
async def test_the_series_cache_reads_a_long_window_once_then_only_tails() -> None:
    """A long-running process keeps what a restarted one would read: the whole window."""
    route = respx.get(RANGE_URL).mock(side_effect=FakePrometheus())
    async with (
        open_prometheus(sleep=Sleeps()) as live,
        open_prometheus(sleep=Sleeps()) as fresh,
    ):
        cache = SeriesCache(live.fetch_series, identity=lambda q: q.expr)
        for tick in range(4):
            now = T0 + 60 * tick + (0.123, 0.9, 0.05, 0.5)[tick]
            request = ask(raw(), start=now - 15 * DAY, end=now, step=60)  # 21,600 points
            kept = series((await cache.fetch_series([request]))[0])
            whole = series((await fresh.fetch_series([request]))[0])
            assert kept.times.tolist() == whole.times.tolist(), tick
            assert kept.values.tolist() == whole.values.tolist(), tick
            assert len(whole) == 21_600 and whole.times[-1] == T0 + 60 * tick
        sent = live.requests_sent
    assert sent == 2 + 3  # the window once (2 parts), then one tail per tick
    assert route.call_count == sent + 4 * 2


# ---------------------------------------------------------------------------------------------
# One grid for the canaries of a tick
# ---------------------------------------------------------------------------------------------


@respx.mock
async def test_canaries_due_together_share_one_request_whatever_their_jitter(
    source: PrometheusSource, make_canary: CanaryFactory
) -> None:
    route = respx.get(RANGE_URL).mock(side_effect=FakePrometheus())
    queries = fleet(make_canary, 10) + fleet(make_canary, 10, target="primary")
    # Each canary's own ``now``: T0 + 12.3s plus a few milliseconds of jitter.
    nows = [T0 + 12.3 + 0.004 * (n % 10) for n in range(len(queries))]
    requests = [
        ask(q, start=(now - 600 if q.target != "primary" else now - DAY), end=now)
        for q, now in zip(queries, nows, strict=True)
    ]
    answers = await source.fetch_series(requests)
    assert route.call_count == 1 and source.requests_sent == 1
    start, end, step = window_ms(route.calls[0].request)
    assert (end, step) == (T0 * 1000, 60_000)  # the last minute boundary before every now
    assert start == (T0 - DAY + 60) * 1000  # the oldest boundary inside the longest window
    for request, answer in zip(requests, answers, strict=True):
        got = series(answer)
        assert got.times[-1] == T0 <= request.end  # never after the tick
        assert got.times[-1] > request.end - request.step  # the newest sample: in the last step
        assert got.times[0] >= request.start


@respx.mock
async def test_the_grid_is_the_epoch_multiples_of_the_step(source: PrometheusSource) -> None:
    route = respx.get(RANGE_URL).mock(side_effect=FakePrometheus())
    end = T0 + 3 * 3600 + 59 * 60 + 59.999  # 03:59:59.999
    await source.fetch_series(
        [
            ask(raw("a"), start=end - 3600, end=end, step=7),
            ask(raw("b"), start=end - 3600, end=end, step=300),
            ask(raw("c"), start=end - 90.5, end=end, step=0.25),
        ]
    )
    for call in route.calls:
        start, stop, step = window_ms(call.request)
        assert stop % step == 0 and start % step == 0, params_of(call.request)
        assert end * 1000 - step < stop <= end * 1000
        assert start >= (end - 3600) * 1000 - 0.5


@respx.mock
async def test_a_window_shorter_than_a_step_without_a_grid_point_keeps_its_end(
    source: PrometheusSource,
) -> None:
    """The first tick of an analysis whose step is longer than the time since it started: the
    epoch grid has no point in the window, so the request keeps its own end (one sample)."""
    route = respx.get(RANGE_URL).mock(side_effect=FakePrometheus())
    now = T0 + 44.0  # the window (T0 + 34s, T0 + 44s] holds no multiple of 15s
    answer = series((await source.fetch_series([ask(raw(), start=now - 10, end=now, step=15)]))[0])
    assert answer.times.tolist() == [now]
    assert window_ms(route.calls[0].request) == (now * 1000, now * 1000, 15_000)


@respx.mock
async def test_ticks_across_a_step_boundary_are_two_grids(
    source: PrometheusSource, make_canary: CanaryFactory
) -> None:
    route = respx.get(RANGE_URL).mock(side_effect=FakePrometheus())
    queries = fleet(make_canary, 4)
    nows = [T0 - 0.002, T0 - 0.001, T0, T0 + 0.001]
    await source.fetch_series(
        [ask(q, start=now - 600, end=now) for q, now in zip(queries, nows, strict=True)]
    )
    ends = sorted(window_ms(c.request)[1] for c in route.calls)
    assert ends == [(T0 - 60) * 1000, T0 * 1000]


# ---------------------------------------------------------------------------------------------
# judge.step and judge.window are checked when the Canary is loaded
# ---------------------------------------------------------------------------------------------


def judged_canary(judge: dict[str, Any]) -> dict[str, Any]:
    metric = {
        "name": "request-duration",
        "interval": "1m",
        "judge": {"baseline": "primary", "harmful": "increase", **judge},
    }
    return canary_body([metric], provider="kubernetes", name="app")


@pytest.mark.parametrize(
    ("judge", "message"),
    [
        (
            {"step": "0.4ms"},
            "spec.analysis.metrics[0].judge.step: must be at least 1ms (Prometheus keeps times "
            "in milliseconds), got 0.4ms: set judge.step to 1ms or more",
        ),
        (
            {"window": "1h", "step": "2h"},
            "spec.analysis.metrics[0].judge.step: must not be longer than judge.window (1h), "
            "got 2h: the window would hold at most one primary sample, never minHistory; set "
            "judge.step to at most 1h or judge.window to at least 2h",
        ),
        (
            {"window": "720h", "step": "1s"},
            "spec.analysis.metrics[0].judge.step: judge.window 720h at judge.step 1s is "
            "2,592,000 samples per series, more than the 100,000 a judge may read: set "
            "judge.step to at least 25.92s or judge.window to at most 27h46m40s",
        ),
    ],
    ids=["below-1ms", "longer-than-window", "too-many-samples"],
)
def test_a_step_that_cannot_work_is_refused_at_load(judge: dict[str, str], message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_canary(judged_canary(judge))
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "judge",
    [
        {"step": "1ms", "window": "1s"},
        {"step": "1h", "window": "1h"},
        {"step": "1s", "window": "24h"},  # 86,400 samples: read in 8 requests
        {"step": "864ms", "window": "24h"},  # exactly 100,000
        {"window": "720h"},  # the default step (the analysis interval): 43,200
    ],
)
def test_steps_that_work_load(judge: dict[str, str]) -> None:
    parse_canary(judged_canary(judge))
