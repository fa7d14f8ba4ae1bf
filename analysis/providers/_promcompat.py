"""Hosted Prometheus-compatible query APIs (chronosphere, azuremonitor): the request and reading.

Flagger's providers for these services are its Prometheus provider pointed at another path with
other credentials; here, likewise, only the address, the path and the Authorization header
differ per provider. A query is Flagger's: whitespace runs become one space (``trimQuery``), then
``GET <base>/api/v1/query?query=...`` (no ``time``: the server's now, as Flagger). The answer is
read by the code that reads the Prometheus source's answers (``analysis._grouping``), so the
outcomes are the ``prometheus`` provider's: an empty vector or NaN is no data, several series or
a range vector (Flagger's ErrMultipleValuesReturned) are ambiguous, a sample that is not a number
is a rejection. Series use ``/api/v1/query_range`` on the grid the Prometheus source asks for
(anchored at the window's end, at most 11,000 steps). ``ping`` is Flagger's ``IsOnline``:
``vector(1)`` must answer 1.

Errors are redacted here with the credentials the caller passes (the caller's Secret values, and
what it derived from them such as an access token), so a server echoing the Authorization header
cannot put a credential in a message even when this module is used without the live sources.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from analysis._errors import (
    MetricQueryError,
    NoValuesFound,
    ProviderUnavailable,
    QueryRejected,
    QueryTimeout,
)
from analysis._text import clip, redact
from analysis._types import FailureKind, QueryFailure, Series
from analysis.providers._base import Call, Window, json_object, window_series

ONLINE_QUERY = "vector(1)"
#: Go's RE2 ``\s``, which Flagger's trimQuery uses: ASCII whitespace without ``\v`` (Python's
#: ``\s`` would also turn a no-break space inside a label value into a space).
_SPACE = re.compile(r"[\t\n\f\r ]+")


class _Ambiguous(MetricQueryError):
    """Several series, or a range vector, where one value is expected (with the reading's text)."""

    kind = FailureKind.AMBIGUOUS


_RAISED: Mapping[FailureKind, type[MetricQueryError]] = {
    FailureKind.NO_DATA: NoValuesFound,
    FailureKind.AMBIGUOUS: _Ambiguous,
    FailureKind.REJECTED: QueryRejected,
    FailureKind.TIMEOUT: QueryTimeout,
    FailureKind.TRANSPORT: ProviderUnavailable,
    FailureKind.RENDER: QueryRejected,
}


def trim_query(expr: str) -> str:
    """Flagger's ``trimQuery``: every whitespace run becomes one space (ends included)."""
    return _SPACE.sub(" ", expr)


def api_url(address: str, path: str) -> str:
    """``path`` appended to the address' own path, as Flagger's ``path.Join`` +
    ``ResolveReference`` do (the address' query string and fragment are not kept)."""
    parts = urlsplit(address)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + path, "", ""))


async def value(
    call: Call,
    provider: str,
    base: str,
    expr: str,
    headers: Mapping[str, str],
    secrets: Sequence[str],
) -> float:
    """The one value of the instant query ``expr`` at ``<base>/api/v1/query``."""
    from analysis._grouping import Request, answers_from_data

    params = {"query": trim_query(expr)}
    data = await _get(call, provider, base + "/api/v1/query", params, headers, secrets)
    probe = replace(call.query, expr=expr, scale=1.0)  # the live source applies the scale
    [answer] = answers_from_data(Request(expr=expr, query=probe, members=(0,)), [probe], data)
    if isinstance(answer, QueryFailure):
        raise _error(answer, provider, secrets)
    return answer


async def series(
    call: Call,
    provider: str,
    base: str,
    expr: str,
    window: Window,
    headers: Mapping[str, str],
    secrets: Sequence[str],
) -> Series:
    """The samples of ``expr`` over ``window`` from ``<base>/api/v1/query_range``."""
    from analysis._grouping import Request, series_from_data
    from analysis._range_grid import range_params

    # The Prometheus source's grid, so the newest sample is the one at ``window.end``.
    params = {
        "query": trim_query(expr),
        **range_params(window.start, window.end, window.step),
    }
    data = await _get(call, provider, base + "/api/v1/query_range", params, headers, secrets)
    probe = replace(call.query, expr=expr, scale=1.0)
    [answer] = series_from_data(Request(expr=expr, query=probe, members=(0,)), [probe], data)
    if isinstance(answer, QueryFailure):
        raise _error(answer, provider, secrets)
    return window_series(zip(answer.times.tolist(), answer.values.tolist(), strict=True), window)


async def ping(
    call: Call,
    provider: str,
    base: str,
    headers: Mapping[str, str],
    secrets: Sequence[str],
) -> None:
    """Flagger's ``IsOnline``: ``vector(1)`` answers 1, else raise."""
    answer = await value(call, provider, base, ONLINE_QUERY, headers, secrets)
    if answer != 1.0:
        raise ProviderUnavailable(f"{provider}: value is not 1 for query: {ONLINE_QUERY}")


def redacted(exc: MetricQueryError, secrets: Sequence[str]) -> MetricQueryError:
    """``exc`` with every credential masked in its message (type and kind kept)."""
    exc.args = (redact(str(exc), [s for s in secrets if s]),)
    return exc


async def _get(
    call: Call,
    provider: str,
    url: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    secrets: Sequence[str],
) -> dict[str, Any]:
    try:
        response = await call.http.send(
            provider,
            "GET",
            url,
            insecure=call.query.endpoint.insecure_skip_verify,
            params=params,
            headers=headers,
        )
        return _data(json_object(response, provider), provider)
    except MetricQueryError as exc:  # an error body may echo the Authorization header
        raise redacted(exc, secrets) from None


def _data(body: dict[str, Any], provider: str) -> dict[str, Any]:
    """The ``data`` of a 2xx Prometheus API answer; QueryRejected for any other body."""
    status = body.get("status")
    if status not in (None, "success"):
        detail = body.get("error") or clip(json.dumps(body), 300)
        raise QueryRejected(f"{provider} answered status {status!r}: {detail}")
    data = body.get("data")
    if not isinstance(data, dict):
        shown = clip(json.dumps(body), 200)
        raise QueryRejected(
            f"{provider} answered a body that is not a Prometheus API answer: {shown}"
        )
    return data


def _error(failure: QueryFailure, provider: str, secrets: Sequence[str]) -> MetricQueryError:
    error = _RAISED[failure.kind](f"{provider}: {failure.message}")
    return redacted(error, secrets)
