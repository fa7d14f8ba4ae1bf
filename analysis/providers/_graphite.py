"""Graphite: the render URL API (Flagger's ``graphite`` provider).

The template's query is the render API's query string (``target=...&from=-1min``): whitespace
runs become one space and ``format=json`` is set, then it is sent as
``GET <address>/render?...`` with basic auth when the Secret holds ``username`` and ``password``
(both required once ``secretRef`` is set). The value is the newest non-null datapoint of the
answer (across its targets, as Flagger reads it); none at all is no data. Series: the same query
with ``from`` / ``until`` replaced by the window (Unix seconds), read as Graphite stores it (one
point per retention step; the window's ``step`` does not resample). Several targets holding
data in a series answer are ambiguous. ``ping`` runs ``target=test``; no data is fine.
"""

from __future__ import annotations

import base64
import contextlib
import re
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

from analysis._errors import AmbiguousResult, NoValuesFound, QueryRejected
from analysis._text import clip
from analysis._types import Series
from analysis.providers._base import (
    Call,
    MetricProvider,
    Window,
    json_body,
    no_values,
    number,
    require_keys,
    window_series,
)

_SPACE = re.compile(r"\s+")
_WINDOW_PARAMS = {"from", "until", "now", "format"}


async def _value(call: Call) -> float:
    answer = await _render(call, _params(call.expr))
    value: float | None = None
    for _, points in answer:
        for stamp_value in points:
            if stamp_value[1] is not None:
                value = stamp_value[1]
    if value is None:
        raise no_values("graphite", f"no datapoint for {call.expr!r}")
    return value


async def _series(call: Call, window: Window) -> Series:
    params = [(k, v) for k, v in _params(call.expr) if k not in _WINDOW_PARAMS]
    params += [("from", str(int(window.start))), ("until", str(int(window.end)))]
    answer = await _render(call, params)
    holding = [
        (target, points) for target, points in answer if any(v is not None for _, v in points)
    ]
    if len(holding) > 1:
        raise AmbiguousResult([{"target": target} for target, _ in holding])
    if not holding:
        return Series.empty()
    return window_series(holding[0][1], window)


async def _ping(call: Call) -> None:
    with contextlib.suppress(NoValuesFound):  # reachable and answering: online, as in Flagger
        await _value(replace(call, expr="target=test"))


def _params(expr: str) -> list[tuple[str, str]]:
    query = _SPACE.sub(" ", expr).strip().lstrip("?")
    return [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "format"]


async def _render(
    call: Call, params: list[tuple[str, str]]
) -> list[tuple[str, list[tuple[float, float | None]]]]:
    require_keys(PROVIDER, call)
    headers = call.headers
    user, password = call.credentials.get("username"), call.credentials.get("password")
    if call.has_secret and user and password:
        pair = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        headers = call.headers_without_authorization
        headers["Authorization"] = f"Basic {pair}"
    response = await call.http.send(
        "graphite",
        "GET",
        call.address.rstrip("/") + "/render",
        insecure=call.query.endpoint.insecure_skip_verify,
        params=[*params, ("format", "json")],
        headers=headers,
    )
    return _targets(json_body(response, "graphite"))


def _targets(body: Any) -> list[tuple[str, list[tuple[float, float | None]]]]:
    """``[{"target": ..., "datapoints": [[value, time], ...]}, ...]`` as (target, [(t, v)])."""
    if not isinstance(body, list):
        raise QueryRejected(f"graphite answered {clip(str(body), 200)!r}, not a list of targets")
    out: list[tuple[str, list[tuple[float, float | None]]]] = []
    for entry in body:
        if not isinstance(entry, dict) or not isinstance(entry.get("datapoints"), list):
            raise QueryRejected(f"graphite answered a malformed target: {clip(str(entry), 200)!r}")
        points: list[tuple[float, float | None]] = []
        for point in entry["datapoints"]:
            if not isinstance(point, list) or len(point) != 2:
                raise QueryRejected(f"graphite answered a malformed datapoint: {point!r}")
            raw, stamp = point
            value = None if raw is None else number(raw, "graphite", "a datapoint value")
            points.append((number(stamp, "graphite", "a datapoint time"), value))
        out.append((str(entry.get("target", "")), points))
    return out


PROVIDER = MetricProvider(
    type="graphite",
    summary="Graphite render API",
    address_required=True,
    secret_keys=("username", "password"),
    value=_value,
    series=_series,
    ping=_ping,
)
