"""The Initializing tick's provider check says what Flagger's ``checkMetricProviderAvailability``
says (the Warning event is ``Error checking metric providers: <this>``): the builtin metrics'
Prometheus, then each template's provider, each asked once; a missing MetricTemplate is the
reason itself, not "all the metrics providers are available!" followed by failed checks."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import respx

from analysis import open_metric_sources, plan_queries
from config import parse_canary
from tests.analysis.conftest import PROM, TemplateFactory, canary_body

OTHER = "http://other.test:9090"


def canary(*metrics: dict[str, Any]) -> Any:
    return parse_canary(canary_body(list(metrics)))


SUCCESS = {"name": "request-success-rate", "thresholdRange": {"min": 99}}
ERRORS = {"name": "errors", "templateRef": {"name": "errors"}, "thresholdRange": {"max": 1}}
INLINE = {"name": "inline", "query": "sum(up)", "thresholdRange": {"max": 1}}
ONLINE = {
    "status": "success",
    "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "1"]}]},
}


def template(make_template: TemplateFactory, address: str) -> Any:
    provider = {"type": "prometheus", "address": address}
    return make_template("errors", "sum(x)", provider=provider)


async def check(c: Any, templates: dict[tuple[str, str], Any]) -> str:
    queries = plan_queries(c, templates, provider="istio", default_server=PROM)
    async with open_metric_sources(sleep=asyncio.sleep, now=lambda: 0.0) as sources:
        return await sources.check_providers(queries)


@respx.mock
async def test_all_available_asks_each_provider_once(make_template: TemplateFactory) -> None:
    main = respx.get(f"{PROM}/api/v1/query").mock(return_value=httpx.Response(200, json=ONLINE))
    other = respx.get(f"{OTHER}/api/v1/query").mock(return_value=httpx.Response(200, json=ONLINE))
    duration = {"name": "request-duration", "thresholdRange": {"max": 500}}
    reason = await check(
        canary(SUCCESS, duration, ERRORS), {("test", "errors"): template(make_template, OTHER)}
    )
    assert reason == ""
    assert main.call_count == 1 and other.call_count == 1


@respx.mock
async def test_the_builtin_metrics_prometheus_down_in_flaggers_words() -> None:
    respx.get(f"{PROM}/api/v1/query").mock(return_value=httpx.Response(404, text="nope"))
    reason = await check(canary(SUCCESS), {})
    assert reason == (
        "prometheus not avaiable: running query failed: prometheus rejected the query "
        f"(HTTP 404): nope (prometheus {PROM})"
    )


@respx.mock
async def test_a_templates_provider_down_names_the_template(
    make_template: TemplateFactory,
) -> None:
    respx.get(f"{PROM}/api/v1/query").mock(return_value=httpx.Response(200, json=ONLINE))
    respx.get(f"{OTHER}/api/v1/query").mock(
        return_value=httpx.Response(
            200, json={"status": "success", "data": {"resultType": "vector", "result": []}}
        )
    )
    reason = await check(
        canary(SUCCESS, ERRORS), {("test", "errors"): template(make_template, OTHER)}
    )
    assert reason.startswith("prometheus in metric template errors.test not avaiable: ")


@respx.mock
async def test_a_missing_template_is_the_reason() -> None:
    respx.get(f"{PROM}/api/v1/query").mock(return_value=httpx.Response(200, json=ONLINE))
    reason = await check(canary(SUCCESS, ERRORS), {})
    assert (
        reason == 'metric template errors.test error: metrictemplate.flagger.app "errors" not found'
    )


@respx.mock
async def test_an_inline_query_is_not_checked_as_in_flagger() -> None:
    route = respx.get(f"{PROM}/api/v1/query").mock(return_value=httpx.Response(500))
    assert await check(canary(INLINE), {}) == ""
    assert not route.called
