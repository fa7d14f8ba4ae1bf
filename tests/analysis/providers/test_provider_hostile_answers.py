"""Hostile answers through the metric sources (``open_metric_sources``), as the controller asks:
no credential survives into a failure, however the server quotes it, and nothing that is not a
number (or not JSON) passes as one."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import respx

from analysis import CheckKind, Endpoint, MetricQuery, QueryFailure, open_metric_sources
from analysis._types import FailureKind
from tests.analysis.providers.providers_testkit import NOW, fetch_one

SIGNOZ = "http://signoz.test:3301"
CHRONOSPHERE = "https://tenant.chronosphere.test"
API_KEY = "SIGNOZKEY-abcdefghijklmnopqrstuvwxyz0123456789"
#: Quoted by repr inside a text holding both quote characters, this reads it\'s-...
PASSWORD = "it's-my-Passw0rd-2024"


def _query(provider: str, server: str, secret: str | None) -> MetricQuery:
    return MetricQuery(
        canary="test/podinfo",
        metric="errors",
        kind=CheckKind.TEMPLATE,
        expr="sum(rate(errors[1m]))" if provider == "chronosphere" else "{}",
        endpoint=Endpoint(provider_type=provider, server=server, secret=secret),
        template=f"test/{provider}",
    )


async def _signoz(answer: httpx.Response) -> float | QueryFailure:
    respx.post(f"{SIGNOZ}/api/v5/query_range").mock(return_value=answer)
    return await fetch_one(
        _query("signoz", SIGNOZ, "test/signoz"), {"test/signoz": {"apiKey": API_KEY}}
    )


async def _chronosphere(answer: httpx.Response) -> float | QueryFailure:
    respx.get(f"{CHRONOSPHERE}/data/metrics/api/v1/query").mock(return_value=answer)
    credentials = {"test/chrono": {"username": "alice", "password": PASSWORD}}
    return await fetch_one(_query("chronosphere", CHRONOSPHERE, "test/chrono"), credentials)


def _no_piece_of(secret: str, message: str) -> None:
    pieces = {secret[i : i + 6] for i in range(len(secret) - 5)}
    assert not [p for p in pieces if p in message], message


@respx.mock
@pytest.mark.parametrize("padding", [250, 262, 290, 296])
async def test_a_secret_cut_by_the_body_limit_is_masked_whole(padding: int) -> None:
    # the body is cut to length before the message is redacted: the secret's head, left just
    # before the cut, must not survive it
    answer = await _signoz(httpx.Response(401, text="x" * padding + API_KEY))
    assert isinstance(answer, QueryFailure) and "HTTP 401" in answer.message
    _no_piece_of(API_KEY, answer.message)


@respx.mock
async def test_a_secret_quoted_with_escaped_quotes_is_masked() -> None:
    body = f'login "failed" for alice, password {PASSWORD}'  # both quotes: repr escapes '
    answer = await _chronosphere(httpx.Response(200, text=body))
    assert isinstance(answer, QueryFailure) and "not JSON" in answer.message
    _no_piece_of(PASSWORD, answer.message)


def _prometheus_vector(value: Any) -> dict[str, Any]:
    sample = {"metric": {}, "value": [1_800_000_000, value]}
    return {"status": "success", "data": {"resultType": "vector", "result": [sample]}}


def _signoz_value(value: Any) -> dict[str, Any]:
    series = [{"labels": {}, "values": [{"timestamp": 1_800_000_000_000, "value": value}]}]
    return {
        "status": "success",
        "data": {"data": {"results": [{"aggregations": [{"series": series}]}]}},
    }


@respx.mock
@pytest.mark.parametrize("text", ["1_000", "١٠٠", " 5 ", "0x10", "5\n"])
async def test_a_string_python_reads_as_a_number_but_prometheus_does_not_is_refused(
    text: str,
) -> None:
    answer = await _chronosphere(httpx.Response(200, json=_prometheus_vector(text)))
    assert isinstance(answer, QueryFailure), answer
    assert answer.kind is FailureKind.REJECTED and "not a number" in answer.message


@respx.mock
@pytest.mark.parametrize(("text", "value"), [("12.5", 12.5), ("-3e2", -300.0), ("1e+06", 1e6)])
async def test_numbers_as_prometheus_writes_them_are_read(text: str, value: float) -> None:
    assert await _chronosphere(httpx.Response(200, json=_prometheus_vector(text))) == value


@respx.mock
@pytest.mark.parametrize(
    "body",
    ["[" * 100_000 + "]" * 100_000, '{"status": "success", "data": ' + "1" * 5000 + "}"],
    ids=["nested 100,000 deep", "a 5,000-digit integer"],
)
async def test_json_python_cannot_read_is_a_clear_rejection(body: str) -> None:
    answer = await _signoz(httpx.Response(200, text=body))
    assert isinstance(answer, QueryFailure), answer
    assert answer.kind is FailureKind.REJECTED
    assert answer.message.startswith("signoz") and "not usable JSON" in answer.message


async def _ping(query: MetricQuery) -> str:
    async with open_metric_sources(
        sleep=asyncio.sleep, now=lambda: NOW, credentials=lambda _ref: None
    ) as live:
        return await live.check_providers([query])


@respx.mock
async def test_a_ping_reads_the_status_not_the_body() -> None:
    # SkyWalking's ping takes 405 as online (older OAPs), and cloud providers' pings 400: a body
    # that merely says so is not that status
    respx.get("http://oap.test:12800/internal/l7check").mock(
        return_value=httpx.Response(404, text="no such route (HTTP 405)")
    )
    query = _query("skywalking", "http://oap.test:12800", None)
    reason = await _ping(query)
    assert "HTTP 404" in reason


@respx.mock
async def test_a_ping_answered_405_is_online() -> None:
    respx.get("http://oap.test:12800/internal/l7check").mock(return_value=httpx.Response(405))
    query = _query("skywalking", "http://oap.test:12800", None)
    assert await _ping(query) == ""


@respx.mock
async def test_a_health_check_answered_204_is_not_online_as_in_flagger() -> None:
    # Flagger's SkyWalking IsOnline takes only 200 (or 405); any other 2xx is not a healthy OAP
    respx.get("http://oap.test:12800/internal/l7check").mock(return_value=httpx.Response(204))
    query = _query("skywalking", "http://oap.test:12800", None)
    assert "HTTP 204 to its health check, not 200" in await _ping(query)


@respx.mock
@pytest.mark.parametrize(("status", "online"), [(200, True), (204, False)])
async def test_splunks_health_check_takes_only_200_as_flaggers(status: int, online: bool) -> None:
    respx.get("https://api.us1.signalfx.com/v2/metric").mock(
        return_value=httpx.Response(status, json={})
    )
    query = _query("splunk", "https://api.us1.signalfx.com", "test/splunk")
    async with open_metric_sources(
        sleep=asyncio.sleep,
        now=lambda: NOW,
        credentials=lambda _ref: {"sf_token_key": "sf-token-0123456789"},
    ) as live:
        reason = await live.check_providers([query])
    assert (reason == "") is online, reason
