"""The judge's series cache (analysis._series_cache): each tick asks only for what is new."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

import numpy as np
import pytest

from analysis._series_cache import SeriesCache
from analysis._types import CheckKind, FailureKind, MetricQuery, QueryFailure, Series, SeriesRequest

STEP = 60.0
DAY = 86_400.0


class GridSource:
    """A live source: samples every ``step`` back from each request's end (as Prometheus anchors
    its range grid), values from ``value(t)``; records every window it was asked for."""

    def __init__(self) -> None:
        self.asked: list[tuple[float, float]] = []
        self.fail = False
        self.overrides: dict[float, float] = {}

    def value(self, t: float) -> float:
        return self.overrides.get(t, math.sin(t / 3600.0) * 10.0 + 100.0)

    async def fetch_series(self, requests: Sequence[SeriesRequest]) -> list[Series | QueryFailure]:
        out: list[Series | QueryFailure] = []
        for r in requests:
            self.asked.append((r.start, r.end))
            if self.fail:
                out.append(QueryFailure(FailureKind.TRANSPORT, "prometheus is down"))
                continue
            count = int((r.end - r.start) // r.step) + 1
            times = r.end - r.step * np.arange(count)[::-1]
            out.append(Series(times, np.array([self.value(t) for t in times])))
        return out


def query(expr: str = "rate(errors[1m])") -> MetricQuery:
    return MetricQuery(
        canary="ns/app", metric="errors", kind=CheckKind.QUERY, target="primary", expr=expr
    )


def request(end: float, *, window: float = DAY, expr: str = "rate(errors[1m])") -> SeriesRequest:
    return SeriesRequest(query=query(expr), start=end - window, end=end, step=STEP)


def identity(q: MetricQuery) -> str:
    return f"{q.expr}|{q.target}"


async def both(end: float, cache: SeriesCache, source: GridSource) -> tuple[Series, Series]:
    """The cached answer, and what the source alone answers for the same request."""
    (cached,) = await cache.fetch_series([request(end)])
    (fresh,) = await GridSource().fetch_series([request(end)])
    assert isinstance(cached, Series) and isinstance(fresh, Series)
    return cached, fresh


async def test_a_later_tick_asks_only_for_the_new_minutes_and_answers_the_same() -> None:
    source = GridSource()
    cache = SeriesCache(source.fetch_series, identity=identity)
    for tick in range(5):
        end = 1_000_000.0 + tick * STEP
        cached, fresh = await both(end, cache, source)
        np.testing.assert_array_equal(cached.times, fresh.times)
        np.testing.assert_array_equal(cached.values, fresh.values)
    first, *later = source.asked
    assert first == (1_000_000.0 - DAY, 1_000_000.0)
    # Afterwards only the last five minutes (Prometheus' lookback) plus the new one, not a day.
    assert [end - start for start, end in later] == [360.0] * 4
    assert len(cache) == 1


async def test_an_offset_grid_keeps_one_sample_per_step() -> None:
    # A live tick is never exactly one step after the last: the tail's grid is offset from the
    # kept one, and no two samples may end up closer than half a step.
    source = GridSource()
    cache = SeriesCache(source.fetch_series, identity=identity)
    await cache.fetch_series([request(1_000_000.0)])
    (cached,) = await cache.fetch_series([request(1_000_000.0 + 83.0)])
    assert isinstance(cached, Series)
    gaps = np.diff(cached.times)
    assert gaps.min() >= STEP / 2 and gaps.max() <= 1.5 * STEP
    assert cached.times[-1] == 1_000_083.0  # the newest sample is the tick's own
    assert cached.times[0] >= 1_000_083.0 - DAY
    assert abs(cached.times.size - DAY / STEP) <= 1


async def test_late_samples_within_the_refresh_span_are_read_again() -> None:
    source = GridSource()
    cache = SeriesCache(source.fetch_series, identity=identity)
    end = 1_000_000.0
    await cache.fetch_series([request(end)])
    source.overrides[end - 2 * STEP] = 999.0  # a late scrape changed a recent sample
    (cached,) = await cache.fetch_series([request(end + STEP)])
    assert isinstance(cached, Series)
    assert cached.values[cached.times == end - 2 * STEP].tolist() == [999.0]


async def test_a_failure_is_answered_as_such_and_keeps_what_was_kept() -> None:
    source = GridSource()
    cache = SeriesCache(source.fetch_series, identity=identity)
    await cache.fetch_series([request(1_000_000.0)])
    source.fail = True
    (answer,) = await cache.fetch_series([request(1_000_060.0)])
    assert isinstance(answer, QueryFailure) and answer.message == "prometheus is down"
    source.fail = False
    cached, fresh = await both(1_000_120.0, cache, source)
    np.testing.assert_array_equal(cached.values, fresh.values)
    assert source.asked[-1] == (1_000_000.0 - 300.0, 1_000_120.0)  # a tail, not a whole day


async def test_a_longer_window_or_another_query_is_asked_in_full() -> None:
    source = GridSource()
    cache = SeriesCache(source.fetch_series, identity=identity)
    await cache.fetch_series([request(1_000_000.0, window=3600.0)])
    await cache.fetch_series([request(1_000_060.0, window=DAY)])
    assert source.asked[-1] == (1_000_060.0 - DAY, 1_000_060.0)
    await cache.fetch_series([request(1_000_120.0, expr="other")])
    assert source.asked[-1] == (1_000_120.0 - DAY, 1_000_120.0)
    assert len(cache) == 2


async def test_series_nobody_asks_for_any_more_are_forgotten() -> None:
    source = GridSource()
    cache = SeriesCache(source.fetch_series, identity=identity, idle=600.0)
    await cache.fetch_series([request(1_000_000.0, expr="finished analysis")])
    await cache.fetch_series([request(1_000_300.0)])
    assert len(cache) == 2
    await cache.fetch_series([request(1_000_700.0)])
    assert len(cache) == 1
    await cache.fetch_series([request(1_000_760.0, expr="finished analysis")])
    assert source.asked[-1] == (1_000_760.0 - DAY, 1_000_760.0)  # asked in full again


async def test_what_is_kept_cannot_be_changed_through_an_answer() -> None:
    source = GridSource()
    cache = SeriesCache(source.fetch_series, identity=identity)
    (answer,) = await cache.fetch_series([request(1_000_000.0)])
    assert isinstance(answer, Series)
    with pytest.raises(ValueError, match="read-only"):
        answer.values[0] = -1.0


async def test_the_same_series_asked_twice_in_one_call_is_asked_once_and_kept_whole() -> None:
    # A query without {{ target }} is one text for the canary and the primary: the canary asks
    # since the analysis started, the primary a day back. Both must keep getting the right
    # samples tick after tick (one request each tick), and the day must stay kept.
    source = GridSource()
    cache = SeriesCache(source.fetch_series, identity=identity)
    started = 1_000_000.0
    for tick in range(1, 5):
        end = started + tick * STEP
        canary = SeriesRequest(query=query(), start=started, end=end, step=STEP)
        answers = await cache.fetch_series([canary, request(end)])
        fresh = await GridSource().fetch_series([canary, request(end)])
        for got, want in zip(answers, fresh, strict=True):
            assert isinstance(got, Series) and isinstance(want, Series)
            np.testing.assert_array_equal(got.times, want.times)
            np.testing.assert_array_equal(got.values, want.values)
    assert len(source.asked) == 4  # one request per tick for both
    assert [end - start for start, end in source.asked[1:]] == [360.0] * 3


async def test_a_query_that_is_not_cacheable_is_asked_in_full_every_time() -> None:
    source = GridSource()
    cache = SeriesCache(
        source.fetch_series, identity=identity, cacheable=lambda q: q.expr != "hosted"
    )
    for tick in range(3):
        await cache.fetch_series([request(1_000_000.0 + tick * STEP, expr="hosted")])
    assert [end - start for start, end in source.asked] == [DAY] * 3
    assert len(cache) == 0


async def test_an_answer_never_replaces_a_newer_one_kept_by_a_concurrent_call() -> None:
    slow_started = asyncio.Event()
    release = asyncio.Event()
    source = GridSource()

    async def fetch(requests: Sequence[SeriesRequest]) -> list[Series | QueryFailure]:
        if requests[0].end == 1_000_060.0:  # the first call is slow
            slow_started.set()
            await release.wait()
        return await source.fetch_series(requests)

    cache = SeriesCache(fetch, identity=identity)
    await cache.fetch_series([request(1_000_000.0)])
    slow = asyncio.create_task(cache.fetch_series([request(1_000_060.0)]))
    await slow_started.wait()
    (newer,) = await cache.fetch_series([request(1_000_120.0)])
    release.set()
    (older,) = await slow
    assert isinstance(newer, Series) and isinstance(older, Series)
    assert older.times[-1] == 1_000_060.0 and newer.times[-1] == 1_000_120.0
    await cache.fetch_series([request(1_000_180.0)])
    # The next tick was a tail from the newer answer (its end), not from the older one.
    assert source.asked[-1] == (1_000_120.0 - 300.0, 1_000_180.0)
