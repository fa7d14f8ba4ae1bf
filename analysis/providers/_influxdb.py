"""InfluxDB 2.x: Flux over ``/api/v2/query`` (Flagger's ``influxdb`` provider).

``POST <address>/api/v2/query?org=<org>`` with ``Authorization: Token <token>`` (the Secret's
``token`` and ``org``, both required once ``secretRef`` is set, as in Flagger) and the Flux query
in a JSON body asking for annotated CSV, as the official client does. The value is the ``_value``
of the first record; a null value is no data. Flagger accepts only a float there, so a
``count()`` (an integer) fails in Flagger; here any numeric column type is read. An answer with no
record at all is no data (Flagger returns 0 for it, which could promote on missing data).

Series: a Flux query carries its own ``range()``, which cannot be rewritten safely, so a series is
the query evaluated at each step of the window with the API's ``now`` set to that step: exactly
what a live check would have seen then, at one request per step (at most ``MAX_STEPS``). ``ping``
runs Flagger's ``from(bucket: "default") |> range(start: -2h)``. Each request may take 15 s, as in
Flagger (the other hosted providers: 5 s).
"""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime
from typing import Any

from analysis._errors import NoValuesFound, QueryRejected
from analysis._types import Series
from analysis.providers._base import (
    Call,
    MetricProvider,
    Window,
    make_series,
    no_values,
    number,
    require_keys,
)

#: Requests one series may cost (one per step).
MAX_STEPS = 1000
#: Flagger's InfluxDB query and ping timeout (Flux queries run longer than the hosted APIs' 5 s).
TIMEOUT_SECONDS = 15.0
#: Steps of one series asked at the same time.
SERIES_CONCURRENCY = 32
_NUMERIC = {"double", "long", "unsignedLong"}
PING_QUERY = 'from(bucket: "default") |> range(start: -2h)'


async def _value(call: Call) -> float:
    return await _first_value(call, call.expr, None)


async def _series(call: Call, window: Window) -> Series:
    import asyncio  # here, not at the top: `validate` imports this module for its rules only

    steps = math.floor((window.end - window.start) / window.step + 1e-9) + 1
    if steps > MAX_STEPS:
        raise QueryRejected(
            f"influxdb answers a series with one query per step: {steps} steps exceed "
            f"{MAX_STEPS}; use a larger step or a shorter window"
        )
    times = [window.end - k * window.step for k in range(steps)][::-1]
    # A few steps at a time: a series counts as one query against the server's limit, and a
    # thousand requests at once would open a thousand connections to it.
    in_flight = asyncio.Semaphore(SERIES_CONCURRENCY)

    async def at(moment: float) -> tuple[float, float]:
        try:
            async with in_flight:
                return moment, await _first_value(call, call.expr, moment)
        except NoValuesFound:
            return moment, math.nan

    return make_series(list(await asyncio.gather(*(at(t) for t in times))))


async def _ping(call: Call) -> None:
    require_keys(PROVIDER, call)
    await _post(call, PING_QUERY, None)


async def _first_value(call: Call, flux: str, now: float | None) -> float:
    require_keys(PROVIDER, call)
    text = await _post(call, flux, now)
    return _first_record_value(text)


async def _post(call: Call, flux: str, now: float | None) -> str:
    headers = call.headers_without_authorization
    token = call.credentials.get("token")
    if token:
        headers["Authorization"] = f"Token {token}"
    headers["Accept"] = "application/csv"
    body: dict[str, Any] = {
        "query": flux,
        "type": "flux",
        "dialect": {"header": True, "annotations": ["datatype", "group", "default"]},
    }
    if now is not None:
        body["now"] = datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z")
    response = await call.http.send(
        "influxdb",
        "POST",
        call.address.rstrip("/") + "/api/v2/query",
        insecure=call.query.endpoint.insecure_skip_verify,
        params={"org": call.credentials.get("org", "")},
        headers=headers,
        json_body=body,
        time_limit=TIMEOUT_SECONDS,
    )
    return response.text


def _first_record_value(text: str) -> float:
    """The first record's ``_value`` of an annotated CSV answer (tables separated by blank
    lines, each with its own annotations and header)."""
    datatypes: list[str] = []
    defaults: list[str] = []
    header: list[str] | None = None
    for row in csv.reader(io.StringIO(text)):
        if not row or all(not cell for cell in row):
            header, datatypes, defaults = None, [], []  # a new table follows
            continue
        if row[0] == "#datatype":
            datatypes = row
            continue
        if row[0] == "#default":
            # an empty cell reads as its column's default (the influxdb client's parser)
            defaults = row
            continue
        if row[0].startswith("#"):
            continue
        if header is None:
            header = row
            continue
        if "error" in header and "_value" not in header:
            raise QueryRejected(f"influxdb query error: {row[header.index('error')]}")
        if "_value" not in header:
            raise QueryRejected(f"influxdb answered a table without _value: {header!r:.200}")
        column = header.index("_value")
        raw = row[column] if column < len(row) else ""
        if raw == "" and column < len(defaults):
            raw = defaults[column]
        kind = datatypes[column] if column < len(datatypes) else "double"
        if raw == "":
            raise no_values("influxdb", "the first record's _value is null")
        if kind not in _NUMERIC:
            raise QueryRejected(f"influxdb answered a {kind} _value {raw!r}, not a number")
        return number(raw, "influxdb", "a _value")
    raise no_values("influxdb", "the query returned no record")


PROVIDER = MetricProvider(
    type="influxdb",
    deadline=2 * TIMEOUT_SECONDS,
    summary="InfluxDB 2.x (Flux query API)",
    address_required=True,
    secret_keys=("token", "org"),
    value=_value,
    series=_series,
    ping=_ping,
)
