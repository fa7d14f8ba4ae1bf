"""New Relic as Flagger's ``newrelic_test.go`` checks it: every NRQL query Flagger sends, the
availability check too, ends ``SINCE <interval seconds> seconds ago`` (``newInsightsRequest``)."""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
import pytest
import respx

from analysis import MetricQuery, open_metric_sources
from tests.analysis.providers.providers_testkit import NOW, SECRETS, docs_query, fetch_one

NEWRELIC = "https://insights-api.newrelic.com/v1/accounts/1234567/query"


async def _check(query: MetricQuery) -> str:
    async with open_metric_sources(
        sleep=asyncio.sleep, now=lambda: NOW, credentials=SECRETS.get
    ) as live:
        return await live.check_providers([query])


@respx.mock
@pytest.mark.parametrize(("code", "online"), [(200, True), (401, False), (204, False)])
async def test_is_online_sends_select_from_metric_since_the_interval(
    code: int, online: bool
) -> None:
    # TestNewReelicProvider_IsOnline: interval 1m, nrql "SELECT * FROM Metric SINCE 60 seconds
    # ago"; its server answers the status alone (no body): only HTTP 200 is online
    route = respx.get(NEWRELIC).mock(return_value=httpx.Response(code))
    query = docs_query("error rate")
    assert query.window == 60
    reason = await _check(query)
    assert (reason == "") is online, reason
    request = route.calls.last.request
    assert request.url.params["nrql"] == "SELECT * FROM Metric SINCE 60 seconds ago"
    assert request.headers["X-Query-Key"] == "NRIQ-querykey42"


@respx.mock
async def test_the_interval_is_whole_seconds_truncated_as_go_int64() -> None:
    # Flagger: fromDelta = int64(time.ParseDuration(interval).Seconds()), formatted with %d
    route = respx.get(NEWRELIC).mock(
        return_value=httpx.Response(200, json={"results": [{"result": 1.11111}]})
    )
    query = dataclasses.replace(docs_query("error rate"), window=90.9)
    assert await _check(query) == ""
    assert route.calls.last.request.url.params["nrql"] == (
        "SELECT * FROM Metric SINCE 90 seconds ago"
    )
    assert await fetch_one(query) == 1.11111
    assert route.calls.last.request.url.params["nrql"] == f"{query.expr} SINCE 90 seconds ago"
