"""Google Cloud Monitoring (Stackdriver): MQL queries (Flagger's ``stackdriver`` provider).

``POST https://monitoring.googleapis.com/v3/projects/<project>/timeSeries:query`` with the MQL
query and an OAuth 2 bearer token (scope ``monitoring.read``): the REST form of the
``QueryTimeSeries`` call Flagger's gRPC client makes. The Secret holds ``project`` (required)
and optionally ``serviceAccountKey`` (a service-account JSON key); without a key, the
credentials are Google's Application Default Credentials (Workload Identity on GKE), as in
Flagger. Tokens come from ``google-auth`` (the service-account JWT exchange or the metadata
server), never hand-written crypto; they are cached per key until they expire. ``address``
overrides the API endpoint.

The value is, as in Flagger, the first value of the first point of the first time series (the
point's time is not read: Flagger's own test answers a point without ``timeInterval``); an empty
answer is no data. Series: every point of the first time series (at each point's end time, which
a point must then have) inside the window; the span is the query's own (MQL's ``within``, else
Cloud Monitoring's default), so a window longer than it yields fewer samples. ``ping`` sends an
empty query: only HTTP 400 (reached, authorised, query invalid) means online, as Flagger's
``InvalidArgument``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
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
    online_if_bad_request,
    require_keys,
    window_series,
)

DEFAULT_ADDRESS = "https://monitoring.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/monitoring.read"
#: Google credentials by the hash of their service-account key ("" for the default ones).
_credentials: dict[str, Any] = {}


async def _value(call: Call) -> float:
    points = await _first_series(call, call.expr)
    if not points:
        raise no_values("stackdriver", f"no point for {call.expr!r}")
    _, value = points[0]
    if value is None:
        raise no_values("stackdriver", "the first point holds no value")
    return value


async def _series(call: Call, window: Window) -> Series:
    points = await _first_series(call, call.expr)
    return window_series(((_end_time(point), value) for point, value in points), window)


async def _ping(call: Call) -> None:
    await online_if_bad_request(_query(call, ""))


async def _first_series(call: Call, mql: str) -> list[tuple[dict[str, Any], float | None]]:
    """Each point of the first time series with its first value (None when it has none). The
    time is left to ``_end_time``: a single value does not need it."""
    body = await _query(call, mql)
    data = body.get("timeSeriesData") or []
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        return []
    points: list[tuple[dict[str, Any], float | None]] = []
    for point in data[0].get("pointData") or []:
        if not isinstance(point, dict):
            raise QueryRejected(f"stackdriver answered a malformed point: {point!r:.200}")
        values = point.get("values") or []
        points.append((point, _typed_value(values[0]) if values else None))
    return points


def _end_time(point: dict[str, Any]) -> float:
    return _seconds((point.get("timeInterval") or {}).get("endTime"))


async def _query(call: Call, mql: str) -> dict[str, Any]:
    require_keys(PROVIDER, call)
    project = call.credentials.get("project", "")
    token = await _token(call.credentials.get("serviceAccountKey", ""))
    headers = call.headers_without_authorization
    headers["Authorization"] = f"Bearer {token}"
    response = await call.http.send(
        "stackdriver",
        "POST",
        f"{call.address.rstrip('/')}/v3/projects/{project}/timeSeries:query",
        insecure=call.query.endpoint.insecure_skip_verify,
        headers=headers,
        json_body={"query": mql},
    )
    return json_object(response, "stackdriver")


async def _token(key: str) -> str:
    """An access token for ``key`` (a service-account JSON key; "" for the default
    credentials), refreshed off the event loop when missing or expired."""
    import asyncio  # here, not at the top: `validate` imports this module for its rules only

    import google.auth  # ~150 ms of imports: only when Cloud Monitoring is used
    import google.auth.exceptions
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    cache_key = hashlib.sha256(key.encode()).hexdigest() if key else ""
    credentials: Any = _credentials.get(cache_key)
    try:
        if credentials is None:
            if key:
                try:
                    info = json.loads(key)
                except json.JSONDecodeError:
                    raise QueryRejected(
                        "stackdriver: the Secret's serviceAccountKey is not a JSON key"
                    ) from None
                from_info: Any = service_account.Credentials.from_service_account_info
                credentials = from_info(info, scopes=[SCOPE])
            else:
                credentials, _ = await asyncio.to_thread(google.auth.default, scopes=[SCOPE])
            _credentials[cache_key] = credentials
        if not credentials.valid:
            await asyncio.to_thread(credentials.refresh, Request())
    except (google.auth.exceptions.GoogleAuthError, ValueError) as exc:
        # The library's messages name the key file's fields, never the private key.
        raise QueryRejected(f"stackdriver: cannot get a Google access token: {exc}") from None
    return str(credentials.token)


def forget_credentials() -> None:
    """Drop the cached credentials (tests)."""
    _credentials.clear()


def _typed_value(value: Any) -> float | None:
    """A TypedValue (``doubleValue``, ``int64Value`` as a string, ``boolValue``) as a float."""
    if not isinstance(value, dict):
        raise QueryRejected(f"stackdriver answered a malformed value: {value!r:.200}")
    for key in ("doubleValue", "int64Value"):
        if key in value:
            return number(value[key], "stackdriver", f"a {key}")
    if isinstance(value.get("boolValue"), bool):
        return 1.0 if value["boolValue"] else 0.0
    return None


def _seconds(stamp: Any) -> float:
    if not isinstance(stamp, str):
        raise QueryRejected(f"stackdriver answered a point without an end time: {stamp!r}")
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        raise QueryRejected(
            f"stackdriver answered a time that is not RFC 3339: {stamp!r}"
        ) from None


PROVIDER = MetricProvider(
    type="stackdriver",
    summary="Google Cloud Monitoring (MQL)",
    default_address=DEFAULT_ADDRESS,
    secret_required=True,
    secret_keys=("project",),
    value=_value,
    series=_series,
    ping=_ping,
)
