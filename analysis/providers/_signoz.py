"""SigNoz: the v5 Query Range API (Flagger's ``signoz`` provider).

The template's query is a whole Query Range request (JSON). A value ``POST``s it unchanged, as
Flagger does, to ``<address>/api/v5/query_range`` (the address' path kept, its query dropped;
the address is required: SigNoz has no default) with ``Content-Type: application/json``, the
template's headers and, once ``secretRef`` is set, ``SIGNOZ-API-KEY: <apiKey>`` (the Secret must
then hold ``apiKey``). The answer must hold exactly one result with exactly one series, as in
Flagger: none is no data, several are ambiguous. The value is that series' *last* point (by
position, as Flagger reads ``values[len-1]``); a ``NaN`` or null value is no data.

The answer is read in the shape Flagger decodes (``data.result[].series[].values[]``, values as
strings: SigNoz's v3/v4 shape, the one Flagger's tests use) and in the shape the v5 endpoint
documents (``data.data.results[].aggregations[].series[].values[]``, values as numbers or
``"NaN"``), which Flagger's decoding reads as no result at all. A ``{"status": "error"}`` answer is
a rejected query (Flagger: no values).

Series: the same request with ``start`` / ``end`` set to the window (milliseconds),
``requestType`` ``time_series`` and every ``builder_query``'s ``stepInterval`` set to the step
(other query types keep their own resolution); the one series' points inside the window. ``ping``
runs Flagger's ``IsOnline`` query (a ``builder_formula`` ``1`` over the last minute) and wants 1.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from analysis._errors import AmbiguousResult, QueryRejected
from analysis._text import clip
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

#: Flagger's ``SignozAPIPath``, joined to the address' own path.
API_PATH = "/api/v5/query_range"
API_KEY = "apiKey"
API_KEY_HEADER = "SIGNOZ-API-KEY"

Points = list[tuple[float, float | None]]
#: One series of an answer: its labels (for an ambiguity message) and its (time, value) points.
SeriesAnswer = tuple[dict[str, str], Points]


async def _value(call: Call) -> float:
    return await _value_of(call, call.expr.encode())


async def _series(call: Call, window: Window) -> Series:
    results = _results(await _query(call, _ranged(call.expr, window)))
    if not results or (len(results) == 1 and not results[0][1]):
        return Series.empty()  # no data over the window: steps without data, not a failure
    _, points = _one_series(results)
    return window_series(points, window)


async def _ping(call: Call) -> None:
    # Flagger's IsOnline: a formula that is always 1 over the last minute of the clock.
    now = int(call.now * 1000)
    body = {
        "start": now - 60_000,
        "end": now,
        "requestType": "time_series",
        "compositeQuery": {
            "queries": [
                {
                    "type": "builder_formula",
                    "spec": {"name": "F1", "expression": "1", "disabled": False},
                }
            ]
        },
    }
    value = await _value_of(call, json.dumps(body).encode())
    if value != 1.0:
        raise QueryRejected("signoz: value is not 1 for query: builder_formula 1")


async def _value_of(call: Call, content: bytes) -> float:
    _, points = _one_series(_results(await _query(call, content)))
    if not points:
        raise no_values("signoz", "the series holds no value")
    value = points[-1][1]
    if value is None or math.isnan(value):
        raise no_values("signoz", "the last value of the series is NaN")
    return value


async def _query(call: Call, content: bytes) -> dict[str, Any]:
    require_keys(PROVIDER, call)
    # The provider's own headers win over the template's (Flagger's Header.Set), in any case.
    own = {"content-type", API_KEY_HEADER.lower()}
    headers = {k: v for k, v in call.headers.items() if k.lower() not in own}
    headers["Content-Type"] = "application/json"
    api_key = call.credentials.get(API_KEY, "") if call.has_secret else ""
    if api_key:
        headers[API_KEY_HEADER] = api_key
    response = await call.http.send(
        "signoz",
        "POST",
        _url(call.address),
        insecure=call.query.endpoint.insecure_skip_verify,
        headers=headers,
        content=content,
    )
    body = json_object(response, "signoz")
    if body.get("status") == "error":
        raise QueryRejected(f"signoz rejected the query: {_error_text(body.get('error'))}")
    return body


def _url(address: str) -> str:
    """``API_PATH`` under the address' path, without its query (Flagger's ResolveReference)."""
    parts = urlsplit(address)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + API_PATH, "", ""))


def _ranged(expr: str, window: Window) -> bytes:
    """The template's request asking for the window at the step."""
    try:
        request = json.loads(expr)
    except ValueError:
        raise QueryRejected("signoz: the query is not a JSON Query Range request") from None
    if not isinstance(request, dict):
        raise QueryRejected("signoz: the query is not a JSON object (a Query Range request)")
    request["start"] = int(window.start * 1000)
    request["end"] = math.ceil(window.end * 1000)
    request["requestType"] = "time_series"
    step = max(1, int(window.step))
    composite = request.get("compositeQuery")
    queries = composite.get("queries") if isinstance(composite, dict) else None
    for query in queries if isinstance(queries, list) else []:
        if isinstance(query, dict) and query.get("type") == "builder_query":
            spec = query.get("spec")
            if isinstance(spec, dict):
                spec["stepInterval"] = step
    return json.dumps(request).encode()


def _one_series(results: list[tuple[str, list[SeriesAnswer]]]) -> SeriesAnswer:
    """The answer's only series, checked as Flagger checks it: results first, then series."""
    if not results:
        raise no_values("signoz", "the answer holds no result")
    if len(results) > 1:
        raise AmbiguousResult([{"queryName": name} for name, _ in results])
    name, series = results[0]
    if not series:
        raise no_values("signoz", f"result {name!r} holds no series")
    if len(series) > 1:
        raise AmbiguousResult([labels or {"queryName": name} for labels, _ in series])
    return series[0]


def _results(body: dict[str, Any]) -> list[tuple[str, list[SeriesAnswer]]]:
    """(queryName, series) of every result, from either answer shape (module docstring)."""
    data = body.get("data")
    if data is None:
        return []
    if not isinstance(data, dict):
        raise QueryRejected(f"signoz answered a malformed data field: {clip(str(data), 200)!r}")
    if "result" in data:  # Flagger's (v3/v4) shape
        return [
            (str(r.get("queryName", "")), [_one(s) for s in _list(r.get("series"), "series")])
            for r in _objects(data["result"], "result")
        ]
    inner = data.get("data")
    if not isinstance(inner, dict):
        return []
    found: list[tuple[str, list[SeriesAnswer]]] = []
    for result in _objects(inner.get("results"), "result"):
        series = [
            _one(s)
            for bucket in _objects(result.get("aggregations"), "aggregation")
            for s in _list(bucket.get("series"), "series")
        ]
        found.append((str(result.get("queryName", "")), series))
    return found


def _one(series: Any) -> SeriesAnswer:
    if not isinstance(series, dict):
        raise QueryRejected(f"signoz answered a malformed series: {clip(str(series), 200)!r}")
    points: Points = []
    for point in _objects(series.get("values"), "value"):
        # A value reads the last point by position: a missing timestamp matters to series only.
        when = point.get("timestamp")
        stamp = math.nan if when is None else number(when, "signoz", "a timestamp") / 1000.0
        raw = point.get("value")
        points.append((stamp, None if raw is None else number(raw, "signoz", "a value")))
    return _labels(series.get("labels")), points


def _labels(labels: Any) -> dict[str, str]:
    """A map (v3/v4) or ``[{"key": {"name": ...}, "value": ...}]`` (v5) as a label set."""
    if isinstance(labels, dict):
        return {str(k): str(v) for k, v in labels.items()}
    found: dict[str, str] = {}
    for label in labels if isinstance(labels, list) else []:
        if isinstance(label, dict) and isinstance(label.get("key"), dict):
            found[str(label["key"].get("name", ""))] = str(label.get("value", ""))
    return found


def _objects(items: Any, what: str) -> list[dict[str, Any]]:
    found = _list(items, what)
    for item in found:
        if not isinstance(item, dict):
            raise QueryRejected(f"signoz answered a malformed {what}: {clip(str(item), 200)!r}")
    return found


def _list(items: Any, what: str) -> list[Any]:
    if items is None:  # Go decodes null as an empty slice
        return []
    if not isinstance(items, list):
        raise QueryRejected(f"signoz answered a malformed {what} list: {clip(str(items), 200)!r}")
    return items


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or error)
    return str(error)


PROVIDER = MetricProvider(
    type="signoz",
    summary="SigNoz Query Range API",
    address_required=True,
    secret_keys=(API_KEY,),
    value=_value,
    series=_series,
    ping=_ping,
)
