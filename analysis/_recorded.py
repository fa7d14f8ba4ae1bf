"""Replay a Recording through the analysis seams: a MetricSource and a WebhookCaller for simulate.

Both read the virtual time through an injected ``now()`` (the engine's clock), so the same engine
code runs live and in simulate. Nothing here waits: every await completes at once, as the virtual
clock requires of actors in simulate. Values are returned raw, exactly as recorded: the recorded
value is what the metric's query returned, so builtin duration scaling happens in the analyzer as it
does for live Prometheus answers.

``fetch_series`` answers a comparative judge's range requests from the same samples, history before
time 0 included, as a Prometheus range query over them would: one point per step on the grid the
live source asks for (``analysis._range_grid``, shared with it: whole milliseconds in
``[start, end]``), none after ``now()``, each point the value an instant query at that time reads
(``Recording.value_at``: the latest sample at or before it, within the 5-minute lookback, the
same ``LOOKBACK_SECONDS``). A point with no sample in the lookback is left out;
one whose latest sample is a recorded no-data row is NaN. So a recording denser than the step (a
row per second) is read once per step, and a sparser one (a row every 2 minutes at a 1-minute
step) still answers every step while its last row is fresh, exactly as live; a recording with one
row per step on the grid reads back row for row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from analysis._range_grid import CANARY_WINDOW_OFFSET, grid_of, invalid_range, range_grid
from analysis._recording import LOOKBACK_SECONDS, Recording
from analysis._types import (
    FailureKind,
    HookOutcome,
    MetricQuery,
    QueryFailure,
    Series,
    SeriesRequest,
)
from config import HookType, Webhook

_Arrays = tuple[NDArray[np.float64], NDArray[np.float64]]


class RecordedMetricSource:
    """Answer metric queries from a Recording at ``now()``; implements MetricSource.

    A query is looked up by (query.target, query.metric); no sample (or one older than the
    5-minute lookback) is NaN, i.e. no data. A query that could not be rendered answers a RENDER
    failure, as a live source would. Also a SeriesSource: range requests are answered on the live
    source's grid (module docstring).
    """

    def __init__(self, recording: Recording, now: Callable[[], float]) -> None:
        self.recording = recording
        self._now = now
        self._series: dict[tuple[str, str], _Arrays] = {}

    async def fetch(self, queries: Sequence[MetricQuery]) -> list[float | QueryFailure]:
        t = self._now()
        out: list[float | QueryFailure] = []
        for query in queries:
            if query.render_error is not None:
                out.append(QueryFailure(FailureKind.RENDER, query.render_error))
                continue
            value = self.recording.value_at(query.target, query.metric, t)
            out.append(math.nan if value is None else value)
        return out

    async def fetch_series(self, requests: Sequence[SeriesRequest]) -> list[Series | QueryFailure]:
        """Each request answered as a live range query over the recording (module docstring):
        the request's grid up to ``now()`` (a live source cannot see the future either), each
        point the latest sample at or before it within the lookback."""
        t = self._now()
        out: list[Series | QueryFailure] = []
        for request in requests:
            query = request.query
            if query.render_error is not None:
                out.append(QueryFailure(FailureKind.RENDER, query.render_error))
                continue
            invalid = invalid_range(request)
            if invalid is not None:
                out.append(invalid)
                continue
            times, values = self._arrays(query.target, query.metric)
            if query.target == "canary":
                # Live, the canary's pods did not exist before its window starts (the analysis:
                # the target is scaled to zero between runs), so nothing from before it can be
                # read through the lookback; a recording's earlier canary rows are the replaced
                # revision's, and are not read either.
                # (the judge asks from just after the analysis' start: a row at the start is
                # this run's, as a live query reads it through the lookback)
                keep = times >= request.start - CANARY_WINDOW_OFFSET
                times, values = times[keep], values[keep]
            out.append(_on_grid(times, values, grid_points(request, t)))
        return out

    def _arrays(self, target: str, metric: str) -> _Arrays:
        """The recorded samples of (target, metric) as sorted arrays (NaN: no data), built once."""
        key = (target, metric)
        found = self._series.get(key)
        if found is None:
            times, values = self.recording.samples(target, metric, -math.inf, math.inf)
            found = (
                np.array(times, dtype=np.float64),
                np.array([math.nan if v is None else v for v in values], dtype=np.float64),
            )
            self._series[key] = found
        return found


def grid_points(request: SeriesRequest, now: float = math.inf) -> NDArray[np.float64]:
    """The instants the live source's range query of ``request`` is evaluated at
    (``analysis._prometheus``'s grid for the request, in whole milliseconds), oldest first, none
    after ``now``. The window must be valid (``invalid_range`` says why not)."""
    grid, steps = range_grid(request)
    newest = 0  # steps back from the grid's end to its newest point at or before ``now``
    if now * 1000 < grid.end_ms:
        now_ms = math.floor(now * 1000 + 0.001)
        newest = -((now_ms - grid.end_ms) // grid.step_ms)  # ceil((end_ms - now_ms) / step_ms)
    back = np.arange(steps, newest - 1, -1, dtype=np.int64)
    return (grid.end_ms - back * grid.step_ms).astype(np.float64) / 1000.0


def history_samples(
    recording: Recording, metric: str, *, window: float, step: float, start: float = 0.0
) -> int:
    """How many primary samples of ``metric`` a judge's envelope reads from ``recording``: the
    points of its grid in the ``window`` before ``start`` (the analysis' start) that have a
    value, read as the live range query reads them (a row every 5 minutes is a value at every
    point of a 1-minute grid, a row a second one a point)."""
    grid, steps = grid_of(start - window, start, step, align=True)
    points = (grid.end_ms - np.arange(steps, -1, -1, dtype=np.int64) * grid.step_ms) / 1000.0
    points = points[points > start - window]
    times, values = recording.samples("primary", metric, -math.inf, start)
    read = _on_grid(
        np.array(times, dtype=np.float64),
        np.array([math.nan if v is None else v for v in values], dtype=np.float64),
        points,
    )
    return int(np.isfinite(read.values).sum())


def _on_grid(
    times: NDArray[np.float64], values: NDArray[np.float64], points: NDArray[np.float64]
) -> Series:
    """What an instant query at each point reads (``Recording.value_at``, vectorised): the latest
    sample at or before it unless older than the lookback; points without one are left out."""
    if times.size == 0 or points.size == 0:
        return Series.empty()
    latest = np.searchsorted(times, points, side="right") - 1
    seen = latest >= 0
    latest = np.maximum(latest, 0)
    fresh = seen & (points - times[latest] <= LOOKBACK_SECONDS)
    return Series(np.ascontiguousarray(points[fresh]), np.ascontiguousarray(values[latest[fresh]]))


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookCall:
    """One webhook call answered from a recording (for simulate's output)."""

    hook: str
    type: str
    time: float
    ok: bool
    phase: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "type": self.type,
            "t": self.time,
            "ok": self.ok,
            "phase": self.phase,
        }


class RecordedWebhooks:
    """Answer webhook calls from a Recording at ``now()``; implements WebhookCaller.

    Every call is appended to ``calls`` in order. Without recorded rows a webhook answers 2xx,
    except a rollback webhook, which answers an error (so it does not signal a rollback).
    """

    def __init__(self, recording: Recording, now: Callable[[], float]) -> None:
        self.recording = recording
        self._now = now
        self.calls: list[WebhookCall] = []

    async def call(self, hook: Webhook, payload: Mapping[str, Any]) -> HookOutcome:
        t = self._now()
        kind = hook.hook_type
        ok = self.recording.webhook_ok(hook.name, t, kind)
        phase = payload.get("phase")
        self.calls.append(
            WebhookCall(
                hook=hook.name,
                type=str(kind),
                time=t,
                ok=ok,
                phase=phase if isinstance(phase, str) else "",
            )
        )
        return HookOutcome(hook, ok, "" if ok else self._why(hook.name, t, kind))

    def _why(self, name: str, t: float, kind: HookType) -> str:
        answer = self.recording.webhook_answer(name, t)
        if answer is None:
            if kind is HookType.ROLLBACK:
                return "no recorded answer: a rollback webhook without rows answers an error"
            return "no recorded answer"
        return f"recorded as answering an error (value 0) since t={answer[1]:g}s"
