"""The live MetricSource and SeriesSource: Prometheus over ``httpx.AsyncClient`` (flagger §4.4).

``open_prometheus(sleep=clock.sleep, credentials=...)`` opens a ``PrometheusSource`` and closes its
HTTP clients on exit; the engine owns it and never imports httpx. ``fetch`` answers a batch of
``MetricQuery`` values with instant queries (``/api/v1/query``), ``fetch_series`` a batch of
``SeriesRequest`` values with range queries (``/api/v1/query_range``, for a comparative judge), both
in the unit the check compares (the raw result times ``query.scale``):

* builtin queries of many canaries that differ only in the target are sent as one grouped query
  per shape and scattered back (``analysis._grouping``); everything else runs one request per
  distinct query, concurrently, at most ``concurrency`` requests in flight;
* one failing query never cancels the others: each answer is a float (a ``Series``) or a
  ``QueryFailure``.

Range windows (``fetch_series``): a request's samples lie on the Unix-epoch grid of its ``step``
(times at millisecond precision, as Prometheus keeps them): the multiples of ``step`` in
``[start, end]``, as Grafana aligns its range queries. The newest is the last multiple at or
before ``end``: never a time after it (a tick's ``now``), and always inside the last step
``(end - step, end]``, where Prometheus evaluates it with its 5-minute lookback, so the judge's
newest sample is there; what was scraped after it is read on the next tick. Only a window shorter
than a step that holds no multiple (the first tick of an analysis whose ``step`` is longer than
the time since it started) is anchored at its ``end`` instead, as it would otherwise be empty.
Requests due at about the same time (the canaries of one controller tick, whose ``now`` differ by
milliseconds) thus share one grid: a grouped (or deduplicated) range query asks for the longest
window of its members and each member gets the samples of its own window, the same samples its own
query would return. Prometheus refuses more than 11,000 points per series, so a longer window is
read as consecutive range queries of at most 11,000 points each (``analysis._range_grid``), on
the same grid
(each point asked exactly once) and joined: the judge reads the whole window it names (a day at
one second is 86,400 points, 8 requests per query shape, once per analysis with the controller's
series cache). The answer is a ``Series`` (an empty one when the matrix is empty: the judge
decides), or the failures of the instant path (a failing part fails the whole window, never a
silently shorter one); a matrix of several series is ambiguous unless they never hold a sample at
the same instant (series churn: merged, see ``analysis._grouping.series_from_data``).

Every failure message, instant or range, and every ``ping`` reason goes through
``analysis._text.redact`` with the query's credentials (the address' user info, the Secret's token
or password, credential-bearing template headers): a server that echoes the Authorization header
or the URL in its error body cannot put them in an event.

Per-server settings come from the query's ``endpoint``, as in Flagger: ``server`` (MetricTemplate
``spec.provider.address``, ``spec.metricsServer`` or the controller's ``--metrics-server``),
``headers`` (``spec.provider.headers``), ``insecure_skip_verify`` and ``secret`` (the template's
``secretRef``), resolved through the caller's ``credentials(secret_ref)`` callback into a bearer
``token`` or ``username`` + ``password`` (basic auth), and optionally ``ca.crt`` (PEM: the CA that
signs the server's certificate, trusted instead of the system store). A ``ca_bundle`` file applies
to every server otherwise. Template headers are sent first; credentials then set Authorization.

Outcomes, each with a clear message: no data (empty vector or NaN), ambiguous (several series:
names their label sets, §12 Q13; a range vector too), rejected (4xx, with Prometheus' own
``error`` text), transport failure (connection errors and 5xx, retried with exponential backoff
through the injected ``sleep`` — ruff bans asyncio.sleep here — before giving up; 429 is not
retried), timeout (``timeout_seconds``, default 5 as Flagger's, bounds a query including its
retries). Long queries (a big grouped one) are sent as a form POST, which Prometheus accepts on
``/api/v1/query`` and ``/api/v1/query_range``, instead of an over-long GET URL. ``requests_sent``
counts instant and range requests alike.

``ping(server)`` is Flagger's availability check (``vector(1)`` must answer 1): "" when fine, else
the reason (``analysis.providers.MetricSources.check_providers`` words it as Flagger does).
One of the two modules allowed to import httpx (with the webhook caller).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import inspect
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from analysis import _redirects as redirects
from analysis._errors import (
    MetricQueryError,
    ProviderUnavailable,
    QueryRejected,
    QueryTimeout,
)
from analysis._grouping import Request, answers_from_data, plan_requests, series_from_data
from analysis._limits import PerServerLimit
from analysis._range_grid import RangeGrid, invalid_range, ms_text, range_grid
from analysis._text import clip, header_secrets, redact, url_secrets
from analysis._trust import system_trust
from analysis._types import (
    CheckKind,
    Endpoint,
    FailureKind,
    MetricQuery,
    QueryFailure,
    Series,
    SeriesRequest,
)
from config import format_go_duration

Sleep = Callable[[float], Awaitable[None]]
#: ``credentials("<namespace>/<name>")`` -> the Secret's data (decoded), or None when missing.
Credentials = Callable[[str], Mapping[str, str] | Awaitable[Mapping[str, str] | None] | None]

DEFAULT_TIMEOUT_SECONDS = 5.0
DEFAULT_RETRIES = 2
DEFAULT_CONCURRENCY = 64
BACKOFF_MIN_SECONDS = 0.25
BACKOFF_MAX_SECONDS = 2.0
#: Queries longer than this go as a POST form: URL-encoded (up to 3x longer) they would pass the
#: URL length proxies accept (~8 KiB).
POST_THRESHOLD = 2048
#: Secret key holding a PEM CA certificate for the server (besides token / username+password).
CA_KEY = "ca.crt"
ONLINE_QUERY = "vector(1)"
_MAX_MESSAGE = 1000
#: How much of an error answer's body is redacted for its message: far more than the message
#: keeps (``_MAX_MESSAGE``), so a secret cut at this edge is cut off again by the message's clip,
#: and little enough that a huge error page costs no more than a short one.
_SHOWN_BODY_CHARS = 64 * 1024


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """How to reach one Prometheus: resolved per query from the query and its Secret."""

    address: str
    # Credentials (and headers, which may carry them) stay out of the repr: a traceback or a
    # debug print must not show them.
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_pem: str | None = field(default=None, repr=False)
    insecure_skip_verify: bool = False

    @property
    def tls_key(self) -> str:
        """Which HTTP client (TLS configuration) this server needs."""
        if self.insecure_skip_verify:
            return "insecure"
        if self.ca_pem:
            return "ca:" + hashlib.sha256(self.ca_pem.encode()).hexdigest()
        return "default"


@dataclass(slots=True)
class _Stats:
    requests: int = 0  # HTTP requests sent (attempts included)
    queries: int = 0  # Prometheus queries answered (a grouped one counts once)


def _running_query_failed(reason: str, server: str) -> str:
    """Flagger's IsOnline wording (``running query failed: ...``), naming the server when the
    reason does not already."""
    where = "" if server in reason else f" (prometheus {server})"
    return f"running query failed: {reason}{where}"


class PrometheusSource:
    """MetricSource and SeriesSource over Prometheus' HTTP API; build it with
    ``open_prometheus``."""

    def __init__(
        self,
        clients: _Clients,
        *,
        sleep: Sleep,
        credentials: Credentials | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        retries: int = DEFAULT_RETRIES,
        backoff_min: float = BACKOFF_MIN_SECONDS,
        backoff_max: float = BACKOFF_MAX_SECONDS,
        concurrency: int = DEFAULT_CONCURRENCY,
        group: bool = True,
        query_time: Callable[[], float] | None = None,
    ) -> None:
        self._clients = clients
        self._query_time = query_time
        self._sleep = sleep
        self._credentials = credentials
        self.timeout = timeout
        self.retries = retries
        self._backoff_min = backoff_min
        self._backoff_max = backoff_max
        self._limit = PerServerLimit(concurrency)
        self.group = group
        self.stats = _Stats()

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent so far, retries included (for benchmarks and /metrics)."""
        return self.stats.requests

    # -- MetricSource ---------------------------------------------------------------------------

    async def fetch(self, queries: Sequence[MetricQuery]) -> list[float | QueryFailure]:
        """Answer every query; never raises for one query's failure."""
        answers: list[float | QueryFailure | None] = [None] * len(queries)
        sendable: list[int] = []
        for index, query in enumerate(queries):
            unsendable = _unsendable(query)
            if unsendable is not None:
                answers[index] = unsendable
            else:
                sendable.append(index)
        batch = [queries[i] for i in sendable]
        requests = plan_requests(batch, group=self.group)
        results = await asyncio.gather(*(self._answer(r, batch) for r in requests))
        for request, values in zip(requests, results, strict=True):
            for member, value in zip(request.members, values, strict=True):
                answers[sendable[member]] = value
        out: list[float | QueryFailure] = []
        for answer in answers:
            assert answer is not None  # every sendable query belongs to exactly one request
            out.append(answer)
        return out

    async def fetch_series(self, requests: Sequence[SeriesRequest]) -> list[Series | QueryFailure]:
        """Answer every range request (see the module docstring); never raises for one's failure."""
        answers: list[Series | QueryFailure | None] = [None] * len(requests)
        grids: dict[RangeGrid, list[tuple[int, int]]] = {}  # grid -> (request index, its steps)
        for index, request in enumerate(requests):
            unsendable = _unsendable(request.query) or invalid_range(request)
            if unsendable is not None:
                answers[index] = unsendable
                continue
            grid, window_steps = range_grid(request)
            grids.setdefault(grid, []).append((index, window_steps))
        jobs: list[tuple[Request, list[MetricQuery], list[int], list[int], RangeGrid]] = []
        for grid, members in grids.items():
            batch = [requests[index].query for index, _ in members]
            for planned in plan_requests(batch, group=self.group):
                indexes = [members[m][0] for m in planned.members]
                member_steps = [members[m][1] for m in planned.members]
                jobs.append((planned, batch, indexes, member_steps, grid))
        results = await asyncio.gather(
            *(
                self._answer_series(planned, batch, grid, max(member_steps))
                for planned, batch, _, member_steps, grid in jobs
            )
        )
        for (_, _, indexes, member_steps, grid), values in zip(jobs, results, strict=True):
            for index, own_steps, value in zip(indexes, member_steps, values, strict=True):
                answers[index] = (
                    value if isinstance(value, QueryFailure) else _since(value, grid, own_steps)
                )
        out: list[Series | QueryFailure] = []
        for answer in answers:
            assert answer is not None  # every sendable request belongs to exactly one job
            out.append(answer)
        return out

    # -- single queries and availability --------------------------------------------------------

    async def query(
        self,
        expr: str,
        *,
        server: str,
        headers: Mapping[str, str] | None = None,
        secret: str | None = None,
        insecure_skip_verify: bool = False,
    ) -> dict[str, Any]:
        """Run one instant query and return the answer's ``data``; raise MetricQueryError (its
        message redacted)."""
        headers = headers or {}
        secrets = _secrets(server, headers)
        try:
            endpoint = Endpoint(
                server=server,
                headers=headers,
                secret=secret,
                insecure_skip_verify=insecure_skip_verify,
            )
            settings = await self._settings(endpoint)
            secrets = _secrets(server, headers, settings)
            return await self._instant(settings, expr)
        except MetricQueryError as exc:
            _redact_error(exc, secrets)
            raise

    async def ping(
        self,
        server: str,
        *,
        headers: Mapping[str, str] | None = None,
        secret: str | None = None,
        insecure_skip_verify: bool = False,
    ) -> str:
        """Flagger's availability check: "" when ``vector(1)`` answers 1, else the reason."""
        secrets = _secrets(server, headers or {})
        try:
            data = await self.query(
                ONLINE_QUERY,
                server=server,
                headers=headers,
                secret=secret,
                insecure_skip_verify=insecure_skip_verify,
            )
        except MetricQueryError as exc:
            return redact(_running_query_failed(str(exc), server), secrets)
        probe = MetricQuery(canary="", metric=ONLINE_QUERY, kind=CheckKind.QUERY, expr=ONLINE_QUERY)
        request = Request(expr=ONLINE_QUERY, query=probe, members=(0,))
        answer = answers_from_data(request, [probe], data)[0]
        if isinstance(answer, QueryFailure):
            return redact(_running_query_failed(answer.message, server), secrets)
        if answer != 1.0:
            # Flagger's words, naming the server as the other reasons do
            return redact(
                f"value is not 1 for query: {ONLINE_QUERY} (prometheus {server})", secrets
            )
        return ""

    # -- internals ------------------------------------------------------------------------------

    async def _answer(
        self, request: Request, queries: Sequence[MetricQuery]
    ) -> list[float | QueryFailure]:
        params = self._instant_params(request.expr)
        data, secrets = await self._ask(request.query.endpoint, "/api/v1/query", params)
        if isinstance(data, QueryFailure):
            return [data] * len(request.members)
        return [
            a if not isinstance(a, QueryFailure) else _redacted_failure(a, secrets)
            for a in answers_from_data(request, queries, data)
        ]

    async def _answer_series(
        self, request: Request, queries: Sequence[MetricQuery], grid: RangeGrid, steps: int
    ) -> list[Series | QueryFailure]:
        """The newest ``steps + 1`` points of ``grid`` for every member of ``request``: one range
        query, or consecutive ones joined when that is more than Prometheus answers at once."""
        parts = await asyncio.gather(
            *(
                self._answer_range(request, queries, start_ms, end_ms, grid.step_ms)
                for start_ms, end_ms in grid.chunks(steps)
            )
        )
        if len(parts) == 1:
            return parts[0]
        out: list[Series | QueryFailure] = []
        for member in range(len(request.members)):
            answers = [part[member] for part in parts]
            failed = next((a for a in answers if isinstance(a, QueryFailure)), None)
            out.append(failed if failed is not None else _joined(answers))
        return out

    async def _answer_range(
        self,
        request: Request,
        queries: Sequence[MetricQuery],
        start_ms: int,
        end_ms: int,
        step_ms: int,
    ) -> list[Series | QueryFailure]:
        params = {
            "query": request.expr,
            "start": ms_text(start_ms),
            "end": ms_text(end_ms),
            "step": ms_text(step_ms),
        }
        data, secrets = await self._ask(request.query.endpoint, "/api/v1/query_range", params)
        if isinstance(data, QueryFailure):
            return [data] * len(request.members)
        return [
            a if isinstance(a, Series) else _redacted_failure(a, secrets)
            for a in series_from_data(request, queries, data)
        ]

    async def _ask(
        self, endpoint: Endpoint, path: str, params: dict[str, str]
    ) -> tuple[dict[str, Any] | QueryFailure, list[str]]:
        """One call of ``path`` on ``endpoint``'s server, under the concurrency limit: its
        ``data``, or the failure (redacted), and the secrets that its answers must not show."""
        server = endpoint.server or ""
        secrets = _secrets(server, endpoint.headers)
        # One budget for the whole query: its Secret read, its wait for a slot and its request.
        started = asyncio.get_running_loop().time()
        try:
            settings = await self._settings(endpoint)
            secrets = _secrets(server, endpoint.headers, settings)
            data = await self._call(
                settings, path, params, started=started, slot=self._limit(settings.address)
            )
        except MetricQueryError as exc:
            return _redacted_failure(exc.to_failure(), secrets), secrets
        except Exception as exc:  # never let one query take its siblings down
            message = failure_message(f"{type(exc).__name__}: {exc}", secrets)
            return QueryFailure(FailureKind.TRANSPORT, message), secrets
        self.stats.queries += 1
        return data, secrets

    async def _settings(self, endpoint: Endpoint) -> ServerSettings:
        """How to reach ``endpoint``'s server: its address and headers, and the credentials of
        its Secret (read through ``credentials``)."""
        secret = endpoint.secret
        insecure_skip_verify = endpoint.insecure_skip_verify
        settings = ServerSettings(
            address=(endpoint.server or "").rstrip("/"),
            headers=tuple(endpoint.headers.items()),
            insecure_skip_verify=insecure_skip_verify,
        )
        if secret is None:
            return settings
        data = await read_credentials(self._credentials, secret, within=self.timeout)
        token = data.get("token") or None
        username = data.get("username") or None
        password = data.get("password") or None
        if token is None and (username is None or password is None):
            keys = ", ".join(sorted(data)) or "none"
            raise QueryRejected(
                f"prometheus credentials Secret {secret} must hold 'token' or 'username' and "
                f"'password' (keys found: {keys})"
            )
        return ServerSettings(
            address=settings.address,
            headers=settings.headers,
            token=token,
            username=None if token else username,
            password=None if token else password,
            ca_pem=data.get(CA_KEY) or None,
            insecure_skip_verify=insecure_skip_verify,
        )

    async def _instant(self, settings: ServerSettings, expr: str) -> dict[str, Any]:
        """One instant query with retries, bounded by ``timeout``; raise MetricQueryError."""
        return await self._call(settings, "/api/v1/query", self._instant_params(expr))

    def _instant_params(self, expr: str) -> dict[str, str]:
        params = {"query": expr}
        if self._query_time is not None:
            params["time"] = f"{self._query_time():.3f}"
        return params

    async def _call(
        self,
        settings: ServerSettings,
        path: str,
        params: dict[str, str],
        *,
        started: float | None = None,
        slot: AbstractAsyncContextManager[None] | None = None,
    ) -> dict[str, Any]:
        """One API request (a form POST for a long query) with retries, bounded by ``timeout``
        from ``started`` (the event loop's time the query began; default now), the wait for
        ``slot`` (the server's concurrency limit) included; the answer's ``data``, or raise
        MetricQueryError."""
        client = self._clients.get(settings)
        url = f"{settings.address}{path}"
        headers = dict(settings.headers)
        if settings.token or (settings.username and settings.password):
            # Credentials win over a template header of the same name (any case).
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        if settings.token:
            headers["Authorization"] = f"Bearer {settings.token}"
        elif settings.username and settings.password:
            pair = f"{settings.username}:{settings.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        post = len(params["query"]) > POST_THRESHOLD
        secrets = _secrets(settings.address, dict(settings.headers), settings)
        where = redact(settings.address, secrets)
        attempts = 0
        loop = asyncio.get_running_loop()
        deadline = (loop.time() if started is None else started) + self.timeout
        try:
            async with asyncio.timeout_at(deadline), slot or nullcontext():
                while True:
                    attempts += 1
                    remaining = max(0.001, deadline - loop.time())
                    self.stats.requests += 1
                    try:
                        redirects.check_port(httpx.URL(url))
                        if post:
                            response = await client.post(
                                url,
                                data=params,
                                headers=headers,
                                timeout=remaining,
                                follow_redirects=False,
                            )
                        else:
                            response = await client.get(
                                url,
                                params=params,
                                headers=headers,
                                timeout=remaining,
                                follow_redirects=False,
                            )
                        response = await redirects.follow(
                            client, response, headers, f"prometheus {where}"
                        )
                    except httpx.TimeoutException:
                        raise TimeoutError from None
                    except httpx.TransportError as exc:
                        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                        if not _retryable_transport(exc) or attempts > self.retries:
                            raise ProviderUnavailable(
                                failure_message(
                                    f"prometheus {where} unreachable: {detail}"
                                    + _attempts(attempts),
                                    secrets,
                                )
                            ) from None
                        await self._sleep(self._backoff(attempts))
                        continue
                    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # permanent
                        raise ProviderUnavailable(
                            failure_message(
                                f"prometheus {where}: {type(exc).__name__}: {exc}", secrets
                            )
                        ) from None
                    status = response.status_code
                    if status >= 500 and attempts <= self.retries:
                        await self._sleep(self._backoff(attempts))
                        continue
                    return _data(response, where, attempts, secrets)
        except TimeoutError:
            if attempts == 0:  # the time went on its Secret and on waiting for a free slot
                raise QueryTimeout(
                    f"prometheus {where}: no request sent within "
                    f"{format_go_duration(self.timeout)}: its other queries held all "
                    f"{self._limit.concurrency} slots of this server (it is slow to answer them), "
                    "or reading the template's credentials Secret took the time"
                ) from None
            raise QueryTimeout(
                f"prometheus {where} did not answer within "
                f"{format_go_duration(self.timeout)}{_attempts(attempts)}"
            ) from None

    def _backoff(self, attempt: int) -> float:
        return float(min(self._backoff_max, self._backoff_min * 2 ** (attempt - 1)))


class _Clients:
    """One ``httpx.AsyncClient`` per TLS configuration (httpx fixes verification per client)."""

    def __init__(
        self,
        stack: AsyncExitStack,
        *,
        ca_bundle: str | None,
        transport: httpx.AsyncBaseTransport | None,
        concurrency: int,
    ) -> None:
        self._stack = stack
        self._ca_bundle = ca_bundle
        self._transport = transport
        # Not capped: the queries in flight are counted per server (analysis._limits).
        self._limits = httpx.Limits(max_connections=None, max_keepalive_connections=concurrency)
        self._clients: dict[str, httpx.AsyncClient] = {}

    def get(self, settings: ServerSettings) -> httpx.AsyncClient:
        key = settings.tls_key
        client = self._clients.get(key)
        if client is None:
            client = httpx.AsyncClient(
                verify=self._verify(settings),
                transport=self._transport,
                limits=self._limits,
                # redirects are followed by analysis._redirects (credential headers stay home)
                follow_redirects=False,
            )
            self._stack.push_async_callback(client.aclose)
            self._clients[key] = client
        return client

    def _verify(self, settings: ServerSettings) -> ssl.SSLContext | bool:
        if settings.insecure_skip_verify:
            return False
        try:
            if settings.ca_pem:
                return ssl.create_default_context(cadata=settings.ca_pem)
            if self._ca_bundle:
                return ssl.create_default_context(cafile=self._ca_bundle)
        except (ssl.SSLError, OSError, ValueError) as exc:
            where = "the credentials Secret's ca.crt" if settings.ca_pem else self._ca_bundle
            raise ProviderUnavailable(
                f"cannot load the CA certificate(s) in {where}: {exc}"
            ) from exc
        return system_trust()


@asynccontextmanager
async def open_prometheus(
    *,
    sleep: Sleep,
    credentials: Credentials | None = None,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    retries: int = DEFAULT_RETRIES,
    backoff_min: float = BACKOFF_MIN_SECONDS,
    backoff_max: float = BACKOFF_MAX_SECONDS,
    concurrency: int = DEFAULT_CONCURRENCY,
    group: bool = True,
    ca_bundle: str | None = None,
    query_time: Callable[[], float] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[PrometheusSource]:
    """Open a PrometheusSource; its HTTP clients are closed on exit.

    ``sleep`` is the engine clock's sleep (between retries); ``credentials`` resolves a
    MetricTemplate's ``secretRef`` ("<namespace>/<name>") to the Secret's decoded data;
    ``timeout_seconds`` bounds each query including retries; ``retries`` extra attempts on
    connection errors and 5xx; ``concurrency`` bounds the requests in flight; ``group=False`` sends
    one query per check as Flagger does; ``ca_bundle`` is a CA file trusted for every server
    (instead of the system store) unless a Secret brings its own; ``query_time`` returns the Unix
    time to evaluate queries at (default: the server's now); ``transport`` lets tests substitute
    one.
    """
    async with AsyncExitStack() as stack:
        clients = _Clients(
            stack, ca_bundle=ca_bundle, transport=transport, concurrency=max(1, concurrency)
        )
        yield PrometheusSource(
            clients,
            sleep=sleep,
            credentials=credentials,
            timeout=timeout_seconds,
            retries=retries,
            backoff_min=backoff_min,
            backoff_max=backoff_max,
            concurrency=concurrency,
            group=group,
            query_time=query_time,
        )


def _data(
    response: httpx.Response, where: str, attempts: int, secrets: Sequence[str]
) -> dict[str, Any]:
    """The ``data`` of a Prometheus answer; raise the MetricQueryError its status calls for (its
    message redacted: a 401 page may echo the Authorization header)."""
    status = response.status_code
    try:
        body: Any = response.json()
    except (ValueError, UnicodeDecodeError, RecursionError):  # not JSON, or JSON Python can't hold
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    error_type = body.get("errorType") if isinstance(body, dict) else None
    if status < 400 and isinstance(body, dict) and isinstance(body.get("data"), dict):
        if body.get("status") in (None, "success"):
            # The answer as it should be: its text is never shown, so it is not redacted (a
            # dozen regular expressions over a 16 MB answer held the event loop for seconds).
            data: dict[str, Any] = body["data"]
            return data
    text = redact(clip(response.text.strip(), _SHOWN_BODY_CHARS), secrets)
    detail = clip(str(error), _SHOWN_BODY_CHARS) if error else (text or response.reason_phrase)
    if status >= 500:
        message = f"prometheus {where} answered HTTP {status}: {detail}{_attempts(attempts)}"
        if error_type == "timeout":
            raise QueryTimeout(failure_message(message, secrets))
        raise ProviderUnavailable(failure_message(message, secrets))
    if status == 429:
        raise ProviderUnavailable(
            failure_message(f"prometheus {where} is overloaded (HTTP 429): {detail}", secrets)
        )
    if status >= 400:
        kind = f", {error_type}" if error_type else ""
        hint = " (check the credentials)" if status in (401, 403) else ""
        raise QueryRejected(
            failure_message(
                f"prometheus rejected the query (HTTP {status}{kind}): {detail}{hint}", secrets
            )
        )
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise ProviderUnavailable(
            failure_message(
                f"prometheus {where} answered HTTP {status} with a body that is not a Prometheus "
                f"API answer: {clip(text, 200)!r}",
                secrets,
            )
        )
    raise QueryRejected(
        failure_message(f"prometheus answered status {body.get('status')!r}: {detail}", secrets)
    )


def _unsendable(query: MetricQuery) -> QueryFailure | None:
    """Why ``query`` cannot be sent to Prometheus at all, or None when it can."""
    if query.render_error is not None or query.expr is None:
        return QueryFailure(
            FailureKind.RENDER, query.render_error or "the query could not be rendered"
        )
    if query.endpoint.provider_type != "prometheus":
        return QueryFailure(
            FailureKind.REJECTED,
            f"metric provider type {query.endpoint.provider_type!r} is not Prometheus: its checks "
            "run through analysis.open_metric_sources, not PrometheusSource",
        )
    if not query.endpoint.server:
        return QueryFailure(
            FailureKind.TRANSPORT, "no Prometheus address configured for this metric"
        )
    return None


def _since(series: Series, grid: RangeGrid, steps: int) -> Series:
    """The samples of ``series`` within a member's own window (``steps`` back from the end)."""
    start = grid.start_ms(steps) / 1000 - 0.0005  # times are milliseconds as float seconds
    if series.times.size == 0 or series.times[0] >= start:
        return series
    keep = series.times >= start
    return Series(
        np.ascontiguousarray(series.times[keep]), np.ascontiguousarray(series.values[keep])
    )


def _joined(parts: Sequence[Series | QueryFailure]) -> Series:
    """Consecutive chunks' series of one member (oldest first, disjoint in time) as one."""
    series = [part for part in parts if isinstance(part, Series) and len(part)]
    if not series:
        return Series.empty()
    if len(series) == 1:
        return series[0]
    return Series(
        np.concatenate([part.times for part in series]),
        np.concatenate([part.values for part in series]),
    )


def _secrets(
    server: str, headers: Mapping[str, str], settings: ServerSettings | None = None
) -> list[str]:
    """What must not appear in a query's messages: the address' user info (a password, or a user
    name used as a token), credential-bearing headers and the Secret's token or password."""
    found = url_secrets(server) + header_secrets(headers.items())
    if settings is not None:
        found += [s for s in (settings.token, settings.password) if s]
    return found


def _redact_error(exc: MetricQueryError, secrets: Sequence[str]) -> None:
    """Redact ``exc``'s message in place (it keeps its type, kind, cause and traceback)."""
    exc.args = (redact(str(exc), secrets),)


def _redacted_failure(failure: QueryFailure, secrets: Sequence[str]) -> QueryFailure:
    return QueryFailure(failure.kind, redact(failure.message, secrets))


async def read_credentials(
    credentials: Credentials | None, secret: str, *, within: float
) -> Mapping[str, str]:
    """The data of the credentials Secret ``secret`` ("<namespace>/<name>"); ProviderUnavailable
    when no credentials source is configured, reading fails, takes longer than ``within``
    seconds or the Secret does not exist.

    The read is bounded like the query it serves: a slow API server would otherwise hold the
    query, and every canary whose checks are fetched with it, for the Kubernetes client's own
    request timeout."""
    if credentials is None:
        raise ProviderUnavailable(
            f"credentials Secret {secret} is referenced but no credentials source is configured"
        )
    try:
        async with asyncio.timeout(within):
            found = credentials(secret)
            data = await found if inspect.isawaitable(found) else found
    except TimeoutError:
        raise ProviderUnavailable(
            f"reading credentials Secret {secret}: no answer within {within:g}s"
        ) from None
    except Exception as exc:
        raise ProviderUnavailable(
            f"reading credentials Secret {secret} failed: {type(exc).__name__}: {exc}"
        ) from exc
    if data is None:
        raise ProviderUnavailable(f"credentials Secret {secret} not found")
    return data


def failure_message(text: str, secrets: Sequence[str]) -> str:
    """A failure message: redacted first, then clipped (clipping first could cut a secret in
    two and leave its head unrecognised)."""
    return clip(redact(text, secrets), _MAX_MESSAGE)


def _retryable_transport(exc: httpx.TransportError) -> bool:
    # A wrong scheme or an untrusted certificate will not fix itself between attempts.
    if isinstance(exc, httpx.UnsupportedProtocol):
        return False
    cause: BaseException | None = exc
    seen: set[int] = set()
    while cause is not None and id(cause) not in seen:  # chains can loop
        if isinstance(cause, ssl.SSLCertVerificationError):
            return False
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return True


def _attempts(attempts: int) -> str:
    return f" (gave up after {attempts} attempts)" if attempts > 1 else ""
