"""Chronosphere's provider module against respx routes answering as Flagger's tests and the
Prometheus HTTP API document (``/data/metrics/api/v1/query`` and ``query_range``).

The module's ``PROVIDER`` is called directly with a ``Call`` built here; the last test runs it
through the live sources with the provider injected (not through the registry), to check the
message the engine shows, redacted.
"""

from __future__ import annotations

import asyncio
import base64
import math
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import respx

from analysis import FailureKind, MetricQuery, QueryFailure, Series, open_metric_sources
from analysis._errors import (
    MetricQueryError,
    NoValuesFound,
    ProviderUnavailable,
    QueryRejected,
)
from analysis._types import CheckKind
from analysis.providers._base import Call, Http, Window
from analysis.providers._chronosphere import PROVIDER
from config import MetricTemplateProvider
from config._spec import SecretRef
from tests.analysis.providers.providers_testkit import template_query

ADDRESS = "https://fake.chronosphere.io:443"
QUERY_URL = "https://fake.chronosphere.io/data/metrics/api/v1/query"
RANGE_URL = "https://fake.chronosphere.io/data/metrics/api/v1/query_range"
NOW = 1_800_000_000.0
TOKEN = "chrono-bearer-token-0123456789"
PASSWORD = "chrono-password-9876543210"
BASIC = {"username": "flagger", "password": PASSWORD}
# Flagger's chronosphere_test.go answers
VECTOR_100 = {
    "status": "success",
    "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1545905245.458, "100"]}]},
}
EMPTY = {"status": "success", "data": {"resultType": "vector", "result": []}}
NAN = {
    "status": "success",
    "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1643023250.379, "NaN"]}]},
}
MATRIX = {
    "status": "success",
    "data": {
        "resultType": "matrix",
        "result": [
            {
                "metric": {"__name__": "processTime_seconds:avg"},
                "values": [[1714404069.294, "NaN"], [1714404071.3, "NaN"]],
            },
            {
                "metric": {"__name__": "processTime_seconds:avg"},
                "values": [[1714404069.294, "NaN"], [1714404071.3, "NaN"]],
            },
        ],
    },
}
EXPR = "sum(\n  envoy_cluster_upstream_rq\n)"


def _query(**changes: Any) -> MetricQuery:
    fields: dict[str, Any] = {
        "canary": "test/podinfo",
        "metric": "upstream requests",
        "kind": CheckKind.TEMPLATE,
        "expr": EXPR,
        "server": ADDRESS,
        "provider_type": "chronosphere",
        "secret": "test/chronosphere",
        "template": "test/chronosphere",
    }
    return template_query(**(fields | changes))


@asynccontextmanager
async def _http() -> AsyncIterator[Http]:
    async with httpx.AsyncClient(follow_redirects=True) as client:
        yield Http(lambda insecure: client)


def _call(
    http: Http,
    credentials: Mapping[str, str] | None = BASIC,
    *,
    address: str = ADDRESS,
    **query: Any,
) -> Call:
    return Call(
        query=_query(**query),
        expr=query.get("expr", EXPR),
        address=address,
        credentials=credentials or {},
        has_secret=credentials is not None,
        now=NOW,
        http=http,
        sleep=asyncio.sleep,
    )


async def _value(credentials: Mapping[str, str] | None = BASIC, **query: Any) -> float:
    async with _http() as http:
        assert PROVIDER.value is not None
        return await PROVIDER.value(_call(http, credentials, **query))


async def _failure(credentials: Mapping[str, str] | None = BASIC, **query: Any) -> MetricQueryError:
    with pytest.raises(MetricQueryError) as raised:
        await _value(credentials, **query)
    for secret in (TOKEN, PASSWORD, base64.b64encode(f"flagger:{PASSWORD}".encode()).decode()):
        assert secret not in str(raised.value)
    return raised.value


def _spec(**fields: Any) -> MetricTemplateProvider:
    # model_construct: the loader accepts the type once the registry lists it
    return MetricTemplateProvider.model_construct(type="chronosphere", **fields)


# -- declaration ----------------------------------------------------------------------------------


def test_the_declaration_needs_an_address_and_no_particular_secret_key() -> None:
    assert PROVIDER.type == "chronosphere" and PROVIDER.built
    assert PROVIDER.problems(_spec(address=ADDRESS)) == []
    assert PROVIDER.problems(_spec(address=ADDRESS, secret_ref=SecretRef(name="c"))) == []
    [(field, message)] = PROVIDER.problems(_spec())
    assert field == "spec.provider.address" and "required for chronosphere" in message
    [(field, message)] = PROVIDER.problems(_spec(address="fake.chronosphere.io"))
    assert field == "spec.provider.address" and "not a valid URL" in message
    # a Secret holds token, or username and password: no key is required by every Secret
    assert PROVIDER.secret_keys == () and not PROVIDER.secret_required


# -- value ----------------------------------------------------------------------------------------


@respx.mock
async def test_basic_auth_query_reads_the_value() -> None:
    route = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=VECTOR_100))
    assert await _value(headers={"X-Scope": "tenant-a"}) == 100.0
    request = route.calls.last.request
    # Flagger's trimQuery: every whitespace run is one space
    assert request.url.params["query"] == "sum( envoy_cluster_upstream_rq )"
    assert "time" not in request.url.params  # the server's now, as Flagger
    pair = base64.b64encode(f"flagger:{PASSWORD}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {pair}"
    assert request.headers["X-Scope"] == "tenant-a"


@respx.mock
async def test_a_token_is_sent_as_bearer_and_replaces_a_template_authorization() -> None:
    route = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=VECTOR_100))
    credentials = {"token": TOKEN, **BASIC}  # the token wins, as in Flagger
    assert await _value(credentials, headers={"authorization": "Basic other"}) == 100.0
    request = route.calls.last.request
    assert request.headers.get_list("Authorization") == [f"Bearer {TOKEN}"]


@respx.mock
async def test_without_a_secret_nothing_authenticates() -> None:
    route = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=VECTOR_100))
    assert await _value(None, secret=None) == 100.0
    assert "Authorization" not in route.calls.last.request.headers


@respx.mock
async def test_the_address_path_is_kept_and_its_query_dropped() -> None:
    route = respx.get("https://proxy.example/chrono/data/metrics/api/v1/query").mock(
        return_value=httpx.Response(200, json=VECTOR_100)
    )
    assert await _value(address="https://proxy.example/chrono/?x=1") == 100.0
    assert set(route.calls.last.request.url.params) == {"query"}


@respx.mock
@pytest.mark.parametrize("body", [EMPTY, NAN], ids=["empty vector", "NaN"])
async def test_no_values_found(body: dict[str, Any]) -> None:
    respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=body))
    error = await _failure()
    assert isinstance(error, NoValuesFound)
    assert str(error).startswith("chronosphere: no values found")


@respx.mock
async def test_a_range_vector_or_several_series_are_ambiguous() -> None:
    route = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=MATRIX))
    error = await _failure()  # Flagger's ErrMultipleValuesReturned
    assert error.kind is FailureKind.AMBIGUOUS and "range vector" in str(error)
    two = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"pod": "a"}, "value": [NOW, "1"]},
                {"metric": {"pod": "b"}, "value": [NOW, "2"]},
            ],
        },
    }
    route.mock(return_value=httpx.Response(200, json=two))
    error = await _failure()
    assert error.kind is FailureKind.AMBIGUOUS and 'pod="a"' in str(error)


@respx.mock
@pytest.mark.parametrize(
    ("status", "error_type"),
    [(400, QueryRejected), (401, QueryRejected), (422, QueryRejected), (502, ProviderUnavailable)],
)
async def test_http_errors_keep_the_body_and_hide_the_credentials(
    status: int, error_type: type[MetricQueryError]
) -> None:
    body = {
        "status": "error",
        "errorType": "bad_data",
        "error": f"parse error; Authorization: Bearer {TOKEN}; password={PASSWORD}",
    }
    respx.get(QUERY_URL).mock(return_value=httpx.Response(status, json=body))
    error = await _failure({"token": TOKEN, "password": PASSWORD})
    assert type(error) is error_type
    assert f"HTTP {status}" in str(error) and "parse error" in str(error)
    error = await _failure()  # basic auth: its password is hidden as well
    assert type(error) is error_type


@respx.mock
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<html>gateway</html>", "not JSON"),
        ('["not", "an", "object"]', "not a query result"),
        ('{"status": "success"}', "not a Prometheus API answer"),
        ('{"status": "error", "error": "query timed out"}', "query timed out"),
        (
            '{"status": "success", "data": {"resultType": "vector", "result": '
            '[{"metric": {}, "value": [1, true]}]}}',
            "not a number",
        ),
        ('{"status": "success", "data": {"resultType": "vector", "result": 3}}', "malformed"),
    ],
)
async def test_malformed_bodies_are_rejected(body: str, expected: str) -> None:
    respx.get(QUERY_URL).mock(return_value=httpx.Response(200, text=body))
    error = await _failure()
    assert error.kind is FailureKind.REJECTED
    assert expected in str(error) and "chronosphere" in str(error)


@respx.mock
@pytest.mark.parametrize(
    ("credentials", "missing"),
    [({}, "username"), ({"username": "flagger"}, "password"), ({"password": PASSWORD}, "username")],
)
async def test_a_secret_without_token_needs_username_and_password(
    credentials: dict[str, str], missing: str
) -> None:
    route = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=VECTOR_100))
    error = await _failure(credentials)
    assert isinstance(error, QueryRejected)
    assert f"chronosphere credentials does not contain a {missing}" in str(error)
    assert not route.called  # refused before anything is sent


@respx.mock
async def test_a_timeout_and_an_unreachable_host_are_transient() -> None:
    route = respx.get(QUERY_URL).mock(side_effect=httpx.ConnectTimeout("slow"))
    assert (await _failure()).kind is FailureKind.TIMEOUT
    route.mock(side_effect=httpx.ConnectError("refused"))
    assert (await _failure()).kind is FailureKind.TRANSPORT


# -- series ---------------------------------------------------------------------------------------


@respx.mock
async def test_series_asks_the_range_api_on_a_grid_ending_at_the_window_end() -> None:
    matrix = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {
                    "metric": {},
                    "values": [[NOW - 120, "1.5"], [NOW - 60, "NaN"], [NOW, "2.5"]],
                }
            ],
        },
    }
    route = respx.get(RANGE_URL).mock(return_value=httpx.Response(200, json=matrix))
    async with _http() as http:
        assert PROVIDER.series is not None
        found = await PROVIDER.series(_call(http), Window(NOW - 150.5, NOW, 60.0))
    assert isinstance(found, Series)
    assert found.times.tolist() == [NOW - 120, NOW - 60, NOW]
    assert found.values[0] == 1.5 and math.isnan(found.values[1]) and found.values[2] == 2.5
    params = route.calls.last.request.url.params
    assert params["query"] == "sum( envoy_cluster_upstream_rq )"
    assert (params["start"], params["end"], params["step"]) == (
        str(int(NOW - 120)),
        str(int(NOW)),
        "60",
    )
    assert route.calls.last.request.headers["Authorization"].startswith("Basic ")


@respx.mock
async def test_series_of_an_empty_matrix_is_empty_and_of_two_series_ambiguous() -> None:
    route = respx.get(RANGE_URL).mock(
        return_value=httpx.Response(
            200, json={"status": "success", "data": {"resultType": "matrix", "result": []}}
        )
    )
    async with _http() as http:
        assert PROVIDER.series is not None
        assert len(await PROVIDER.series(_call(http), Window(NOW - 60, NOW, 60))) == 0
        two = {
            "status": "success",
            "data": {
                "resultType": "matrix",
                "result": [
                    {"metric": {"pod": "a"}, "values": [[NOW, "1"]]},
                    {"metric": {"pod": "b"}, "values": [[NOW, "2"]]},
                ],
            },
        }
        route.mock(return_value=httpx.Response(200, json=two))
        with pytest.raises(MetricQueryError) as raised:
            await PROVIDER.series(_call(http), Window(NOW - 60, NOW, 60))
        assert raised.value.kind is FailureKind.AMBIGUOUS


# -- ping -----------------------------------------------------------------------------------------


@respx.mock
async def test_ping_runs_vector_1() -> None:
    one = {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [NOW, "1"]}]},
    }
    route = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=one))
    async with _http() as http:
        assert PROVIDER.ping is not None
        await PROVIDER.ping(_call(http))
        assert route.calls.last.request.url.params["query"] == "vector(1)"
        assert route.calls.last.request.headers["Authorization"].startswith("Basic ")
        route.mock(return_value=httpx.Response(200, json=VECTOR_100))
        with pytest.raises(ProviderUnavailable, match="value is not 1 for query: vector"):
            await PROVIDER.ping(_call(http))
        route.mock(return_value=httpx.Response(502))  # Flagger's IsOnline "fail" case
        with pytest.raises(ProviderUnavailable, match="HTTP 502"):
            await PROVIDER.ping(_call(http, None, secret=None))


# -- through the live sources -------------------------------------------------------------------


@respx.mock
async def test_through_the_live_sources_a_failure_names_the_template_and_hides_secrets() -> None:
    route = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=VECTOR_100))
    secrets = {"test/chronosphere": {"token": TOKEN}}
    async with open_metric_sources(
        sleep=asyncio.sleep, now=lambda: NOW, credentials=secrets.get
    ) as live:
        assert await live.fetch([_query(scale=1000.0)]) == [100_000.0]  # the scale, once
        route.mock(return_value=httpx.Response(403, text=f"token {TOKEN} is not allowed"))
        [answer] = await live.fetch([_query()])
        assert await live.check_providers([_query()]) != ""
    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.REJECTED
    assert answer.message.startswith("chronosphere MetricTemplate chronosphere.test:")
    assert "HTTP 403" in answer.message and TOKEN not in answer.message
