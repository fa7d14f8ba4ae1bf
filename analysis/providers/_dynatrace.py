"""Dynatrace: the metrics v2 query API (Flagger's ``dynatrace`` provider).

``GET <address>/api/v2/metrics/query?metricSelector=...&resolution=Inf&from=<ms>&to=<ms>`` with
``Authorization: Api-Token <dynatrace_token>``; the address (the environment URL) is required. A
value covers the last ten metric intervals and is, as Flagger reads it, the first value of the
*last* data entry of the first result; none is no data. Series: the same selector with the
window's ``resolution`` (``<step>s``, at least 1m as Dynatrace allows) and every timestamp of
that entry. ``ping`` lists one metric (``/api/v2/metrics?pageSize=1``).
"""

from __future__ import annotations

import math
from typing import Any

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

WINDOW_INTERVALS = 10
#: Dynatrace's finest resolution for a query (seconds).
MIN_RESOLUTION = 60


async def _value(call: Call) -> float:
    now_ms = int(call.now) * 1000
    start_ms = now_ms - int(WINDOW_INTERVALS * call.query.window * 1000)
    _times, values = await _entry(call, "Inf", start_ms, now_ms)
    if not values or values[0] is None:
        raise no_values("dynatrace", f"no value for {call.expr!r}")
    return values[0]


async def _series(call: Call, window: Window) -> Series:
    resolution = f"{max(MIN_RESOLUTION, int(window.step))}s"
    times, values = await _entry(
        call, resolution, int(window.start * 1000), math.ceil(window.end * 1000)
    )
    return window_series(zip(times, values, strict=False), window)


async def _ping(call: Call) -> None:
    require_keys(PROVIDER, call)
    await call.http.send(
        "dynatrace",
        "GET",
        call.address.rstrip("/") + "/api/v2/metrics",
        insecure=call.query.endpoint.insecure_skip_verify,
        params={"pageSize": "1"},
        headers=_headers(call),
    )


async def _entry(
    call: Call, resolution: str, start_ms: int, end_ms: int
) -> tuple[list[float], list[float | None]]:
    require_keys(PROVIDER, call)
    response = await call.http.send(
        "dynatrace",
        "GET",
        call.address.rstrip("/") + "/api/v2/metrics/query",
        insecure=call.query.endpoint.insecure_skip_verify,
        params={
            "metricSelector": call.expr,
            "resolution": resolution,
            "from": str(start_ms),
            "to": str(end_ms),
        },
        headers=_headers(call),
    )
    return _last_entry(json_object(response, "dynatrace"))


def _headers(call: Call) -> dict[str, str]:
    headers = call.headers_without_authorization
    headers["Authorization"] = f"Api-Token {call.credentials.get('dynatrace_token', '')}"
    return headers


def _last_entry(body: dict[str, Any]) -> tuple[list[float], list[float | None]]:
    """``{"result": [{"data": [{"timestamps": [ms...], "values": [...]}]}]}``: the last data
    entry of the first result, times in seconds."""
    result = body.get("result") or []
    if not isinstance(result, list) or not result or not isinstance(result[0], dict):
        raise no_values("dynatrace", "the answer holds no result")
    data = result[0].get("data") or []
    if not isinstance(data, list) or not data or not isinstance(data[-1], dict):
        raise no_values("dynatrace", "the first result holds no data")
    entry = data[-1]
    times = [number(t, "dynatrace", "a timestamp") / 1000.0 for t in entry.get("timestamps") or []]
    values = [
        None if v is None else number(v, "dynatrace", "a value") for v in entry.get("values") or []
    ]
    return times, values


PROVIDER = MetricProvider(
    type="dynatrace",
    summary="Dynatrace environment (metrics v2 API)",
    address_required=True,
    secret_required=True,
    secret_keys=("dynatrace_token",),
    value=_value,
    series=_series,
    ping=_ping,
)
