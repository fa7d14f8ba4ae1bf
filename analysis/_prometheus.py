"""The live MetricSource: Prometheus instant queries over ``httpx.AsyncClient`` (flagger §4.4).

``open_prometheus(sleep=clock.sleep, credentials=...)`` opens a ``PrometheusSource`` and closes its
HTTP clients on exit; the engine owns it and never imports httpx. ``fetch`` answers a batch of
``MetricQuery`` values in the unit the check compares (the raw result times ``query.scale``):

* builtin queries of many canaries that differ only in the target are sent as one grouped query
  per shape and scattered back (``analysis._grouping``); everything else runs one request per
  distinct query, concurrently, at most ``concurrency`` requests in flight;
* one failing query never cancels the others: each answer is a float or a ``QueryFailure``.

Per-server settings come from the query, as in Flagger: ``server`` (MetricTemplate
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
``/api/v1/query``, instead of an over-long GET URL.

``ping(server)`` is Flagger's availability check (``vector(1)`` must answer 1): "" when fine, else
the reason; ``check_providers(queries)`` pings every distinct server a canary's checks use.
One of the two modules allowed to import httpx (with the webhook caller).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import inspect
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from analysis._errors import (
    MetricQueryError,
    ProviderUnavailable,
    QueryRejected,
    QueryTimeout,
)
from analysis._grouping import Request, answers_from_data, plan_requests
from analysis._text import clip, redact_url
from analysis._types import CheckKind, FailureKind, MetricQuery, QueryFailure
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


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """How to reach one Prometheus: resolved per query from the query and its Secret."""

    address: str
    headers: tuple[tuple[str, str], ...] = ()
    token: str | None = None
    username: str | None = None
    password: str | None = None
    ca_pem: str | None = None
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


class PrometheusSource:
    """MetricSource over Prometheus' HTTP API; build it with ``open_prometheus``."""

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
        self._limit = asyncio.Semaphore(max(1, concurrency))
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
            if query.render_error is not None or query.expr is None:
                message = query.render_error or "the query could not be rendered"
                answers[index] = QueryFailure(FailureKind.RENDER, message)
            elif query.provider_type != "prometheus":
                answers[index] = QueryFailure(
                    FailureKind.REJECTED,
                    f"metric provider type {query.provider_type!r} is not supported by "
                    "canary-engine yet; supported: prometheus",
                )
            elif not query.server:
                answers[index] = QueryFailure(
                    FailureKind.TRANSPORT, "no Prometheus address configured for this metric"
                )
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
        """Run one instant query and return the answer's ``data``; raise MetricQueryError."""
        settings = await self._settings(server, headers or {}, secret, insecure_skip_verify)
        return await self._instant(settings, expr)

    async def ping(
        self,
        server: str,
        *,
        headers: Mapping[str, str] | None = None,
        secret: str | None = None,
        insecure_skip_verify: bool = False,
    ) -> str:
        """Flagger's availability check: "" when ``vector(1)`` answers 1, else the reason."""
        try:
            data = await self.query(
                ONLINE_QUERY,
                server=server,
                headers=headers,
                secret=secret,
                insecure_skip_verify=insecure_skip_verify,
            )
        except MetricQueryError as exc:
            return f"prometheus {redact_url(server)}: running query failed: {exc}"
        probe = MetricQuery(canary="", metric=ONLINE_QUERY, kind=CheckKind.QUERY, expr=ONLINE_QUERY)
        request = Request(expr=ONLINE_QUERY, query=probe, members=(0,))
        answer = answers_from_data(request, [probe], data)[0]
        if isinstance(answer, QueryFailure):
            return f"prometheus {redact_url(server)}: running query failed: {answer.message}"
        if answer != 1.0:
            return f"prometheus {redact_url(server)}: value is not 1 for query: {ONLINE_QUERY}"
        return ""

    async def check_providers(self, queries: Sequence[MetricQuery]) -> str:
        """Ping every distinct Prometheus (with its credentials) the queries use.

        "" when all answer, else the first reason in query order; usable as the engine's provider
        check with ``plan_checks`` output. Queries that cannot run are skipped (they fail as
        checks).
        """
        targets: dict[tuple[Any, ...], MetricQuery] = {}
        for query in queries:
            if query.render_error is None and query.server and query.provider_type == "prometheus":
                key = (
                    query.server,
                    tuple(sorted(query.headers.items())),
                    query.secret,
                    query.insecure_skip_verify,
                )
                targets.setdefault(key, query)
        reasons = await asyncio.gather(
            *(
                self.ping(
                    q.server or "",
                    headers=q.headers,
                    secret=q.secret,
                    insecure_skip_verify=q.insecure_skip_verify,
                )
                for q in targets.values()
            )
        )
        return next((reason for reason in reasons if reason), "")

    # -- internals ------------------------------------------------------------------------------

    async def _answer(
        self, request: Request, queries: Sequence[MetricQuery]
    ) -> list[float | QueryFailure]:
        query = request.query
        try:
            settings = await self._settings(
                query.server or "", query.headers, query.secret, query.insecure_skip_verify
            )
            async with self._limit:
                data = await self._instant(settings, request.expr)
        except MetricQueryError as exc:
            return [exc.to_failure()] * len(request.members)
        except Exception as exc:  # never let one query take its siblings down
            failure = QueryFailure(
                FailureKind.TRANSPORT, _clip_message(f"{type(exc).__name__}: {exc}")
            )
            return [failure] * len(request.members)
        self.stats.queries += 1
        return answers_from_data(request, queries, data)

    async def _settings(
        self,
        server: str,
        headers: Mapping[str, str],
        secret: str | None,
        insecure_skip_verify: bool,
    ) -> ServerSettings:
        settings = ServerSettings(
            address=server.rstrip("/"),
            headers=tuple(headers.items()),
            insecure_skip_verify=insecure_skip_verify,
        )
        if secret is None:
            return settings
        if self._credentials is None:
            raise ProviderUnavailable(
                f"credentials Secret {secret} is referenced but no credentials source is configured"
            )
        try:
            found = self._credentials(secret)
            data = await found if inspect.isawaitable(found) else found
        except Exception as exc:
            raise ProviderUnavailable(
                f"reading credentials Secret {secret} failed: {type(exc).__name__}: {exc}"
            ) from exc
        if data is None:
            raise ProviderUnavailable(f"credentials Secret {secret} not found")
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
        client = self._clients.get(settings)
        url = f"{settings.address}/api/v1/query"
        headers = dict(settings.headers)
        if settings.token or (settings.username and settings.password):
            # Credentials win over a template header of the same name (any case).
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        if settings.token:
            headers["Authorization"] = f"Bearer {settings.token}"
        elif settings.username and settings.password:
            pair = f"{settings.username}:{settings.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        params = {"query": expr}
        if self._query_time is not None:
            params["time"] = f"{self._query_time():.3f}"
        post = len(expr) > POST_THRESHOLD
        where = redact_url(settings.address)
        attempts = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    attempts += 1
                    remaining = max(0.001, deadline - loop.time())
                    self.stats.requests += 1
                    try:
                        if post:
                            response = await client.post(
                                url,
                                data=params,
                                headers=headers,
                                timeout=remaining,
                            )
                        else:
                            response = await client.get(
                                url,
                                params=params,
                                headers=headers,
                                timeout=remaining,
                            )
                    except httpx.TimeoutException:
                        raise TimeoutError from None
                    except httpx.TransportError as exc:
                        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                        if not _retryable_transport(exc) or attempts > self.retries:
                            raise ProviderUnavailable(
                                _clip_message(
                                    f"prometheus {where} unreachable: {detail}"
                                    + _attempts(attempts)
                                )
                            ) from None
                        await self._sleep(self._backoff(attempts))
                        continue
                    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # permanent
                        raise ProviderUnavailable(
                            _clip_message(f"prometheus {where}: {type(exc).__name__}: {exc}")
                        ) from None
                    status = response.status_code
                    if status >= 500 and attempts <= self.retries:
                        await self._sleep(self._backoff(attempts))
                        continue
                    return _data(response, where, attempts)
        except TimeoutError:
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
        self._limits = httpx.Limits(
            max_connections=concurrency, max_keepalive_connections=concurrency
        )
        self._clients: dict[str, httpx.AsyncClient] = {}

    def get(self, settings: ServerSettings) -> httpx.AsyncClient:
        key = settings.tls_key
        client = self._clients.get(key)
        if client is None:
            client = httpx.AsyncClient(
                verify=self._verify(settings),
                transport=self._transport,
                limits=self._limits,
                follow_redirects=True,
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
        return ssl.create_default_context()


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


def _data(response: httpx.Response, where: str, attempts: int) -> dict[str, Any]:
    """The ``data`` of a Prometheus answer; raise the MetricQueryError its status calls for."""
    status = response.status_code
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    error_type = body.get("errorType") if isinstance(body, dict) else None
    detail = str(error) if error else (response.text.strip() or response.reason_phrase)
    if status >= 500:
        message = f"prometheus {where} answered HTTP {status}: {detail}{_attempts(attempts)}"
        if error_type == "timeout":
            raise QueryTimeout(_clip_message(message))
        raise ProviderUnavailable(_clip_message(message))
    if status == 429:
        raise ProviderUnavailable(
            _clip_message(f"prometheus {where} is overloaded (HTTP 429): {detail}")
        )
    if status >= 400:
        kind = f", {error_type}" if error_type else ""
        hint = " (check the credentials)" if status in (401, 403) else ""
        raise QueryRejected(
            _clip_message(f"prometheus rejected the query (HTTP {status}{kind}): {detail}{hint}")
        )
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise ProviderUnavailable(
            _clip_message(
                f"prometheus {where} answered HTTP {status} with a body that is not a Prometheus "
                f"API answer: {response.text.strip()[:200]!r}"
            )
        )
    if body.get("status") not in (None, "success"):
        raise QueryRejected(
            _clip_message(f"prometheus answered status {body.get('status')!r}: {detail}")
        )
    data: dict[str, Any] = body["data"]
    return data


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


def _clip_message(message: str) -> str:
    return clip(message, _MAX_MESSAGE)
