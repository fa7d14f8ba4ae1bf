"""The live MetricSource and SeriesSource over every registered metric provider.

``MetricSources`` splits a batch by ``query.endpoint.provider_type``: all Prometheus queries go to
the ``PrometheusSource`` in one batch (so builtin queries keep their one request per query shape,
``analysis._grouping``), every other provider's queries run through its module
(``analysis.providers``), identical ones once, concurrently, at most ``concurrency`` in flight.
Like every source it never raises for one query: each answer is a float (or a ``Series``) or a
``QueryFailure`` whose message names the provider and the MetricTemplate.

Per query it resolves what the provider module needs: the address (``spec.provider.address`` or
the provider's default), the credentials Secret (through the same ``credentials`` callback the
Prometheus source uses), the clock's ``now``. Before anything leaves the process, failure
messages are redacted with every value of the Secret, the template's credential headers and the
address' user info (``analysis._text.redact``). Each query is bounded by the HTTP timeout (5 s, as
Flagger's providers) and a series by ``series_timeout``. Series are asked through a
``SeriesCache`` (``analysis._series_cache``): a judge that reads a day of the primary's samples
on every tick asks each provider only for the minutes it has not answered yet.

``check_providers(queries)`` is the engine's provider check: Prometheus servers are pinged by the
Prometheus source, the others by their module's ``ping`` (Flagger's ``IsOnline``).
``open_metric_sources`` opens it all and closes the HTTP clients on exit; the engine owns it and
never imports httpx.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, TypeVar

import httpx

from analysis._errors import MetricQueryError, QueryRejected
from analysis._limits import PerServerLimit
from analysis._plan import missing_template, template_is_missing
from analysis._prometheus import (
    Credentials,
    PrometheusSource,
    Sleep,
    failure_message,
    open_prometheus,
    read_credentials,
)
from analysis._series_cache import SeriesCache
from analysis._text import header_secrets, url_secrets
from analysis._trust import system_trust
from analysis._types import (
    CheckKind,
    FailureKind,
    MetricQuery,
    QueryFailure,
    Series,
    SeriesRequest,
)
from analysis.providers._base import (
    DEFAULT_TIMEOUT_SECONDS,
    Call,
    Http,
    KubeApi,
    MetricProvider,
    Window,
)
from analysis.providers._registry import PROVIDERS

T = TypeVar("T")
DEFAULT_CONCURRENCY = 64
#: A series may take several requests (influxdb: one per step); bound the whole of it.
DEFAULT_SERIES_TIMEOUT = 60.0


class MetricSources:
    """MetricSource and SeriesSource over all metric providers; build it with
    ``open_metric_sources``."""

    def __init__(
        self,
        prometheus: PrometheusSource | None,
        http: Http,
        *,
        now: Callable[[], float],
        credentials: Credentials | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        series_timeout: float = DEFAULT_SERIES_TIMEOUT,
        sleep: Sleep | None = None,
        kube: KubeApi | None = None,
    ) -> None:
        self.prometheus = prometheus
        self._sleep = sleep or _no_wait
        self._kube = kube
        self.http = http
        self._now = now
        self._credentials = credentials
        self._limit = PerServerLimit(concurrency)
        self._series_timeout = series_timeout
        # Only Prometheus range queries are kept: their samples lie on a grid every step, while
        # hosted providers pick their resolution or span from the window asked.
        self._series_cache = SeriesCache(
            self._fetch_series,
            identity=_identity,
            cacheable=lambda query: query.endpoint.provider_type == "prometheus",
        )

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent to every provider so far (Prometheus retries included)."""
        sent = self.prometheus.requests_sent if self.prometheus is not None else 0
        return sent + self.http.requests

    async def fetch(self, queries: Sequence[MetricQuery]) -> list[float | QueryFailure]:
        prometheus = [i for i, q in enumerate(queries) if q.endpoint.provider_type == "prometheus"]
        others = [i for i, q in enumerate(queries) if q.endpoint.provider_type != "prometheus"]
        answers: list[float | QueryFailure | None] = [None] * len(queries)
        keys: dict[tuple[Any, ...], list[int]] = {}
        for index in others:
            keys.setdefault(_identity(queries[index]), []).append(index)
        jobs = [self._value(queries[indexes[0]]) for indexes in keys.values()]
        batch = [queries[i] for i in prometheus]
        prometheus_answers, *values = await asyncio.gather(
            self._prometheus().fetch(batch) if batch else _nothing(), *jobs
        )
        for index, answer in zip(prometheus, prometheus_answers, strict=True):
            answers[index] = answer
        for indexes, value in zip(keys.values(), values, strict=True):
            for index in indexes:
                answers[index] = value
        return [a if a is not None else math.nan for a in answers]

    async def fetch_series(self, requests: Sequence[SeriesRequest]) -> list[Series | QueryFailure]:
        """Every request's series; what was answered before is kept and only the new part is
        asked for (``analysis._series_cache``)."""
        return await self._series_cache.fetch_series(requests)

    async def _fetch_series(self, requests: Sequence[SeriesRequest]) -> list[Series | QueryFailure]:
        prometheus = [
            i for i, r in enumerate(requests) if r.query.endpoint.provider_type == "prometheus"
        ]
        others = [
            i for i, r in enumerate(requests) if r.query.endpoint.provider_type != "prometheus"
        ]
        batch = [requests[i] for i in prometheus]
        prometheus_answers, *series = await asyncio.gather(
            self._prometheus().fetch_series(batch) if batch else _nothing(),
            *(self._series(requests[i]) for i in others),
        )
        answers: list[Series | QueryFailure | None] = [None] * len(requests)
        for index, answer in zip(prometheus, prometheus_answers, strict=True):
            answers[index] = answer
        for index, answer in zip(others, series, strict=True):
            answers[index] = answer
        return [a if a is not None else Series.empty() for a in answers]

    async def check_providers(self, queries: Sequence[MetricQuery]) -> str:
        """Flagger's availability check of a canary's metric providers (its
        ``checkMetricProviderAvailability``): the empty string when every provider answers, else
        the first reason, in Flagger's words. Only the builtin metrics (their Prometheus) and the
        template metrics are checked, as in Flagger; a template that is missing is the reason
        itself. Each distinct provider is asked once."""
        asked: dict[tuple[Any, ...], str] = {}
        for query in queries:
            if query.template is None:
                if query.kind not in (CheckKind.SUCCESS_RATE, CheckKind.DURATION):
                    continue  # an inline query: Flagger does not check its provider
                reason = await self._once(asked, query)
                if reason:
                    return f"prometheus not avaiable: {reason}"  # sic: Flagger's text
                continue
            namespace, _, name = query.template.partition("/")
            if template_is_missing(query):
                return missing_template(namespace, name)
            if query.render_error is not None:
                continue  # unrenderable: it fails as a check, as in Flagger (not checked here)
            reason = await self._once(asked, query)
            if reason:
                return (
                    f"{query.endpoint.provider_type} in metric template {name}.{namespace} "
                    f"not avaiable: {reason}"
                )
        return ""

    async def _once(self, asked: dict[tuple[Any, ...], str], query: MetricQuery) -> str:
        """The ping's reason ("" when it answers), asked once per provider and credentials."""
        key = _identity(query)
        key = key[:1] + key[2:]  # a ping does not send the query's text
        if key not in asked:
            endpoint = query.endpoint
            if endpoint.provider_type == "prometheus":
                asked[key] = await self._prometheus().ping(
                    endpoint.server or "",
                    headers=endpoint.headers,
                    secret=endpoint.secret,
                    insecure_skip_verify=endpoint.insecure_skip_verify,
                )
            else:
                asked[key] = await self._ping(query)
        return asked[key]

    def _prometheus(self) -> PrometheusSource:
        if self.prometheus is None:  # record answers Prometheus queries itself
            raise AssertionError("this MetricSources was opened without a Prometheus source")
        return self.prometheus

    # -- one query through its provider module -------------------------------------------------

    async def _value(self, query: MetricQuery) -> float | QueryFailure:
        async def run(provider: MetricProvider, call: Call) -> float:
            assert provider.value is not None  # built providers have one
            return await provider.value(call) * query.scale  # the unit the check compares

        return await self._run(query, run, None)

    async def _series(self, request: SeriesRequest) -> Series | QueryFailure:
        window = Window(request.start, request.end, request.step)
        invalid = _invalid_window(window)
        if invalid:
            return QueryFailure(FailureKind.REJECTED, invalid)

        async def run(provider: MetricProvider, call: Call) -> Series:
            if provider.series is None:
                raise QueryRejected(
                    f"the {provider.type} provider cannot answer series (needed by a comparative "
                    "judge and by record)"
                )
            series = await provider.series(call, window)
            return _scaled(series, request.query.scale)

        return await self._run(request.query, run, self._series_timeout)

    async def _ping(self, query: MetricQuery) -> str:
        async def run(provider: MetricProvider, call: Call) -> float:
            if provider.ping is not None:
                await provider.ping(call)
            return 0.0

        answer = await self._run(query, run, None)
        return answer.message if isinstance(answer, QueryFailure) else ""

    async def _run(
        self,
        query: MetricQuery,
        run: Callable[[MetricProvider, Call], Awaitable[T]],
        deadline: float | None,
    ) -> T | QueryFailure:
        """Resolve what ``run`` needs, run it within ``deadline`` (None: the provider's own, or
        twice the HTTP timeout) and turn every failure into a redacted QueryFailure."""
        if query.render_error is not None or query.expr is None:
            return QueryFailure(
                FailureKind.RENDER, query.render_error or "the query could not be rendered"
            )
        where = _where(query)
        endpoint = query.endpoint
        provider = PROVIDERS.get(endpoint.provider_type)
        if provider is None or not provider.built:
            reason = provider.not_built if provider is not None else "unknown provider type"
            return QueryFailure(
                FailureKind.REJECTED,
                f"{where}: metric provider type {endpoint.provider_type!r} is not built yet: "
                f"{reason}",
            )
        address = endpoint.server or provider.default_address or ""
        if deadline is None:
            deadline = provider.deadline or self.http.timeout * 2
        # One budget for the whole query: its Secret read, its wait for a slot and its requests.
        loop = asyncio.get_running_loop()
        ends = loop.time() + deadline
        secrets = [*url_secrets(address), *header_secrets(endpoint.headers.items())]
        sent = False  # whether the query got a slot (a timeout before it sent nothing)
        try:
            if provider.address_required and not address:
                raise QueryRejected(f"spec.provider.address is required for {provider.type}")
            credentials = await self._secret(endpoint.secret, deadline)
            secrets += [v for v in credentials.values() if v]
            call = Call(
                query=query,
                expr=query.expr,
                address=address,
                credentials=credentials,
                has_secret=endpoint.secret is not None,
                now=self._now(),
                http=self.http,
                sleep=self._sleep,
                kube=self._kube,
            )
            async with asyncio.timeout_at(ends), self._limit((provider.type, address)):
                sent = True
                return await run(provider, call)
        except MetricQueryError as exc:
            return QueryFailure(exc.kind, failure_message(f"{where}: {exc}", secrets))
        except TimeoutError:
            if sent:
                message = f"{where}: no answer within {deadline:g}s"
            else:  # the time went on its Secret read and on waiting for a free slot
                message = (
                    f"{where}: no request sent within {deadline:g}s: its other queries held all "
                    f"{self._limit.concurrency} slots of this server (it is slow to answer "
                    "them), or reading the template's credentials Secret took the time"
                )
            return QueryFailure(FailureKind.TIMEOUT, failure_message(message, secrets))
        except Exception as exc:  # never let one query take its siblings down
            detail = f"{type(exc).__name__}: {exc}"
            return QueryFailure(
                FailureKind.TRANSPORT, failure_message(f"{where}: {detail}", secrets)
            )

    async def _secret(self, ref: str | None, deadline: float) -> Mapping[str, str]:
        if ref is None:
            return {}
        return dict(await read_credentials(self._credentials, ref, within=deadline))


def _identity(query: MetricQuery) -> tuple[Any, ...]:
    """What makes two queries the same request (the first two items: endpoint and text)."""
    return (query.endpoint, query.expr, query.window, query.render_error, query.scale)


def _where(query: MetricQuery) -> str:
    if query.template:
        namespace, _, name = query.template.partition("/")
        return f"{query.endpoint.provider_type} MetricTemplate {name}.{namespace}"
    return f"{query.endpoint.provider_type} query of metric {query.metric}"


def _scaled(series: Series, scale: float) -> Series:
    if scale == 1.0:
        return series
    return Series(series.times, series.values * scale)


def _invalid_window(window: Window) -> str:
    start, end, step = window.start, window.end, window.step
    if not all(math.isfinite(x) for x in (start, end, step)):
        return "invalid series window: start, end and step must be finite numbers"
    if step <= 0:
        return "invalid series window: the step must be positive"
    if end < start:
        return "invalid series window: the end is before the start"
    return ""


async def _no_wait(seconds: float) -> None:
    """Where no clock is given (record): providers that poll do not wait between polls."""


async def _nothing() -> list[Any]:
    return []


@asynccontextmanager
async def open_metric_sources(
    *,
    sleep: Sleep,
    now: Callable[[], float],
    credentials: Credentials | None = None,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    concurrency: int = DEFAULT_CONCURRENCY,
    transport: httpx.AsyncBaseTransport | None = None,
    kube: KubeApi | None = None,
    **prometheus_options: Any,
) -> AsyncIterator[MetricSources]:
    """Open the Prometheus source and one HTTP client per TLS setting for the other providers;
    all are closed on exit. ``now`` is the engine clock's Unix time (the hosted providers' query
    windows end there); ``kube`` is the cluster for the in-cluster providers (keptn,
    externalmetrics without an address); ``prometheus_options`` go to ``open_prometheus``."""
    async with AsyncExitStack() as stack:
        prometheus = await stack.enter_async_context(
            open_prometheus(
                sleep=sleep,
                credentials=credentials,
                concurrency=concurrency,
                transport=transport,
                **prometheus_options,
            )
        )
        yield MetricSources(
            prometheus,
            Http(http_clients(stack, concurrency, transport), timeout=timeout_seconds),
            now=now,
            credentials=credentials,
            concurrency=concurrency,
            sleep=sleep,
            kube=kube,
        )


def http_clients(
    stack: AsyncExitStack, concurrency: int, transport: httpx.AsyncBaseTransport | None
) -> Callable[[bool], httpx.AsyncClient]:
    """One ``httpx.AsyncClient`` per TLS setting (verify or not), opened on first use and closed
    with ``stack``."""
    clients: dict[bool, httpx.AsyncClient] = {}
    # Not capped: the queries in flight are counted per server (analysis._limits).
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=concurrency)

    def client(insecure: bool) -> httpx.AsyncClient:
        found = clients.get(insecure)
        if found is None:
            found = httpx.AsyncClient(
                # redirects are followed by analysis._redirects (credentials stay home)
                verify=False if insecure else system_trust(),
                transport=transport,
                limits=limits,
                follow_redirects=False,
            )
            stack.push_async_callback(found.aclose)
            clients[insecure] = found
        return found

    return client
