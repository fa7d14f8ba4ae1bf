"""Chronosphere: PromQL over its Prometheus-compatible API (Flagger's ``chronosphere`` provider).

Flagger's ``chronosphere.go`` is its Prometheus provider with the API under ``/data/metrics``:
``GET <address>/data/metrics/api/v1/query?query=<PromQL>`` (whitespace runs made one space), 5 s
per request. ``address`` is required (``https://<tenant>.chronosphere.io``). Without
``secretRef`` nothing is sent for authentication; with one, the Secret's ``token`` is sent as
``Authorization: Bearer`` (a Chronosphere API token: the query API takes it as a bearer token),
else ``username`` and ``password`` as basic auth, each required once there is no ``token``
(Flagger's "chronosphere credentials does not contain a username"). The template's headers are
sent too; the credentials replace any ``Authorization`` among them.

The answer is read as the ``prometheus`` provider reads one (``analysis.providers._promcompat``):
the value of the one series; an empty vector or NaN is no data; a range vector (Flagger's
ErrMultipleValuesReturned) or several series are ambiguous. Series: ``/data/metrics/api/v1/
query_range`` over the window. ``ping`` is Flagger's ``IsOnline``: ``vector(1)`` must answer 1.
"""

from __future__ import annotations

import base64

from analysis._errors import QueryRejected
from analysis._types import Series
from analysis.providers import _promcompat
from analysis.providers._base import Call, MetricProvider, Window

#: Where Chronosphere serves the Prometheus HTTP API under the tenant's address.
API_PREFIX = "/data/metrics"


async def _value(call: Call) -> float:
    headers, secrets = _auth(call)
    return await _promcompat.value(call, "chronosphere", _base(call), call.expr, headers, secrets)


async def _series(call: Call, window: Window) -> Series:
    headers, secrets = _auth(call)
    return await _promcompat.series(
        call, "chronosphere", _base(call), call.expr, window, headers, secrets
    )


async def _ping(call: Call) -> None:
    headers, secrets = _auth(call)
    await _promcompat.ping(call, "chronosphere", _base(call), headers, secrets)


def _base(call: Call) -> str:
    return _promcompat.api_url(call.address, API_PREFIX)


def _auth(call: Call) -> tuple[dict[str, str], list[str]]:
    """The request's headers and what to mask in messages, checked before anything is sent."""
    if not call.has_secret:
        return call.headers, []
    secrets = [value for value in call.credentials.values() if value]  # masked in messages
    token = call.credentials.get("token", "")
    if token:
        headers = call.headers_without_authorization
        headers["Authorization"] = f"Bearer {token}"
        return headers, secrets
    user, password = call.credentials.get("username", ""), call.credentials.get("password", "")
    for key, found in (("username", user), ("password", password)):
        if not found:
            keys = ", ".join(sorted(call.credentials)) or "none"
            raise QueryRejected(
                f"chronosphere credentials does not contain a {key} "
                f"(a Secret holds token, or username and password; keys found: {keys})"
            )
    pair = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    headers = call.headers_without_authorization
    headers["Authorization"] = f"Basic {pair}"
    return headers, [*secrets, pair]


PROVIDER = MetricProvider(
    type="chronosphere",
    summary="Chronosphere Prometheus API",
    address_required=True,
    value=_value,
    series=_series,
    ping=_ping,
)
