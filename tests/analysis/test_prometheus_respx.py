"""PrometheusSource against a mocked Prometheus (respx): every edge of flagger-behaviour §4.4.

Each test plans real checks with ``plan_queries`` (or builds a MetricQuery), answers them from a
respx route that inspects the query, and checks the answer or the QueryFailure kind and wording.
Grouping: one request for many canaries, scatter correctness, no data for a canary missing from
the grouped vector. TLS: the client options chosen per server, and a real TLS listener signed by
a test CA (trusted through a Secret's ca.crt, skipped with insecureSkipVerify, refused otherwise).
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import respx

import analysis._prometheus as prometheus_module
import config
from analysis import (
    Check,
    Endpoint,
    FailureKind,
    MetricQuery,
    PrometheusSource,
    QueryFailure,
    Verdict,
    analyze,
    analyze_batches,
    open_prometheus,
    plan_checks,
    plan_queries,
)
from analysis._grouping import GROUP_TARGET_LABEL
from tests.analysis.conftest import PROM, Sleeps, raw, raw_check
from tests.tls_certs import TEST_CA_PEM, serving_https

CanaryFactory = Callable[..., config.Canary]
TemplateFactory = Callable[..., config.MetricTemplate]

QUERY_URL = f"{PROM}/api/v1/query"
SUCCESS = {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}
DURATION = {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "1m"}


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def vector(*series: tuple[dict[str, str], str | float]) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": labels, "value": [1767225600.0, str(value)]} for labels, value in series
            ],
        },
    }


def one(value: str | float) -> dict[str, Any]:
    return vector(({}, value))


def query_of(request: httpx.Request) -> str:
    if request.method == "POST":
        form = httpx.QueryParams(request.content.decode())
        return form["query"]
    return request.url.params["query"]


async def fetch_one(source: PrometheusSource, query: MetricQuery) -> float | QueryFailure:
    return (await source.fetch([query]))[0]


def failure(answer: float | QueryFailure, kind: FailureKind) -> QueryFailure:
    assert isinstance(answer, QueryFailure), answer
    assert answer.kind is kind, answer
    return answer


# ---------------------------------------------------------------------------------------------
# Values, no data, ambiguity
# ---------------------------------------------------------------------------------------------


@respx.mock
async def test_a_value_is_scaled_to_the_checks_unit(
    source: PrometheusSource, make_canary: CanaryFactory
) -> None:
    canary = make_canary([DURATION], provider="kubernetes")
    [check] = plan_checks(canary, {}, provider="kubernetes", default_server=PROM)
    route = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=one("0.2127")))
    [result] = await analyze(source, [check])
    assert route.call_count == 1
    assert query_of(route.calls[0].request) == check.query.expr  # byte-identical to Flagger's query
    assert (result.verdict, result.value) == (Verdict.PASS, 212.0)  # seconds -> whole ms


@respx.mock
async def test_nan_is_no_data(source: PrometheusSource, make_canary: CanaryFactory) -> None:
    canary = make_canary([SUCCESS])
    checks = plan_checks(canary, {}, provider="istio", default_server=PROM)
    respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=one("NaN")))
    [result] = await analyze(source, checks)
    assert result.verdict is Verdict.NO_DATA
    assert failure(result.failure or 0.0, FailureKind.NO_DATA).message == (
        "no values found (the query returned NaN)"
    )
    assert result.message == (
        "Halt advancement no values found for istio metric request-success-rate probably "
        "podinfo.test is not receiving traffic: running query failed: no values found"
    )


@respx.mock
async def test_empty_vector_is_no_data(source: PrometheusSource) -> None:
    respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=vector()))
    answer = failure(await fetch_one(source, raw()), FailureKind.NO_DATA)
    assert answer.message == "no values found (empty result)"


@respx.mock
async def test_infinity_is_a_value_not_no_data(source: PrometheusSource) -> None:
    respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=one("+Inf")))
    assert await fetch_one(source, raw()) == float("inf")


@respx.mock
async def test_several_series_are_ambiguous_and_named(source: PrometheusSource) -> None:
    body = vector(({"pod": "a-1", "code": "200"}, 1), ({"pod": "b-2", "code": "200"}, 2))
    respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=body))
    answer = failure(await fetch_one(source, raw()), FailureKind.AMBIGUOUS)
    assert answer.message.startswith("query returned 2 series where one value is expected: ")
    assert '{code="200", pod="a-1"}' in answer.message
    assert '{code="200", pod="b-2"}' in answer.message


@respx.mock
async def test_a_query_fanning_out_into_thousands_of_series_is_named_by_its_first_few(
    source: PrometheusSource,
) -> None:
    # A template without its sum(...) can answer a series per pod and code: the message (an
    # event, a log line) names five and counts the rest instead of listing 20,000.
    body = vector(*(({"pod": f"p-{i}"}, i) for i in range(20_000)))
    respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=body))
    answer = failure(await fetch_one(source, raw()), FailureKind.AMBIGUOUS)
    assert answer.message.startswith(
        'query returned 20000 series where one value is expected: {pod="p-0"}, {pod="p-1"}, '
        '{pod="p-2"}, {pod="p-3"}, {pod="p-4"} and 19995 more; aggregate the query'
    )


@respx.mock
async def test_ambiguous_result_fails_the_check_as_an_error(source: PrometheusSource) -> None:
    body = vector(({"pod": "a"}, 1), ({"pod": "b"}, 2))
    respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=body))
    [result] = await analyze(source, [raw_check(lo=0.0)])
    assert result.verdict is Verdict.ERROR
    assert result.message.startswith("Prometheus query failed for custom: query returned 2 series")


@respx.mock
async def test_a_matrix_result_is_an_error(source: PrometheusSource) -> None:
    body = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [{"metric": {}, "values": [[1.0, "1"], [2.0, "2"]]}],
        },
    }
    respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=body))
    answer = failure(await fetch_one(source, raw("up[5m]")), FailureKind.AMBIGUOUS)
    assert "range vector (matrix)" in answer.message


@respx.mock
async def test_a_scalar_result_is_a_value(source: PrometheusSource) -> None:
    body = {"status": "success", "data": {"resultType": "scalar", "result": [1.0, "42.5"]}}
    respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=body))
    assert await fetch_one(source, raw("scalar(x)", scale=2.0)) == 85.0


@respx.mock
async def test_a_body_that_is_not_prometheus_json_is_a_transport_failure(
    source: PrometheusSource,
) -> None:
    respx.get(QUERY_URL).mock(return_value=httpx.Response(200, text="<html>login</html>"))
    answer = failure(await fetch_one(source, raw()), FailureKind.TRANSPORT)
    assert "not a Prometheus API answer" in answer.message and "login" in answer.message


# ---------------------------------------------------------------------------------------------
# Errors, retries, timeouts
# ---------------------------------------------------------------------------------------------


@respx.mock
async def test_400_is_rejected_with_prometheus_error_text_and_not_retried(
    source: PrometheusSource, sleeps: Sleeps
) -> None:
    body = {
        "status": "error",
        "errorType": "bad_data",
        "error": 'invalid parameter "query": 1:5: parse error: unexpected "}"',
    }
    route = respx.get(QUERY_URL).mock(return_value=httpx.Response(400, json=body))
    [result] = await analyze(source, [raw_check("sum(x})", lo=1.0)])
    answer = failure(result.failure or 0.0, FailureKind.REJECTED)
    assert answer.message == (
        "prometheus rejected the query (HTTP 400, bad_data): "
        'invalid parameter "query": 1:5: parse error: unexpected "}"'
    )
    assert result.verdict is Verdict.ERROR
    assert result.message == f"Prometheus query failed for custom: {answer.message}"
    assert route.call_count == 1 and sleeps.delays == []


@respx.mock
async def test_422_execution_error_is_rejected(source: PrometheusSource) -> None:
    body = {"status": "error", "errorType": "execution", "error": "many-to-many matching"}
    respx.get(QUERY_URL).mock(return_value=httpx.Response(422, json=body))
    answer = failure(await fetch_one(source, raw()), FailureKind.REJECTED)
    assert answer.message.endswith("(HTTP 422, execution): many-to-many matching")


@respx.mock
async def test_401_says_to_check_the_credentials(source: PrometheusSource) -> None:
    respx.get(QUERY_URL).mock(return_value=httpx.Response(401, text="Unauthorized"))
    answer = failure(await fetch_one(source, raw()), FailureKind.REJECTED)
    assert answer.message == (
        "prometheus rejected the query (HTTP 401): Unauthorized (check the credentials)"
    )


@respx.mock
async def test_5xx_then_success_is_retried_with_backoff(
    source: PrometheusSource, sleeps: Sleeps
) -> None:
    route = respx.get(QUERY_URL).mock(
        side_effect=[
            httpx.Response(503, text="overloaded"),
            httpx.Response(502, text="bad gateway"),
            httpx.Response(200, json=one(99.5)),
        ]
    )
    assert await fetch_one(source, raw()) == 99.5
    assert route.call_count == 3
    assert sleeps.delays == [0.25, 0.5]
    assert source.requests_sent == 3


@respx.mock
async def test_5xx_gives_up_after_the_retries(source: PrometheusSource, sleeps: Sleeps) -> None:
    body = {"status": "error", "errorType": "internal", "error": "storage is down"}
    route = respx.get(QUERY_URL).mock(return_value=httpx.Response(500, json=body))
    answer = failure(await fetch_one(source, raw()), FailureKind.TRANSPORT)
    assert answer.message == (
        f"prometheus {PROM} answered HTTP 500: storage is down (gave up after 3 attempts)"
    )
    assert route.call_count == 3 and sleeps.delays == [0.25, 0.5]


@respx.mock
async def test_a_prometheus_query_timeout_answer_is_a_timeout(source: PrometheusSource) -> None:
    body = {"status": "error", "errorType": "timeout", "error": "query timed out"}
    respx.get(QUERY_URL).mock(return_value=httpx.Response(503, json=body))
    answer = failure(await fetch_one(source, raw()), FailureKind.TIMEOUT)
    assert "query timed out" in answer.message


@respx.mock
async def test_429_is_a_transport_failure_without_retry(source: PrometheusSource) -> None:
    route = respx.get(QUERY_URL).mock(return_value=httpx.Response(429, text="slow down"))
    answer = failure(await fetch_one(source, raw()), FailureKind.TRANSPORT)
    assert answer.message == f"prometheus {PROM} is overloaded (HTTP 429): slow down"
    assert route.call_count == 1


@respx.mock
async def test_connection_error_then_success(source: PrometheusSource, sleeps: Sleeps) -> None:
    route = respx.get(QUERY_URL).mock(
        side_effect=[httpx.ConnectError("Connection refused"), httpx.Response(200, json=one(1))]
    )
    assert await fetch_one(source, raw()) == 1.0
    assert route.call_count == 2 and sleeps.delays == [0.25]


@respx.mock
async def test_connection_errors_give_up_with_a_clear_message(source: PrometheusSource) -> None:
    respx.get(QUERY_URL).mock(side_effect=httpx.ConnectError("[Errno 111] Connection refused"))
    answer = failure(await fetch_one(source, raw()), FailureKind.TRANSPORT)
    assert answer.message == (
        f"prometheus {PROM} unreachable: ConnectError: [Errno 111] Connection refused "
        "(gave up after 3 attempts)"
    )


@respx.mock
async def test_a_read_timeout_is_a_timeout(source: PrometheusSource, sleeps: Sleeps) -> None:
    respx.get(QUERY_URL).mock(side_effect=httpx.ReadTimeout("timed out"))
    answer = failure(await fetch_one(source, raw()), FailureKind.TIMEOUT)
    assert answer.message == f"prometheus {PROM} did not answer within 5s"
    assert sleeps.delays == []  # timeouts are not retried


@respx.mock
async def test_the_timeout_bounds_a_query_that_hangs(sleeps: Sleeps) -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    respx.get(QUERY_URL).mock(side_effect=hang)
    async with open_prometheus(sleep=sleeps, timeout_seconds=0.05) as source:
        answer = failure(await fetch_one(source, raw()), FailureKind.TIMEOUT)
    assert answer.message == f"prometheus {PROM} did not answer within 50ms"


@respx.mock
async def test_a_password_in_the_address_is_not_echoed(source: PrometheusSource) -> None:
    respx.get("http://prom.test:9090/api/v1/query").mock(side_effect=httpx.ConnectError("nope"))
    answer = await fetch_one(
        source, raw(endpoint=Endpoint(server="http://admin:s3cret@prom.test:9090"))
    )
    assert isinstance(answer, QueryFailure)
    assert "s3cret" not in answer.message and "xxxxx" in answer.message


@respx.mock
async def test_one_failing_query_never_cancels_the_others(source: PrometheusSource) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        expr = query_of(request)
        if expr == "bad":
            return httpx.Response(400, json={"status": "error", "error": "parse error"})
        if expr == "boom":
            raise RuntimeError("unexpected")
        if expr == "down":
            raise httpx.ConnectError("refused")
        return httpx.Response(200, json=one(len(expr)))

    respx.get(QUERY_URL).mock(side_effect=answer)
    answers = await source.fetch([raw("a"), raw("bad"), raw("bb"), raw("boom"), raw("down")])
    assert answers[0] == 1.0 and answers[2] == 2.0
    assert failure(answers[1], FailureKind.REJECTED)
    assert failure(answers[3], FailureKind.TRANSPORT).message == "RuntimeError: unexpected"
    assert failure(answers[4], FailureKind.TRANSPORT)


@respx.mock
async def test_concurrency_is_bounded(sleeps: Sleeps) -> None:
    in_flight = 0
    peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, json=one(1))

    respx.get(QUERY_URL).mock(side_effect=slow)
    async with open_prometheus(sleep=sleeps, concurrency=3) as source:
        answers = await source.fetch([raw(f"q{i}") for i in range(12)])
    assert answers == [1.0] * 12
    assert peak == 3


async def test_unrenderable_and_unsupported_queries_send_nothing(
    source: PrometheusSource,
) -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.get(QUERY_URL)
        broken = raw(render_error="Metric template lat.test query render error: boom", expr=None)
        datadog = raw(endpoint=Endpoint(provider_type="datadog", server=PROM))
        nowhere = raw(endpoint=Endpoint(server=None))
        answers = await source.fetch([broken, datadog, nowhere])
    assert route.call_count == 0
    assert failure(answers[0], FailureKind.RENDER).message.endswith("boom")
    # Other providers' checks run through analysis.open_metric_sources, never PrometheusSource.
    assert "'datadog' is not Prometheus" in failure(answers[1], FailureKind.REJECTED).message
    assert failure(answers[2], FailureKind.TRANSPORT).message.startswith("no Prometheus address")


@respx.mock
async def test_a_long_query_is_sent_as_a_post_form(source: PrometheusSource) -> None:
    route = respx.post(QUERY_URL).mock(return_value=httpx.Response(200, json=one(3)))
    expr = 'sum(up{job=~"' + "|".join(f"job{i}" for i in range(1000)) + '"})'
    assert await fetch_one(source, raw(expr)) == 3.0
    request = route.calls[0].request
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert query_of(request) == expr


@respx.mock
async def test_identical_queries_are_sent_once(source: PrometheusSource) -> None:
    route = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=one(7)))
    assert await source.fetch([raw("x"), raw("x", scale=2.0), raw("x")]) == [7.0, 14.0, 7.0]
    assert route.call_count == 1


# ---------------------------------------------------------------------------------------------
# Availability check
# ---------------------------------------------------------------------------------------------


@respx.mock
async def test_ping_is_empty_when_vector_1_answers_1(source: PrometheusSource) -> None:
    route = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=one(1)))
    assert await source.ping(PROM) == ""
    assert query_of(route.calls[0].request) == "vector(1)"


@respx.mock
async def test_ping_gives_the_reason(source: PrometheusSource) -> None:
    respx.get(QUERY_URL).mock(side_effect=httpx.ConnectError("refused"))
    # Flagger's IsOnline words, with the reason naming the server
    assert await source.ping(PROM) == (
        f"running query failed: prometheus {PROM} unreachable: "
        "ConnectError: refused (gave up after 3 attempts)"
    )
    respx.get(QUERY_URL).mock(return_value=httpx.Response(404, text="nope"))
    assert await source.ping(PROM) == (
        f"running query failed: prometheus rejected the query (HTTP 404): nope (prometheus {PROM})"
    )
    respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=one(2)))
    assert await source.ping(PROM) == f"value is not 1 for query: vector(1) (prometheus {PROM})"


# ---------------------------------------------------------------------------------------------
# Authentication and headers
# ---------------------------------------------------------------------------------------------


def _templated(
    make_canary: CanaryFactory, make_template: TemplateFactory, **provider: Any
) -> MetricQuery:
    template = make_template(
        "latency",
        'sum(rate(x{app="{{ target }}"}[{{ interval }}]))',
        provider={"type": "prometheus", "address": PROM, **provider},
    )
    canary = make_canary([{"name": "latency", "templateRef": {"name": "latency"}}])
    [query] = plan_queries(
        canary, {("test", "latency"): template}, provider="istio", default_server="http://x"
    )
    return query


@respx.mock
async def test_a_redirect_elsewhere_never_carries_the_templates_headers(
    sleeps: Sleeps, make_canary: CanaryFactory, make_template: TemplateFactory
) -> None:
    # httpx drops Authorization on a redirect to another origin, not X-Scope-OrgID or an API key
    query = _templated(make_canary, make_template, headers={"X-Api-Key": "k-123"})
    respx.get(QUERY_URL).mock(
        return_value=httpx.Response(302, headers={"Location": "http://elsewhere.test/q"})
    )
    elsewhere = respx.get("http://elsewhere.test/q").mock(return_value=httpx.Response(200))
    async with open_prometheus(sleep=sleeps) as source:
        answer = failure(await fetch_one(source, query), FailureKind.REJECTED)
    assert f"redirected from {PROM} to http://elsewhere.test, another origin" in answer.message
    assert "k-123" not in answer.message
    assert not elsewhere.called


@respx.mock
async def test_a_redirect_on_the_same_origin_is_followed(
    sleeps: Sleeps, make_canary: CanaryFactory, make_template: TemplateFactory
) -> None:
    query = _templated(make_canary, make_template, headers={"X-Api-Key": "k-123"})
    respx.get(QUERY_URL).mock(
        return_value=httpx.Response(307, headers={"Location": f"{PROM}/prom/api/v1/query"})
    )
    final = respx.get(f"{PROM}/prom/api/v1/query").mock(
        return_value=httpx.Response(200, json=one(7))
    )
    async with open_prometheus(sleep=sleeps) as source:
        assert await fetch_one(source, query) == 7.0
    assert final.calls.last.request.headers["x-api-key"] == "k-123"


@respx.mock
async def test_bearer_token_and_custom_headers(
    sleeps: Sleeps, make_canary: CanaryFactory, make_template: TemplateFactory
) -> None:
    query = _templated(
        make_canary,
        make_template,
        secretRef={"name": "prom-auth"},
        headers={"X-Scope-OrgID": "tenant-a", "Accept": ["application/json", "text/plain"]},
    )
    asked: list[str] = []

    def credentials(ref: str) -> dict[str, str]:
        asked.append(ref)
        return {"token": "t0k3n"}

    route = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=one(5)))
    async with open_prometheus(sleep=sleeps, credentials=credentials) as source:
        assert await fetch_one(source, query) == 5.0
    headers = route.calls[0].request.headers
    assert headers["authorization"] == "Bearer t0k3n"
    assert headers["x-scope-orgid"] == "tenant-a"
    assert headers["accept"] == "application/json, text/plain"
    assert asked == ["test/prom-auth"]


@respx.mock
async def test_basic_auth_from_an_async_credentials_reader(
    sleeps: Sleeps, make_canary: CanaryFactory, make_template: TemplateFactory
) -> None:
    query = _templated(
        make_canary,
        make_template,
        secretRef={"name": "prom-auth"},
        headers={"Authorization": "Bearer from-template"},
    )

    async def credentials(ref: str) -> dict[str, str]:
        return {"username": "flagger", "password": "p@ss:word"}

    route = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=one(5)))
    async with open_prometheus(sleep=sleeps, credentials=credentials) as source:
        assert await fetch_one(source, query) == 5.0
    expected = "Basic " + base64.b64encode(b"flagger:p@ss:word").decode()
    assert route.calls[0].request.headers.get_list("authorization") == [expected]


@respx.mock
async def test_template_headers_alone_are_sent_as_given(
    source: PrometheusSource, make_canary: CanaryFactory, make_template: TemplateFactory
) -> None:
    query = _templated(make_canary, make_template, headers={"Authorization": "Bearer static"})
    route = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=one(5)))
    assert await fetch_one(source, query) == 5.0
    assert route.calls[0].request.headers["authorization"] == "Bearer static"


@pytest.mark.parametrize(
    ("secret", "kind", "text"),
    [
        (None, FailureKind.TRANSPORT, "credentials Secret test/prom-auth not found"),
        (
            {"username": "only"},
            FailureKind.REJECTED,
            "must hold 'token' or 'username' and 'password' (keys found: username)",
        ),
    ],
)
async def test_missing_or_incomplete_credentials(
    sleeps: Sleeps,
    make_canary: CanaryFactory,
    make_template: TemplateFactory,
    secret: dict[str, str] | None,
    kind: FailureKind,
    text: str,
) -> None:
    query = _templated(make_canary, make_template, secretRef={"name": "prom-auth"})
    with respx.mock(assert_all_called=False) as mock:
        route = mock.get(QUERY_URL)
        async with open_prometheus(sleep=sleeps, credentials=lambda ref: secret) as source:
            answer = failure(await fetch_one(source, query), kind)
    assert text in answer.message
    assert route.call_count == 0


async def test_the_secret_read_and_the_query_share_one_timeout(
    sleeps: Sleeps, make_canary: CanaryFactory, make_template: TemplateFactory
) -> None:
    # A slow Secret read and a slow Prometheus, each within the timeout alone: together they
    # are not, and the query fails at its timeout rather than at twice it (found by a reviewer).
    query = _templated(make_canary, make_template, secretRef={"name": "prom-auth"})

    async def credentials(ref: str) -> dict[str, str]:
        await asyncio.sleep(0.3)
        return {"token": "t0k3n"}

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.3)
        return httpx.Response(200, json=one(7))

    loop = asyncio.get_running_loop()
    with respx.mock:
        respx.get(QUERY_URL).mock(side_effect=slow)
        async with open_prometheus(
            sleep=sleeps, credentials=credentials, timeout_seconds=0.4
        ) as source:
            started = loop.time()
            answer = failure(await fetch_one(source, query), FailureKind.TIMEOUT)
            waited = loop.time() - started
    assert "did not answer within 400ms" in answer.message
    assert waited < 0.55


async def test_a_credentials_secret_that_never_arrives_fails_the_query_within_its_timeout(
    sleeps: Sleeps, make_canary: CanaryFactory, make_template: TemplateFactory
) -> None:
    # A slow API server must not hold the query (and the canaries fetched with it) for the
    # Kubernetes client's 30 s: the Secret read is bounded like the query.
    query = _templated(make_canary, make_template, secretRef={"name": "prom-auth"})

    async def credentials(ref: str) -> dict[str, str]:
        await asyncio.Event().wait()  # the API server never answers
        raise AssertionError("unreachable")

    loop = asyncio.get_running_loop()
    with respx.mock(assert_all_called=False) as mock:
        route = mock.get(QUERY_URL)
        async with open_prometheus(
            sleep=sleeps, credentials=credentials, timeout_seconds=0.2
        ) as source:
            started = loop.time()
            found = await asyncio.wait_for(fetch_one(source, query), 5)  # fails, not hangs
            answer = failure(found, FailureKind.TRANSPORT)
            waited = loop.time() - started
    assert "reading credentials Secret test/prom-auth: no answer within 0.2s" in answer.message
    assert waited < 2 and route.call_count == 0


async def test_a_secret_without_a_credentials_reader(
    source: PrometheusSource, make_canary: CanaryFactory, make_template: TemplateFactory
) -> None:
    query = _templated(make_canary, make_template, secretRef={"name": "prom-auth"})
    answer = failure(await fetch_one(source, query), FailureKind.TRANSPORT)
    assert "no credentials source is configured" in answer.message


# ---------------------------------------------------------------------------------------------
# TLS: CA bundle, CA from the Secret, insecureSkipVerify
# ---------------------------------------------------------------------------------------------


class _RecordingClient(httpx.AsyncClient):
    made: ClassVar[list[Any]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        type(self).made.append(kwargs.get("verify"))
        super().__init__(*args, **kwargs)


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    made: list[Any] = []
    monkeypatch.setattr(_RecordingClient, "made", made)
    monkeypatch.setattr(prometheus_module.httpx, "AsyncClient", _RecordingClient)
    return made


def _subjects(context: ssl.SSLContext) -> list[str]:
    names = []
    for cert in context.get_ca_certs():
        fields = dict(entry[0] for entry in cert["subject"])
        names.append(str(fields.get("commonName", fields)))
    return names


@respx.mock
async def test_tls_client_per_server_option(
    clients: list[Any],
    sleeps: Sleeps,
    make_canary: CanaryFactory,
    make_template: TemplateFactory,
    tmp_path: Path,
) -> None:
    respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=one(1)))
    insecure = _templated(make_canary, make_template, insecureSkipVerify=True)
    with_ca = _templated(make_canary, make_template, secretRef={"name": "prom-ca"})
    secrets = {"test/prom-ca": {"token": "t", "ca.crt": TEST_CA_PEM}}
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(TEST_CA_PEM.encode())
    async with open_prometheus(
        sleep=sleeps, credentials=secrets.get, ca_bundle=str(bundle)
    ) as source:
        answers = await source.fetch([raw("a"), insecure, with_ca, raw("b")])
    assert answers == [1.0, 1.0, 1.0, 1.0]
    assert len(clients) == 3  # default (bundle), insecure, the Secret's CA: one client each
    by_kind = {"insecure": [v for v in clients if v is False]}
    contexts = [v for v in clients if isinstance(v, ssl.SSLContext)]
    assert len(by_kind["insecure"]) == 1 and len(contexts) == 2
    for context in contexts:
        assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
        assert _subjects(context) == ["canary-engine test CA"]  # only the given CA is trusted


@respx.mock
async def test_without_options_the_system_store_is_used(
    clients: list[Any], source: PrometheusSource
) -> None:
    respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=one(1)))
    assert await fetch_one(source, raw()) == 1.0
    [verify] = clients
    assert isinstance(verify, ssl.SSLContext) and verify.verify_mode is ssl.CERT_REQUIRED
    assert "canary-engine test CA" not in _subjects(verify)


async def test_a_bad_ca_in_the_secret_is_reported(
    sleeps: Sleeps, make_canary: CanaryFactory, make_template: TemplateFactory
) -> None:
    query = _templated(make_canary, make_template, secretRef={"name": "prom-ca"})
    secrets = {"test/prom-ca": {"token": "t", "ca.crt": "not a certificate"}}
    async with open_prometheus(sleep=sleeps, credentials=secrets.get) as source:
        answer = failure(await fetch_one(source, query), FailureKind.TRANSPORT)
    assert answer.message.startswith("cannot load the CA certificate(s) in the credentials Secret")


@pytest.fixture
def tls_prometheus() -> Iterator[str]:
    """A real HTTPS 'Prometheus' on 127.0.0.1 whose certificate the test CA signed."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(one(1)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving_https(Handler) as url:
        yield url


async def test_real_tls_ca_insecure_and_untrusted(tls_prometheus: str, sleeps: Sleeps) -> None:
    secrets = {"test/prom-ca": {"token": "t", "ca.crt": TEST_CA_PEM}}
    async with open_prometheus(sleep=sleeps, credentials=secrets.get) as source:
        trusted = raw(endpoint=Endpoint(server=tls_prometheus, secret="test/prom-ca"))
        insecure = raw(endpoint=Endpoint(server=tls_prometheus, insecure_skip_verify=True))
        untrusted = raw(endpoint=Endpoint(server=tls_prometheus))
        answers = await source.fetch([trusted, insecure, untrusted])
    assert answers[:2] == [1.0, 1.0]
    refused = failure(answers[2], FailureKind.TRANSPORT)
    assert "CERTIFICATE_VERIFY_FAILED" in refused.message
    assert sleeps.delays == []  # an untrusted certificate is not retried


# ---------------------------------------------------------------------------------------------
# Grouping: one request per query shape for all canaries
# ---------------------------------------------------------------------------------------------

ISTIO_LABELS = ("destination_workload_namespace", "destination_workload")


def _istio_fleet(make_canary: CanaryFactory, names: list[tuple[str, str]]) -> list[list[Check]]:
    return [
        plan_checks(
            make_canary([SUCCESS, DURATION], name=name, namespace=namespace),
            {},
            provider="istio",
            default_server=PROM,
        )
        for namespace, name in names
    ]


def _istio_answer(values: dict[tuple[str, str], tuple[float, float]]) -> Callable[..., Any]:
    """A fake Prometheus answering grouped istio queries from per-workload (rate, p99)."""

    def answer(request: httpx.Request) -> httpx.Response:
        expr = query_of(request)
        index = 1 if expr.lstrip().startswith("histogram_quantile") else 0
        if "sum by (" in expr or "by (le, " in expr:
            series = [
                ({ISTIO_LABELS[0]: ns, ISTIO_LABELS[1]: wl}, v[index])
                for (ns, wl), v in values.items()
            ]
            return httpx.Response(200, json=vector(*series))
        for (ns, wl), v in values.items():  # a per-canary query
            if f'destination_workload_namespace="{ns}"' in expr and f'=~"{wl}"' in expr:
                return httpx.Response(200, json=one(v[index]))
        return httpx.Response(200, json=vector())

    return answer


@respx.mock
async def test_many_canaries_are_asked_in_one_request_per_shape(
    source: PrometheusSource, make_canary: CanaryFactory
) -> None:
    names = [("prod", "api"), ("prod", "web"), ("staging", "api"), ("staging", "missing")]
    values = {("prod", "api"): (99.5, 120.0), ("prod", "web"): (97.0, 80.0)}
    values |= {("staging", "api"): (100.0, 650.0), ("prod", "missing"): (1.0, 1.0)}
    route = respx.get(QUERY_URL).mock(side_effect=_istio_answer(values))
    batches = _istio_fleet(make_canary, names)
    results = await analyze_batches(source, batches)
    assert route.call_count == 2  # success rate + duration, for all four canaries
    sent = sorted(query_of(call.request) for call in route.calls)
    assert sent[0].startswith(" histogram_quantile( 0.99, sum( rate( istio_request_duration_")
    assert sent[0].endswith(f") by (le, {', '.join(ISTIO_LABELS)}) )")
    assert 'destination_workload_namespace=~"(?:prod|staging)"' in sent[0]
    assert 'destination_workload=~"(?:api|missing|web)"' in sent[0]
    assert sent[1].startswith(f" sum by ({', '.join(ISTIO_LABELS)}) ( rate( istio_requests_total{{")
    table = {
        (batch[0].query.canary, r.query.metric): (r.verdict, r.value)
        for batch in results
        for r in batch
    }
    assert table == {
        ("prod/api", "request-success-rate"): (Verdict.PASS, 99.5),
        ("prod/api", "request-duration"): (Verdict.PASS, 120.0),
        ("prod/web", "request-success-rate"): (Verdict.FAIL, 97.0),
        ("prod/web", "request-duration"): (Verdict.PASS, 80.0),
        ("staging/api", "request-success-rate"): (Verdict.PASS, 100.0),
        ("staging/api", "request-duration"): (Verdict.FAIL, 650.0),
        # in the selector's cross product but not in the vector: no data, not prod/missing's value
        ("staging/missing", "request-success-rate"): (Verdict.NO_DATA, None),
        ("staging/missing", "request-duration"): (Verdict.NO_DATA, None),
    }
    missing = results[3][0]
    assert missing.message == (
        "Halt advancement no values found for istio metric request-success-rate probably "
        "missing.staging is not receiving traffic: running query failed: no values found"
    )


@respx.mock
async def test_grouped_and_per_canary_answers_agree(
    sleeps: Sleeps, make_canary: CanaryFactory
) -> None:
    names = [("prod", "api"), ("prod", "web"), ("staging", "api")]
    values = {("prod", "api"): (99.5, 120.0), ("prod", "web"): (float("nan"), 80.0)}
    values[("staging", "api")] = (100.0, 650.0)
    route = respx.get(QUERY_URL).mock(side_effect=_istio_answer(values))
    flat = [c.query for batch in _istio_fleet(make_canary, names) for c in batch]
    async with open_prometheus(sleep=sleeps) as grouped:
        together = await grouped.fetch(flat)
    assert route.call_count == 2
    async with open_prometheus(sleep=sleeps, group=False) as single:
        alone = await single.fetch(flat)
    assert route.call_count == 2 + len(flat)  # Flagger's one query per check
    assert together == alone


@respx.mock
async def test_a_grouped_failure_fails_every_member(
    source: PrometheusSource, make_canary: CanaryFactory
) -> None:
    route = respx.get(QUERY_URL).mock(side_effect=httpx.ConnectError("refused"))
    flat = [c.query for b in _istio_fleet(make_canary, [("a", "x"), ("b", "y")]) for c in b]
    answers = await source.fetch(flat)
    assert all(failure(a, FailureKind.TRANSPORT) for a in answers)
    assert route.call_count == 2 * 3  # two grouped queries, three attempts each


@respx.mock
async def test_kubernetes_pods_are_grouped_by_their_target(
    source: PrometheusSource, make_canary: CanaryFactory
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        expr = query_of(request)
        assert f'"{GROUP_TARGET_LABEL}", "$1", "kubernetes_pod_name"' in expr
        assert 'kubernetes_pod_name=~"(?:api|web)-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"' in expr
        api, web = (0.3, 0.25) if "histogram_quantile" in expr else (99.5, 25.0)
        return httpx.Response(
            200,
            json=vector(
                ({"kubernetes_namespace": "prod", GROUP_TARGET_LABEL: "api"}, api),
                ({"kubernetes_namespace": "prod", GROUP_TARGET_LABEL: "web"}, web),
            ),
        )

    route = respx.get(QUERY_URL).mock(side_effect=answer)
    batches = [
        plan_checks(
            make_canary([SUCCESS, DURATION], name=name, namespace="prod", provider="kubernetes"),
            {},
            provider="kubernetes",
            default_server=PROM,
        )
        for name in ("api", "web")
    ]
    results = await analyze_batches(source, batches)
    assert route.call_count == 2
    assert [[(r.verdict, r.value) for r in batch] for batch in results] == [
        [(Verdict.PASS, 99.5), (Verdict.PASS, 300.0)],  # the duration is in seconds: x1000
        [(Verdict.FAIL, 25.0), (Verdict.PASS, 250.0)],
    ]


@respx.mock
async def test_what_is_not_grouped_runs_one_query_per_canary(
    source: PrometheusSource, make_canary: CanaryFactory, make_template: TemplateFactory
) -> None:
    template = make_template(
        "errors", 'sum(rate(errors{app="{{ target }}"}[{{ interval }}]))', namespace="prod"
    )
    metrics = [{"name": "errors", "templateRef": {"name": "errors"}, "thresholdRange": {"max": 1}}]
    queries = [
        q
        for name in ("api", "web", "my.app")
        for q in plan_queries(
            make_canary([*metrics, SUCCESS], name=name, namespace="prod"),
            {("prod", "errors"): template},
            provider="istio",
            default_server=PROM,
        )
    ]
    route = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=vector()))
    answers = await source.fetch(queries)
    sent = [query_of(call.request) for call in route.calls]
    # templates: one each; builtin success rate: api+web grouped, "my.app" (a regex) alone
    assert len(sent) == 3 + 1 + 1
    assert sum('app="' in s for s in sent) == 3
    # the dot is escaped for the regex matcher (README "Security and limits", PromQL)
    assert any('destination_workload=~"my\\\\.app"' in s and "sum(" in s for s in sent)
    assert all(failure(a, FailureKind.NO_DATA) for a in answers)


@respx.mock
async def test_a_single_canary_gets_flaggers_exact_query(
    source: PrometheusSource, make_canary: CanaryFactory
) -> None:
    route = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=one(99.9)))
    [batch] = _istio_fleet(make_canary, [("prod", "api")])
    await source.fetch([c.query for c in batch])
    assert [query_of(c.request) for c in route.calls] == [c.query.expr for c in batch]


@respx.mock
async def test_different_servers_or_intervals_are_separate_shapes(
    source: PrometheusSource, make_canary: CanaryFactory
) -> None:
    route = respx.route(path="/api/v1/query").mock(return_value=httpx.Response(200, json=vector()))
    other = dict(SUCCESS, interval="5m")
    queries = [
        *plan_queries(make_canary([SUCCESS], name="a"), {}, provider="istio", default_server=PROM),
        *plan_queries(make_canary([SUCCESS], name="b"), {}, provider="istio", default_server=PROM),
        *plan_queries(make_canary([other], name="c"), {}, provider="istio", default_server=PROM),
        *plan_queries(make_canary([other], name="d"), {}, provider="istio", default_server=PROM),
        *plan_queries(
            make_canary([SUCCESS], name="e"), {}, provider="istio", default_server="http://o:9090"
        ),
    ]
    await source.fetch(queries)
    sent = sorted((str(c.request.url.host), query_of(c.request)) for c in route.calls)
    assert len(sent) == 3
    assert [host for host, _ in sent] == ["o", "prom.test", "prom.test"]
    assert "[1m]" in sent[1][1] and "[5m]" in sent[2][1]
