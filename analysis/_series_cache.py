"""Remember the series a judge has read, so each tick asks its metric provider only for what is new.

A comparative judge reads the primary's samples over its whole ``window`` (a day by default) on
every tick. Asked afresh, that is 1,440 one-minute samples per judged metric per canary per
interval, all but one or two of which the provider already answered a minute ago. ``SeriesCache``
wraps a ``fetch_series`` callable: for a request whose query and step it answered before, it asks
only for the tail ``[last end - refresh, end]`` and joins it to the samples it kept. ``refresh``
(at least 5 minutes, Prometheus' lookback, and two steps) is asked again each time because the
newest samples of a live source can still change: a late scrape, a remote-write delay, a recording
rule that has not run yet.

Only series whose samples do not depend on the span asked are kept (``cacheable``: the controller
keeps Prometheus range queries, a grid every ``step``). Hosted providers choose their resolution
or span from the window (Datadog's rollup grows with the timeframe, Graphite picks its archive by
how far back it reads, an MQL query sets its own span), so a tail would not match the rest: they
are asked in full every time.

What the judge sees is what it would see without the cache. The Prometheus source puts every
request on the Unix-epoch multiples of its step, so the tail's samples fall exactly on kept ones
and the tail wins; for a source whose grid is anchored elsewhere, kept samples closer than half a
step to the tail's first sample are dropped at the seam (one sample per step stays one sample per
step). An entry records the span it was asked for as covered, so a source must answer all of it:
one that silently answered less (the Prometheus source once kept only the newest 11,000 steps of
a longer window; it now reads it in several range queries) would leave a long-running process
with a longer history than a restarted one, forever. Requests of one call for the same series (the
canary's and the primary's query can be the same text) are asked once, over the span covering
them, and each is answered its own window. A failed request is answered as the failure and
changes nothing kept; an answer never replaces a newer one a concurrent call kept meanwhile. A
request that reaches further back than what is kept (a longer window, a new analysis) is asked in
full. Entries not asked for within ``idle`` seconds of the newest request's end are forgotten, so
a finished analysis releases its samples; memory is about 16 bytes per kept sample (a day of
one-minute samples: 23 KiB per judged series). Nothing here is state a restart would miss: a new
process just asks in full once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from analysis._types import MetricQuery, QueryFailure, Series, SeriesRequest

FetchSeries = Callable[[Sequence[SeriesRequest]], Awaitable[list[Series | QueryFailure]]]

#: The newest samples are asked again on every tick: Prometheus' default lookback.
DEFAULT_REFRESH_SECONDS = 300.0
#: An entry no request has asked for within this long is dropped.
DEFAULT_IDLE_SECONDS = 3600.0
#: What one kept series is: the query's identity and the step.
_Key = tuple[Hashable, float]


@dataclass(slots=True)
class _Kept:
    times: NDArray[np.float64]
    values: NDArray[np.float64]
    # The span asked for: the source answers all of it (see the module docstring).
    covers_from: float  # every sample the source had from here on is kept ...
    fetched_to: float  # ... up to here (the last request's end)


class SeriesCache:
    """``fetch_series`` with memory: each request asks ``fetch`` only for its unseen tail."""

    def __init__(
        self,
        fetch: FetchSeries,
        *,
        identity: Callable[[MetricQuery], Hashable],
        cacheable: Callable[[MetricQuery], bool] = lambda query: True,
        refresh: float = DEFAULT_REFRESH_SECONDS,
        idle: float = DEFAULT_IDLE_SECONDS,
    ) -> None:
        self._fetch = fetch
        self._identity = identity
        self._cacheable = cacheable
        self._refresh = refresh
        self._idle = idle
        self._kept: dict[_Key, _Kept] = {}
        self._newest_end = float("-inf")

    def __len__(self) -> int:
        """How many series are kept."""
        return len(self._kept)

    async def fetch_series(self, requests: Sequence[SeriesRequest]) -> list[Series | QueryFailure]:
        # Requests for the same series (the canary's and the primary's query can be one text)
        # are asked once, over the span that covers them all, and each gets its own window.
        groups: dict[_Key, list[int]] = {}
        passed_on: list[int] = []  # asked as they are, answered as they come
        for index, request in enumerate(requests):
            if self._cacheable(request.query):
                groups.setdefault((self._identity(request.query), request.step), []).append(index)
            else:
                passed_on.append(index)
        plans: list[_Plan] = []
        for key, members in groups.items():
            first = requests[members[0]]
            cover = dataclasses.replace(
                first,
                start=min(requests[m].start for m in members),
                end=max(requests[m].end for m in members),
            )
            kept = self._kept.get(key)
            plans.append(_Plan(key, members, cover, kept, self._ask(cover, kept)))
        answers = await self._fetch(
            [plan.ask for plan in plans] + [requests[index] for index in passed_on]
        )
        out: list[Series | QueryFailure | None] = [None] * len(requests)
        for index, answer in zip(passed_on, answers[len(plans) :], strict=True):
            out[index] = answer
        for plan, answer in zip(plans, answers[: len(plans)], strict=True):
            if isinstance(answer, QueryFailure):
                for member in plan.members:
                    out[member] = answer
                continue
            series = self._merged(plan, answer)
            for member in plan.members:
                request = requests[member]
                out[member] = _within(series, request.start, request.end)
        if requests:
            self._newest_end = max(self._newest_end, max(r.end for r in requests))
        self._forget_idle()
        answered: list[Series | QueryFailure] = []
        for one in out:
            assert one is not None  # every request belongs to exactly one plan
            answered.append(one)
        return answered

    def _merged(self, plan: _Plan, answer: Series) -> Series:
        """The plan's whole answer (kept samples joined to a tail), remembered for next time."""
        cover = plan.cover
        if plan.ask is not cover and plan.kept is not None:
            times, values = _joined(plan.kept, answer, plan.ask)
        else:
            times, values = _arrays(answer)
        inside = (times >= cover.start) & (times <= cover.end)
        times, values = times[inside], values[inside]
        # Callers get views of the kept arrays: read-only, so nobody can change them.
        times.setflags(write=False)
        values.setflags(write=False)
        current = self._kept.get(plan.key)
        # A concurrent call may have kept a newer answer meanwhile: never replace it by an older
        # one (each answer was merged with the entry it was asked from).
        if current is None or current is plan.kept or current.fetched_to <= cover.end:
            self._kept[plan.key] = _Kept(times, values, cover.start, cover.end)
        return Series(times, values)

    def _ask(self, request: SeriesRequest, kept: _Kept | None) -> SeriesRequest:
        """The request itself, or only its tail when the rest is kept."""
        if kept is None or request.start < kept.covers_from or request.end < kept.fetched_to:
            return request
        tail_start = kept.fetched_to - max(self._refresh, 2.0 * request.step)
        if tail_start <= request.start:
            return request
        return dataclasses.replace(request, start=tail_start)

    def _forget_idle(self) -> None:
        horizon = self._newest_end - self._idle
        stale = [key for key, kept in self._kept.items() if kept.fetched_to < horizon]
        for key in stale:
            del self._kept[key]


@dataclass(frozen=True, slots=True)
class _Plan:
    key: _Key
    members: list[int]  # indexes of the requests it answers
    cover: SeriesRequest  # spans all of them
    kept: _Kept | None  # what was kept when it was asked
    ask: SeriesRequest  # ``cover`` itself, or only its tail


def _within(series: Series, start: float, end: float) -> Series:
    inside = (series.times >= start) & (series.times <= end)
    if inside.all():
        return series
    return Series(series.times[inside], series.values[inside])


def _arrays(series: Series) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    return np.asarray(series.times, dtype=np.float64), np.asarray(series.values, dtype=np.float64)


def _joined(
    kept: _Kept, tail: Series, ask: SeriesRequest
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Kept samples before the tail, then the tail (which wins wherever both have a sample)."""
    tail_times, tail_values = _arrays(tail)
    cut = ask.start
    if tail_times.size:
        # The tail's grid may be offset from the kept one: no two samples closer than step/2.
        cut = min(cut, float(tail_times[0]) - ask.step / 2.0)
    before = kept.times < cut
    return (
        np.concatenate([kept.times[before], tail_times]),
        np.concatenate([kept.values[before], tail_values]),
    )
