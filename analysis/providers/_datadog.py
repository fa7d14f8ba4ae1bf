"""Datadog: the v1 metrics query API (Flagger's ``datadog`` provider).

``GET <address>/api/v1/query?query=...&from=...&to=...`` (address default
``https://api.datadoghq.com``) with the ``DD-API-KEY`` and ``DD-APPLICATION-KEY`` headers from the
Secret's ``datadog_api_key`` and ``datadog_application_key``. A value asks for the last ten metric
intervals and reads, as Flagger does since fluxcd/flagger#1763 (``pl[0]``), the first series'
*oldest* point: the newest bucket, at the end of the window, is almost always still filling, so
counts and rates read low there. No series or no point is no data (a null oldest point too, where
Flagger's Go decoding reads 0).
Series: the same query over the window; the first series' points (``[milliseconds, value]``) in
order. ``ping`` calls ``/api/v1/validate`` with the keys.
"""

from __future__ import annotations

import math
from typing import Any

from analysis._errors import QueryRejected
from analysis._types import Series
from analysis.providers._base import (
    Call,
    MetricProvider,
    Window,
    json_object,
    no_values,
    number,
    require_keys,
    window_series,
)

DEFAULT_ADDRESS = "https://api.datadoghq.com"
#: Flagger asks for this many metric intervals back from now.
WINDOW_INTERVALS = 10


async def _value(call: Call) -> float:
    start = int(call.now - WINDOW_INTERVALS * call.query.window)
    points = await _points(call, start, int(call.now))
    if not points or points[0][1] is None:
        raise no_values("datadog", f"no point in the first series for {call.expr!r}")
    return points[0][1]


async def _series(call: Call, window: Window) -> Series:
    points = await _points(call, int(window.start), math.ceil(window.end))
    return window_series(points, window)


async def _ping(call: Call) -> None:
    require_keys(PROVIDER, call)
    await call.http.send(
        "datadog",
        "GET",
        call.address.rstrip("/") + "/api/v1/validate",
        insecure=call.query.endpoint.insecure_skip_verify,
        headers=_headers(call),
    )


async def _points(call: Call, start: int, end: int) -> list[tuple[float, float | None]]:
    require_keys(PROVIDER, call)
    response = await call.http.send(
        "datadog",
        "GET",
        call.address.rstrip("/") + "/api/v1/query",
        insecure=call.query.endpoint.insecure_skip_verify,
        params={"query": call.expr, "from": str(start), "to": str(end)},
        headers=_headers(call),
    )
    return _first_series(json_object(response, "datadog"))


def _headers(call: Call) -> dict[str, str]:
    headers = call.headers
    headers["DD-API-KEY"] = call.credentials.get("datadog_api_key", "")
    headers["DD-APPLICATION-KEY"] = call.credentials.get("datadog_application_key", "")
    return headers


def _first_series(body: dict[str, Any]) -> list[tuple[float, float | None]]:
    """``{"series": [{"pointlist": [[ms, value], ...]}, ...]}``: the first series' points, in
    seconds. Datadog reports a query error as ``{"status": "error", "error": ...}``."""
    if body.get("status") == "error":
        raise QueryRejected(f"datadog rejected the query: {body.get('error', '')}")
    series = body.get("series") or []
    if not isinstance(series, list) or not series or not isinstance(series[0], dict):
        raise no_values("datadog", "the answer holds no series")
    out: list[tuple[float, float | None]] = []
    for point in series[0].get("pointlist") or []:
        if not isinstance(point, list) or len(point) != 2:
            raise QueryRejected(f"datadog answered a malformed point: {point!r}")
        stamp = number(point[0], "datadog", "a point time") / 1000.0
        value = None if point[1] is None else number(point[1], "datadog", "a point value")
        out.append((stamp, value))
    return out


PROVIDER = MetricProvider(
    type="datadog",
    summary="Datadog metrics query API",
    default_address=DEFAULT_ADDRESS,
    secret_required=True,
    secret_keys=("datadog_api_key", "datadog_application_key"),
    value=_value,
    series=_series,
    ping=_ping,
)
