"""``record`` for the non-Prometheus providers: range requests through the providers' series.

``canary-engine record`` is a synchronous batch command; Prometheus templates keep their own path
(``analysis._record``, prometheus-api-client). For every other provider it calls
``record_series``, which runs the requests through the same ``MetricSources`` the controller uses
(so the same request shapes, credentials and redaction) on a private event loop. Credentials come
from the caller: ``record`` reads the Secrets given in its manifest files.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack

import httpx

from analysis._types import QueryFailure, Series, SeriesRequest
from analysis.providers._base import Http
from analysis.providers._sources import DEFAULT_CONCURRENCY, MetricSources, http_clients

#: Seconds one provider request may take when recording (the live default is Flagger's 5 s).
RECORD_REQUEST_TIMEOUT = 30.0


def record_series(
    requests: Sequence[SeriesRequest],
    *,
    now: Callable[[], float],
    secrets: Mapping[str, Mapping[str, str]] | None = None,
    timeout: float = RECORD_REQUEST_TIMEOUT,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[Series | QueryFailure]:
    """Answer every request (none may be Prometheus); ``secrets`` maps "<namespace>/<name>" to
    a Secret's decoded data. Never raises for one request's failure."""
    found = dict(secrets or {})

    def credentials(ref: str) -> Mapping[str, str] | None:
        return found.get(ref)

    async def run() -> list[Series | QueryFailure]:
        async with AsyncExitStack() as stack:
            sources = MetricSources(
                None,
                Http(http_clients(stack, DEFAULT_CONCURRENCY, transport), timeout=timeout),
                now=now,
                credentials=credentials,
                series_timeout=max(timeout * 4, 60.0),
            )
            return await sources.fetch_series(requests)

    return asyncio.run(run())
