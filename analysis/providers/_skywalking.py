"""Apache SkyWalking: the OAP's GraphQL query API (Flagger's ``skywalking`` provider).

The template's query is a GraphQL document taking a ``$duration: Duration!`` variable, e.g.
``query q($duration: Duration!) { service_apdex: readMetricsValues(condition: {...},
duration: $duration) { label values { values { value } } } }``. A value ``POST``s it to
``<address>/graphql`` (the address is required: the OAP's HTTP port, usually ``:12800``) as
``{"query": ..., "variables": {"duration": {"start": ..., "end": ..., "step": "MINUTE"}}}``, the
duration being the metric's ``interval`` back from the clock's now, in minutes
(``2006-01-02 1504``, UTC), as Flagger sends it. No Secret is read: Flagger's provider has no
credentials; the template's headers are sent. A GraphQL ``errors`` answer is a rejected query.

The answer's ``data`` maps each alias to ``{"values": {"values": [{"value": ...}, ...]}}``; the
value is the *first* non-null value (the oldest minute holding data), as Flagger reads it. None
at all is no data. Where Flagger picks one alias at random (Go map order), several aliases
holding values are ambiguous here; a ``value`` whose ``isEmptyValue`` is true (when the query
asks for that field) counts as null, where Flagger reads the 0 SkyWalking puts there.

Series: the same query over the window, at ``MINUTE`` steps (``HOUR`` from a one-hour step,
``DAY`` from a one-day step; the duration's format follows the step, as SkyWalking requires).
SkyWalking answers one value per time bucket from the start bucket to the end bucket, in order,
without times: the i-th value is placed at the start of the i-th bucket, and the points inside
the window are kept. ``ping`` is Flagger's: ``GET <address>/internal/l7check``; HTTP 405 (an OAP
older than that endpoint) is online too.
"""

from __future__ import annotations

import time
from typing import Any

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

#: SkyWalking's Step names: (seconds, the Duration's start/end format at that step).
STEPS: dict[str, tuple[int, str]] = {
    "MINUTE": (60, "%Y-%m-%d %H%M"),
    "HOUR": (3600, "%Y-%m-%d %H"),
    "DAY": (86400, "%Y-%m-%d"),
}

Values = list[float | None]


async def _value(call: Call) -> float:
    aliases = await _query(call, call.now - call.query.window, call.now, "MINUTE")
    holding = [(alias, values) for alias, values in aliases if any(v is not None for v in values)]
    if not holding:
        raise no_values("skywalking", "no alias holds a value")
    if len(holding) > 1:
        raise AmbiguousResult([{"alias": alias} for alias, _ in holding])
    return next(v for v in holding[0][1] if v is not None)


async def _series(call: Call, window: Window) -> Series:
    step = "DAY" if window.step >= 86400 else "HOUR" if window.step >= 3600 else "MINUTE"
    aliases = await _query(call, window.start, window.end, step)
    holding = [(alias, values) for alias, values in aliases if any(v is not None for v in values)]
    if len(holding) > 1:
        raise AmbiguousResult([{"alias": alias} for alias, _ in holding])
    if not holding:
        return Series.empty()
    seconds = STEPS[step][0]
    first = window.start // seconds * seconds  # the start of the bucket SkyWalking starts at
    points = [(first + i * seconds, v) for i, v in enumerate(holding[0][1])]
    return window_series(points, window)


async def _ping(call: Call) -> None:
    try:
        answer = await call.http.send(
            "skywalking",
            "GET",
            call.address.rstrip("/") + "/internal/l7check",
            insecure=call.query.endpoint.insecure_skip_verify,
            headers=call.headers,
        )
    except QueryRejected as exc:
        # /internal/l7check is recent: older OAPs answer a GET there with 405, which Flagger
        # takes as online too.
        if exc.status != 405:
            raise
        return
    if answer.status_code != 200:  # Flagger's IsOnline: 200 (or 405) only
        raise QueryRejected(
            f"skywalking answered HTTP {answer.status_code} to its health check, not 200",
            status=answer.status_code,
        )


async def _query(call: Call, start: float, end: float, step: str) -> list[tuple[str, Values]]:
    require_keys(PROVIDER, call)
    layout = STEPS[step][1]
    duration = {
        "start": time.strftime(layout, time.gmtime(start)),
        "end": time.strftime(layout, time.gmtime(end)),
        "step": step,
    }
    headers = {k: v for k, v in call.headers.items() if k.lower() not in ("content-type", "accept")}
    # What Flagger's GraphQL client (machinebox/graphql) sends.
    headers["Accept"] = "application/json; charset=utf-8"
    response = await call.http.send(
        "skywalking",
        "POST",
        call.address.rstrip("/") + "/graphql",
        insecure=call.query.endpoint.insecure_skip_verify,
        headers=headers,
        json_body={"query": call.expr, "variables": {"duration": duration}},
    )
    body = json_object(response, "skywalking")
    errors = body.get("errors")
    if errors:  # GraphQL reports a bad query with HTTP 200 and ``errors``
        first = errors[0] if isinstance(errors, list) else errors
        message = first.get("message", first) if isinstance(first, dict) else first
        raise QueryRejected(f"skywalking rejected the query: {message}")
    return _aliases(body.get("data"))


def _aliases(data: Any) -> list[tuple[str, Values]]:
    """``{alias: {"values": {"values": [{"value": n}, ...]}}}`` as (alias, values), in order."""
    if data is None:
        return []
    if not isinstance(data, dict):
        raise QueryRejected(f"skywalking answered a malformed data field: {clip(str(data), 200)!r}")
    found: list[tuple[str, Values]] = []
    for alias, entry in data.items():
        if entry is None:  # an alias the OAP answered null for: no values, as Go decodes it
            found.append((str(alias), []))
            continue
        if not isinstance(entry, dict):
            raise QueryRejected(
                f"skywalking answered {alias!r} that is not metrics values: "
                f"{clip(str(entry), 200)!r}"
            )
        outer = entry.get("values")
        if outer is not None and not isinstance(outer, dict):
            raise QueryRejected(f"skywalking answered malformed values: {clip(str(outer), 200)!r}")
        inner = (outer or {}).get("values")
        if inner is not None and not isinstance(inner, list):
            raise QueryRejected(f"skywalking answered malformed values: {clip(str(inner), 200)!r}")
        found.append((str(alias), [_one(item) for item in inner or []]))
    return found


def _one(item: Any) -> float | None:
    if not isinstance(item, dict):
        raise QueryRejected(f"skywalking answered a malformed value: {clip(str(item), 200)!r}")
    raw = item.get("value")
    if raw is None or item.get("isEmptyValue") is True:
        return None
    return number(raw, "skywalking", "a value")


PROVIDER = MetricProvider(
    type="skywalking",
    summary="SkyWalking OAP GraphQL API",
    address_required=True,
    value=_value,
    series=_series,
    ping=_ping,
)
