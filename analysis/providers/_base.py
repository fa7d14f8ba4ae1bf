"""What a metric provider module declares, and the HTTP plumbing the hosted providers share.

A provider module builds one ``MetricProvider``: its ``spec.provider.type`` name, which
``spec.provider`` fields and Secret keys it needs (checked by ``problems`` for ``validate`` and
again before every query), and the coroutines that answer one query with one float (``value``,
Flagger's ``RunQuery``), with samples over a window (``series``) and the availability check
(``ping``, Flagger's ``IsOnline``). ``analysis.providers`` collects the modules into the registry;
``analysis.providers._sources`` runs them.

Each coroutine gets a ``Call``: the rendered query, the resolved address and Secret data, the
clock's ``now`` and an ``Http`` that sends one request with the source's deadline and turns
transport failures and HTTP errors into ``MetricQueryError``s whose messages name the provider
(callers add the template and redact the secrets). Nothing here imports the engine.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from analysis import _redirects as redirects
from analysis._answers import read_up_to
from analysis._errors import (
    MetricQueryError,
    NoValuesFound,
    ProviderUnavailable,
    QueryRejected,
    QueryTimeout,
)
from analysis._numbers import parse_number_text
from analysis._text import clip
from analysis._types import MetricQuery, Series
from config import MetricTemplateProvider, url_problem

if TYPE_CHECKING:
    # httpx and numpy are imported where requests are sent and series built, not here:
    # ``validate`` reads every provider's declaration through this module and must stay fast.
    import httpx

#: Flagger's per-request timeout of the hosted providers (seconds).
DEFAULT_TIMEOUT_SECONDS = 5.0
#: How much of an error body a message quotes.
_BODY_CHARS = 300
#: The largest answer read (bytes): one metric's answer, a day of samples included, is well
#: under a megabyte, and 64 queries in flight must not hold gigabytes.
MAX_ANSWER_BYTES = 16 * 1024 * 1024
#: Headers that describe the body as sent, not as read (decoded, whole).
_FRAMING_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


@dataclass(frozen=True, slots=True)
class Window:
    """Samples wanted over ``[start, end]`` every ``step`` seconds (Unix seconds)."""

    start: float
    end: float
    step: float


#: (group, version, plural, kind) of a Kubernetes resource, e.g. Keptn's
#: ("metrics.keptn.sh", "v1beta1", "keptnmetrics", "KeptnMetric").
Resource = tuple[str, str, str, str]
Sleep = Callable[[float], Awaitable[None]]


class KubeApi(Protocol):
    """The slice of the Kubernetes API the in-cluster providers (keptn, externalmetrics) use; the
    engine implements it over its Cluster seam (analysis never imports traffic)."""

    async def get(self, resource: Resource, namespace: str, name: str) -> Mapping[str, Any] | None:
        """The object, or None when it does not exist."""
        ...

    async def list(
        self, resource: Resource, namespace: str, labels: Mapping[str, str]
    ) -> list[Mapping[str, Any]]:
        """The items of a namespaced list (empty when the server does not serve it)."""
        ...

    async def create(self, resource: Resource, body: dict[str, Any]) -> Mapping[str, Any]: ...

    async def delete(self, resource: Resource, namespace: str, name: str) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    """One query for a provider: the rendered text and everything resolved for it."""

    query: MetricQuery
    expr: str
    address: str  # spec.provider.address, or the provider's default ("" when it has none)
    # The credentials Secret's data ({} without secretRef); kept out of the repr.
    credentials: Mapping[str, str] = field(repr=False)
    has_secret: bool
    now: float  # Unix seconds, from the engine's clock
    http: Http
    sleep: Sleep  # the engine clock's sleep (a provider that polls)
    kube: KubeApi | None = None  # the cluster, for the in-cluster providers

    @property
    def headers(self) -> dict[str, str]:
        """The template's ``spec.provider.headers`` (sent first; provider credentials win)."""
        return dict(self.query.endpoint.headers)

    @property
    def headers_without_authorization(self) -> dict[str, str]:
        """The template's headers less any ``Authorization`` (in any case): for a provider that
        sends its own credentials in that header, so the template's is not sent next to them."""
        return {
            k: v for k, v in self.query.endpoint.headers.items() if k.lower() != "authorization"
        }


ValueFn = Callable[[Call], Awaitable[float]]
SeriesFn = Callable[[Call, Window], Awaitable[Series]]
PingFn = Callable[[Call], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricProvider:
    """One metric provider as its module declares it (see the module docstring)."""

    type: str
    #: What it talks to, for ``validate`` and the README ("Graphite render API").
    summary: str
    #: Address used when ``spec.provider.address`` is empty; None: the address is required.
    default_address: str | None = None
    address_required: bool = False
    region_required: bool = False
    secret_required: bool = False
    #: Keys the credentials Secret must hold when ``secretRef`` is set.
    secret_keys: tuple[str, ...] = ()
    value: ValueFn | None = None
    series: SeriesFn | None = None
    ping: PingFn | None = None
    #: Why the provider cannot run yet ("" when built): refused by ``validate``.
    not_built: str = ""
    #: Seconds one value may take in all (None: twice the HTTP timeout).
    deadline: float | None = None
    #: URL schemes ``spec.provider.address`` may use.
    schemes: tuple[str, ...] = ("http", "https")

    @property
    def built(self) -> bool:
        return self.value is not None and not self.not_built

    def problems(self, spec: MetricTemplateProvider) -> list[tuple[str, str]]:
        """``(field, message)`` for every setting this provider cannot run with."""
        if not self.built:
            reason = self.not_built or "its query path is missing"
            return [("spec.provider.type", f"{self.type!r} is not built yet: {reason}")]
        found: list[tuple[str, str]] = []
        if self.address_required and not spec.address:
            found.append(
                ("spec.provider.address", f"required for {self.type}: the {self.summary} URL")
            )
        elif spec.address and not spec.address.startswith(tuple(f"{s}://" for s in self.schemes)):
            expected = " or ".join(f"{s}://" for s in self.schemes)
            found.append(
                (
                    "spec.provider.address",
                    f"{clip(spec.address, 200)!r} is not a valid URL: expected {expected}",
                )
            )
        elif spec.address and (bad := url_problem(spec.address)):
            found.append(
                (
                    "spec.provider.address",
                    f"{clip(spec.address, 200)!r} is not a valid URL: {bad}",
                )
            )
        if self.region_required and not spec.region:
            found.append(("spec.provider.region", f"required for {self.type} (e.g. us-east-1)"))
        if self.secret_required and spec.secret_ref is None:
            keys = " and ".join(repr(k) for k in self.secret_keys)
            found.append(
                ("spec.provider.secretRef", f"required for {self.type}: a Secret with {keys}")
            )
        return found

    def missing_keys(self, credentials: Mapping[str, str]) -> list[str]:
        return [key for key in self.secret_keys if not credentials.get(key)]


class Http:
    """Sends one request per call through shared ``httpx.AsyncClient``s (one per TLS setting)."""

    def __init__(
        self,
        clients: Callable[[bool], httpx.AsyncClient],
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self._clients = clients
        self.timeout = timeout
        self.requests = 0

    async def send(
        self,
        provider: str,
        method: str,
        url: str,
        *,
        insecure: bool = False,
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        time_limit: float | None = None,
    ) -> httpx.Response:
        """One request, bounded by ``time_limit`` (default: this Http's timeout); raise
        MetricQueryError on any failure or a non-2xx answer (4xx: QueryRejected, 429/5xx:
        ProviderUnavailable), quoting the body."""
        import ssl

        import httpx

        limit = self.timeout if time_limit is None else time_limit
        client = self._clients(insecure)
        self.requests += 1
        try:
            request = client.build_request(
                method,
                url,
                params=_query_params(params),
                headers=headers,
                json=json_body,
                content=content,
                timeout=limit,
            )
            redirects.check_port(request.url)
            response = await client.send(request, stream=True, follow_redirects=False)
            response = await redirects.follow(client, response, headers, provider, stream=True)
            response = await _read_capped(response, provider, url)
        except httpx.TimeoutException:
            raise QueryTimeout(
                f"{provider} {_origin(url)} did not answer within {limit:g}s"
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL, ssl.SSLError) as exc:
            raise ProviderUnavailable(
                f"{provider} {_origin(url)} unreachable: {type(exc).__name__}: {exc}"
            ) from None
        status = response.status_code
        if status < 300:
            return response
        body = clip(response.text.strip(), _BODY_CHARS) or response.reason_phrase
        if status == 429 or status >= 500:
            raise ProviderUnavailable(f"{provider} {_origin(url)} answered HTTP {status}: {body}")
        hint = " (check the credentials)" if status in (401, 403) else ""
        raise QueryRejected(
            f"{provider} rejected the query (HTTP {status}): {body}{hint}", status=status
        )


async def _read_capped(response: httpx.Response, provider: str, url: str) -> httpx.Response:
    """The streamed ``response`` read whole, as an ordinary one; QueryRejected past
    ``MAX_ANSWER_BYTES`` (httpx would read any size into memory)."""
    import httpx

    try:
        body, more = await read_up_to(response, MAX_ANSWER_BYTES)
    finally:
        await response.aclose()
    if more:
        raise QueryRejected(
            f"{provider} {_origin(url)} answered more than "
            f"{MAX_ANSWER_BYTES // (1024 * 1024)} MiB, far more than one metric's "
            "answer: narrow the query"
        )
    return httpx.Response(
        response.status_code,
        headers=[
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() not in _FRAMING_HEADERS
        ],
        content=body,
        request=response.request,
        extensions=response.extensions,
    )


def json_body(response: httpx.Response, provider: str) -> Any:
    """The JSON of a 2xx answer; QueryRejected naming the provider when it is not JSON."""

    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        shown = clip(response.text.strip(), _BODY_CHARS)
        raise QueryRejected(f"{provider} answered a body that is not JSON: {shown!r}") from None
    except (ValueError, RecursionError) as exc:  # an integer of 5,000 digits, arrays nested deep
        raise QueryRejected(
            f"{provider} answered a body that is not usable JSON: {type(exc).__name__}"
        ) from None


def json_object(response: httpx.Response, provider: str) -> dict[str, Any]:
    """The JSON object of a 2xx answer; QueryRejected naming the provider for anything else."""
    body = json_body(response, provider)
    if not isinstance(body, dict):
        raise QueryRejected(f"{provider} answered {clip(str(body), 200)!r}, not a query result")
    return body


async def online_if_bad_request(attempt: Awaitable[object]) -> None:
    """Await a deliberately invalid query: HTTP 400 means the provider was reached and could
    parse it, hence online (Flagger's ``IsOnline`` for providers with no cheap read)."""
    try:
        await attempt
    except QueryRejected as exc:
        if exc.status != 400:
            raise


def number(value: Any, provider: str, what: str) -> float:
    """A JSON number (or numeric string) as a float; QueryRejected for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise QueryRejected(f"{provider} answered {what} that is not a number: {value!r}")
    try:
        return parse_number_text(value) if isinstance(value, str) else float(value)
    except (ValueError, OverflowError):
        raise QueryRejected(f"{provider} answered {what} that is not a number: {value!r}") from None


def make_series(points: Sequence[tuple[float, float]]) -> Series:
    """A Series from (time, value) pairs in any order; the last value of a time wins."""
    import numpy as np

    if not points:
        return Series.empty()
    merged = dict(sorted(points, key=lambda p: p[0]))
    times = np.fromiter(merged.keys(), dtype=np.float64, count=len(merged))
    values = np.fromiter(merged.values(), dtype=np.float64, count=len(merged))
    return Series(times, values)


def window_series(points: Iterable[tuple[float, float | None]], window: Window) -> Series:
    """The (time, value) points inside ``[window.start, window.end]`` (both ends included) as a
    Series; a null value is NaN, a step the provider answered without data. The filter is needed
    because providers are asked for the window widened to whole seconds or milliseconds, and some
    answer over a span of their own."""
    return make_series(
        [(t, math.nan if v is None else v) for t, v in points if window.start <= t <= window.end]
    )


def require_keys(provider: MetricProvider, call: Call) -> None:
    """Flagger's "<type> credentials does not contain <key>" before any request is sent."""
    if provider.secret_required and not call.has_secret:
        raise QueryRejected(
            f"{provider.type} needs spec.provider.secretRef: a Secret with "
            + " and ".join(repr(k) for k in provider.secret_keys)
        )
    if call.has_secret:
        missing = provider.missing_keys(call.credentials)
        if missing:
            keys = ", ".join(sorted(call.credentials)) or "none"
            raise QueryRejected(
                f"{provider.type} credentials does not contain {' or '.join(missing)} "
                f"(keys found: {keys})"
            )


def no_values(provider: str, detail: str = "") -> MetricQueryError:
    """Flagger's ErrNoValuesFound, with what came back."""
    suffix = f": {clip(detail, _BODY_CHARS)}" if detail else ""
    return NoValuesFound(f"{provider}: no values found{suffix}")


def _query_params(
    params: Mapping[str, str] | Sequence[tuple[str, str]] | None,
) -> httpx.QueryParams | None:
    import httpx

    if params is None:
        return None
    items = params.items() if isinstance(params, Mapping) else params
    pairs: list[tuple[str, str | int | float | bool | None]] = list(items)
    return httpx.QueryParams(pairs)


def _origin(url: str) -> str:
    """Scheme and host of a URL: what a message names (paths and queries may hold keys)."""
    import httpx

    try:
        return redirects.origin(httpx.URL(url))
    except (httpx.InvalidURL, TypeError):
        return "(invalid URL)"
