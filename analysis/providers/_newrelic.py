"""New Relic: the Insights query API with NRQL (Flagger's ``newrelic`` provider).

``GET <address>/v1/accounts/<newrelic_account_id>/query?nrql=<query> SINCE <interval> seconds ago``
(address default ``https://insights-api.newrelic.com``) with ``X-Query-Key: <newrelic_query_key>``,
both keys from the Secret. The answer must hold exactly one result; its ``result`` is the value,
as in Flagger. Where NRQL names the value after its function (``{"sum": 9.2e7}``, fluxcd/flagger
issue 1584, which Flagger reports as "no values found") a result with exactly one number is
taken too. Series: the query with ``SINCE <ms> UNTIL <ms> TIMESERIES <step> seconds``; each
bucket's value at its end time. ``ping`` runs ``SELECT * FROM Metric SINCE <interval> seconds
ago``, as Flagger's ``IsOnline`` (its ``newInsightsRequest`` appends the interval to every query),
and reads only the status: HTTP 200 is online, whatever the body.
"""

from __future__ import annotations

import math
from typing import Any

from analysis._errors import QueryRejected
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

DEFAULT_ADDRESS = "https://insights-api.newrelic.com"


async def _value(call: Call) -> float:
    body = await _query(call, _since_interval(call, call.expr))
    results = body.get("results")
    if not isinstance(results, list) or len(results) != 1:
        raise no_values("newrelic", f"expected one result, got {clip(str(results), 200)}")
    value = _result_value(results[0])
    if value is None:
        raise no_values("newrelic", f"the result holds no value: {clip(str(results[0]), 200)}")
    return value


async def _series(call: Call, window: Window) -> Series:
    step = max(1, int(window.step))
    nrql = (
        f"{call.expr} SINCE {int(window.start * 1000)} UNTIL {math.ceil(window.end * 1000)} "
        f"TIMESERIES {step} seconds"
    )
    return window_series(_buckets(await _query(call, nrql)), window)


async def _ping(call: Call) -> None:
    await _query(call, _since_interval(call, "SELECT * FROM Metric"), status_only=True)


def _since_interval(call: Call, nrql: str) -> str:
    """Flagger's ``newInsightsRequest``: ``<nrql> SINCE <interval> seconds ago``, the metric's
    interval in whole seconds (Go's ``int64(d.Seconds())``: truncated)."""
    return f"{nrql} SINCE {int(call.query.window)} seconds ago"


async def _query(call: Call, nrql: str, *, status_only: bool = False) -> dict[str, Any]:
    """The answer's JSON object; with ``status_only`` (Flagger's ``IsOnline``), nothing but a
    check that the status is HTTP 200, whatever the body."""
    require_keys(PROVIDER, call)
    account = call.credentials.get("newrelic_account_id", "")
    headers = call.headers
    headers["X-Query-Key"] = call.credentials.get("newrelic_query_key", "")
    response = await call.http.send(
        "newrelic",
        "GET",
        f"{call.address.rstrip('/')}/v1/accounts/{account}/query",
        insecure=call.query.endpoint.insecure_skip_verify,
        params={"nrql": nrql},
        headers=headers,
    )
    if status_only:
        if response.status_code != 200:
            raise QueryRejected(
                f"newrelic answered HTTP {response.status_code}", status=response.status_code
            )
        return {}
    body = json_object(response, "newrelic")
    if body.get("error"):
        raise QueryRejected(f"newrelic rejected the query: {body['error']}")
    return body


def _buckets(body: dict[str, Any]) -> list[tuple[float, float | None]]:
    """(end time, value) of every bucket of a TIMESERIES answer; None where it has no value."""
    buckets = body.get("timeSeries")
    if not isinstance(buckets, list):
        raise QueryRejected(
            f"newrelic answered no timeSeries for a TIMESERIES query: {body!r:.200}"
        )
    points: list[tuple[float, float | None]] = []
    for bucket in buckets:
        if not isinstance(bucket, dict):
            raise QueryRejected(f"newrelic answered a malformed bucket: {bucket!r:.200}")
        end = number(bucket.get("endTimeSeconds"), "newrelic", "a bucket end time")
        results = bucket.get("results") or []
        points.append((end, _result_value(results[0]) if len(results) == 1 else None))
    return points


def _result_value(result: Any) -> float | None:
    """``result`` of one NRQL result, or its only number; None when it holds no value."""
    if not isinstance(result, dict):
        return None
    if "result" in result:
        raw = result["result"]
        return None if raw is None else number(raw, "newrelic", "a result")
    numbers = [v for v in result.values() if isinstance(v, int | float) and not isinstance(v, bool)]
    return float(numbers[0]) if len(numbers) == 1 else None


PROVIDER = MetricProvider(
    type="newrelic",
    summary="New Relic Insights query API",
    default_address=DEFAULT_ADDRESS,
    secret_required=True,
    secret_keys=("newrelic_account_id", "newrelic_query_key"),
    value=_value,
    series=_series,
    ping=_ping,
)
