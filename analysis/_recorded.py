"""Replay a Recording through the analysis seams: a MetricSource and a WebhookCaller for simulate.

Both read the virtual time through an injected ``now()`` (the engine's clock), so the same engine
code runs live and in simulate. Nothing here waits: every await completes at once, as the virtual
clock requires of actors in simulate. ``fetch_series`` answers a comparative
judge's range requests from the same samples, history before time 0 included. Values are returned
raw, exactly as recorded: the recorded
value is what the metric's query returned, so builtin duration scaling happens in the analyzer as it
does for live Prometheus answers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis._recording import Recording
from analysis._types import (
    FailureKind,
    HookOutcome,
    MetricQuery,
    QueryFailure,
    Series,
    SeriesRequest,
)
from config import HookType, Webhook


class RecordedMetricSource:
    """Answer metric queries from a Recording at ``now()``; implements MetricSource.

    A query is looked up by (query.target, query.metric); no sample (or one older than the
    5-minute lookback) is NaN, i.e. no data. A query that could not be rendered answers a RENDER
    failure, as a live source would.
    """

    def __init__(self, recording: Recording, now: Callable[[], float]) -> None:
        self.recording = recording
        self._now = now

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
        """The recorded samples of each request's (target, metric) within [start, end], never
        after ``now()`` (a live source cannot see the future either). Recorded samples already
        are one per query window, so ``step`` is not applied: they are returned as recorded."""
        t = self._now()
        out: list[Series | QueryFailure] = []
        for request in requests:
            query = request.query
            if query.render_error is not None:
                out.append(QueryFailure(FailureKind.RENDER, query.render_error))
                continue
            times, values = self.recording.samples(
                query.target, query.metric, request.start, min(request.end, t)
            )
            out.append(
                Series(
                    np.array(times, dtype=np.float64),
                    np.array([math.nan if v is None else v for v in values], dtype=np.float64),
                )
            )
        return out


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
