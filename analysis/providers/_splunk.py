"""Splunk Observability Cloud: SignalFlow programs (Flagger's ``splunk`` provider).

Flagger runs the program over SignalFlow's WebSocket; the same computation runs over HTTP, its
messages arriving as Server-Sent Events, which is what this module does:
``POST <stream address>/v2/signalflow/execute?start=<ms>&stop=<ms>&immediate=true`` with the
program as the body and ``X-SF-Token: <sf_token_key>``. The stream address is derived from
``spec.provider.address`` as Flagger derives it (``https://api.<realm>.signalfx.com`` ->
``https://stream.<realm>.signalfx.com``; a ``wss://stream...`` address is used over HTTPS).

A value covers the last ten metric intervals: the ``data`` messages' payloads with a value are
collected; none is no data, more than one time series (``tsId``) is ambiguous (Flagger's
ErrMultipleValuesReturned), else the last value. Series: the window as ``start``/``stop`` with
``resolution`` = the step, one point per ``logicalTimestampMs``. An ``error`` message or an
error ``control-message`` is a rejection with SignalFlow's text. ``ping`` reads
``<api address>/v2/metric?limit=1`` with the token, as Flagger does.
"""

from __future__ import annotations

import json
import math
from typing import Any

from analysis._errors import AmbiguousResult, QueryRejected
from analysis._text import clip
from analysis._types import Series
from analysis.providers._base import (
    Call,
    MetricProvider,
    Window,
    no_values,
    number,
    require_keys,
    window_series,
)

WINDOW_INTERVALS = 10


async def _value(call: Call) -> float:
    start = int((call.now - WINDOW_INTERVALS * call.query.window) * 1000)
    messages = await _execute(call, start, int(call.now * 1000), None)
    payloads = [(tsid, t, v) for tsid, t, v in _payloads(messages) if v is not None]
    if not payloads:
        raise no_values("splunk", "the program published no value")
    series = sorted({tsid for tsid, _, _ in payloads})
    if len(series) > 1:
        raise AmbiguousResult([{"tsId": tsid} for tsid in series])
    value = payloads[-1][2]
    assert value is not None
    return value


async def _series(call: Call, window: Window) -> Series:
    messages = await _execute(
        call,
        int(window.start * 1000),
        math.ceil(window.end * 1000),
        max(1000, int(window.step * 1000)),
    )
    payloads = _payloads(messages)
    series = sorted({tsid for tsid, _, v in payloads if v is not None})
    if len(series) > 1:
        raise AmbiguousResult([{"tsId": tsid} for tsid in series])
    return window_series(((t, v) for _, t, v in payloads), window)


async def _ping(call: Call) -> None:
    require_keys(PROVIDER, call)
    answer = await call.http.send(
        "splunk",
        "GET",
        api_address(call.address) + "/v2/metric",
        insecure=call.query.endpoint.insecure_skip_verify,
        params={"limit": "1"},
        headers={**call.headers, "X-SF-Token": call.credentials.get("sf_token_key", "")},
    )
    if answer.status_code != 200:  # Flagger's IsOnline: 200 only
        raise QueryRejected(
            f"splunk answered HTTP {answer.status_code} to its health check, not 200",
            status=answer.status_code,
        )


async def _execute(
    call: Call, start_ms: int, stop_ms: int, resolution_ms: int | None
) -> list[tuple[str, Any]]:
    require_keys(PROVIDER, call)
    params = {"start": str(start_ms), "stop": str(stop_ms), "immediate": "true"}
    if resolution_ms is not None:
        params["resolution"] = str(resolution_ms)
    response = await call.http.send(
        "splunk",
        "POST",
        stream_address(call.address) + "/v2/signalflow/execute",
        insecure=call.query.endpoint.insecure_skip_verify,
        params=params,
        headers={
            **call.headers,
            "X-SF-Token": call.credentials.get("sf_token_key", ""),
            "Content-Type": "text/plain",
            "Accept": "text/event-stream",
        },
        content=call.expr.encode(),
    )
    messages = server_sent_events(response.text)
    for kind, body in messages:
        if kind == "error" or (
            kind == "control-message" and isinstance(body, dict) and body.get("event") == "ABORT"
        ):
            raise QueryRejected(
                f"splunk: the SignalFlow program failed: {clip(json.dumps(body), 300)}"
            )
    return messages


def _payloads(messages: list[tuple[str, Any]]) -> list[tuple[str, float, float | None]]:
    """(tsId, time in seconds, value) of every ``data`` message payload, in stream order."""
    out: list[tuple[str, float, float | None]] = []
    for kind, body in messages:
        if kind != "data" or not isinstance(body, dict):
            continue
        stamp = number(body.get("logicalTimestampMs", 0), "splunk", "a timestamp") / 1000.0
        for payload in body.get("data") or []:
            if not isinstance(payload, dict):
                raise QueryRejected(f"splunk answered a malformed data payload: {payload!r:.200}")
            raw = payload.get("value")
            value = None if raw is None else number(raw, "splunk", "a value")
            out.append((str(payload.get("tsId", "")), stamp, value))
    return out


def server_sent_events(text: str) -> list[tuple[str, Any]]:
    """(event name, JSON data) of every event of a ``text/event-stream`` body; the data lines
    of one event are joined with newlines, as the SSE format says."""
    events: list[tuple[str, Any]] = []
    name, data = "message", list[str]()
    for line in [*text.splitlines(), ""]:
        if not line:
            if data:
                joined = "\n".join(data)
                try:
                    events.append((name, json.loads(joined)))
                except json.JSONDecodeError:
                    events.append((name, joined))
            name, data = "message", list[str]()
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
    return events


def stream_address(address: str) -> str:
    """Flagger's api -> stream rewrite, over HTTP(S): SignalFlow's HTTP endpoint."""
    out = address.rstrip("/").replace("api", "stream", 1)
    return out.replace("wss://", "https://", 1).replace("ws://", "http://", 1)


def api_address(address: str) -> str:
    out = address.rstrip("/").replace("stream", "api", 1)
    return out.replace("wss://", "https://", 1).replace("ws://", "http://", 1)


PROVIDER = MetricProvider(
    type="splunk",
    summary="Splunk Observability SignalFlow API",
    address_required=True,
    secret_required=True,
    secret_keys=("sf_token_key",),
    schemes=("https", "http", "wss", "ws"),  # Flagger accepts the stream (WebSocket) address too
    value=_value,
    series=_series,
    ping=_ping,
)
