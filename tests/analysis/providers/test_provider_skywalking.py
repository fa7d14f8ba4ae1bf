"""The SkyWalking provider (analysis.providers._skywalking) against respx routes.

Answers are shaped as Flagger's ``skywalking_test.go`` serves them and as SkyWalking's query
protocol documents ``readMetricsValues`` (``{"data": {alias: {"label": ..., "values":
{"values": [{"value": n}, ...]}}}}``, GraphQL ``errors`` for a bad query). The module's
``PROVIDER`` is called directly with a ``Call``; the last test runs it through
``MetricSources`` (with the provider added to the lookup for that test only) to check the
template is named and a credential header redacted in the failure a check reports.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pytest
import respx
from providers_testkit import fetch_one

from analysis import CheckKind, Endpoint, FailureKind, MetricQuery, QueryFailure
from analysis._errors import AmbiguousResult, NoValuesFound, ProviderUnavailable, QueryRejected
from analysis.providers._base import Call, Http, Window
from analysis.providers._skywalking import PROVIDER
from config import MetricTemplateProvider
from config._spec import SecretRef

NOW = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
ADDRESS = "http://skywalking-oap.istio-system.svc.cluster.local:12800"
GRAPHQL = f"{ADDRESS}/graphql"
HEALTH = f"{ADDRESS}/internal/l7check"
TOKEN = "Bearer sw-proxy-token-0123456789"
#: Flagger's test query (skywalking_test.go) and Argo Rollouts' documented one.
QUERY = (
    "query queryData($duration: Duration!) { service_apdex: readMetricsValues("
    'condition: { name: "service_apdex", entity: { scope: Service, serviceName: '
    '"agent::songs", normal: true } }, duration: $duration) { label values { values { value } '
    "} } }"
)


def _data(**aliases: list[Any]) -> dict[str, Any]:
    """``readMetricsValues`` answers: each alias' values (numbers, None or whole items)."""
    return {
        "data": {
            alias: {
                "label": None,
                "values": {"values": [v if isinstance(v, dict) else {"value": v} for v in values]},
            }
            for alias, values in aliases.items()
        }
    }


@pytest.fixture
async def http() -> AsyncIterator[Http]:
    async with httpx.AsyncClient() as client:
        yield Http(lambda insecure: client)


def _call(
    http: Http,
    expr: str = QUERY,
    *,
    window: float = 60.0,
    headers: Mapping[str, str] | None = None,
) -> Call:
    query = MetricQuery(
        canary="test/podinfo",
        metric="apdex",
        kind=CheckKind.TEMPLATE,
        expr=expr,
        endpoint=Endpoint(provider_type="skywalking", server=ADDRESS, headers=dict(headers or {})),
        template="test/apdex",
        window=window,
    )
    return Call(
        query=query,
        expr=expr,
        address=ADDRESS,
        credentials={},
        has_secret=False,
        now=NOW,
        http=http,
        sleep=asyncio.sleep,
    )


async def _value(call: Call) -> float:
    assert PROVIDER.value is not None
    return await PROVIDER.value(call)


# -- value --------------------------------------------------------------------------------------


@respx.mock
async def test_posts_the_graphql_query_over_the_interval_and_reads_the_first_value(
    http: Http,
) -> None:
    # Flagger's "ok" answer: the first value, 10000, is the one read.
    route = respx.post(GRAPHQL).mock(
        return_value=httpx.Response(
            200,
            json={
                "data": {
                    "service_apdex0": {"values": {"values": [{"value": 10000}, {"value": 10010}]}}
                }
            },
        )
    )

    assert await _value(_call(http, window=300.0, headers={"X-Tenant": "a"})) == 10000.0

    request = route.calls.last.request
    assert json.loads(request.content) == {
        "query": QUERY,
        "variables": {
            "duration": {"start": "2027-01-15 0755", "end": "2027-01-15 0800", "step": "MINUTE"}
        },
    }
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json; charset=utf-8"
    assert request.headers["X-Tenant"] == "a"


@respx.mock
async def test_null_and_empty_values_are_skipped(http: Http) -> None:
    respx.post(GRAPHQL).mock(
        return_value=httpx.Response(
            200,
            json=_data(service_apdex=[None, {"value": 0, "isEmptyValue": True}, 9950, 9990]),
        )
    )
    assert await _value(_call(http)) == 9950.0


@pytest.mark.parametrize(
    "body",
    [
        {"series": [{"pointlist": []}]},  # Flagger's "no values" answer
        {"data": None},
        {"data": {}},
        {"data": {"service_apdex": None}},
        {"data": {"service_apdex": {"label": None, "values": None}}},
        {"data": {"service_apdex": {"values": {"values": None}}}},
        _data(service_apdex=[]),
        _data(service_apdex=[None, None]),
        _data(service_apdex=[{"value": 0, "isEmptyValue": True}]),
    ],
)
@respx.mock
async def test_no_value_at_all_is_no_data(http: Http, body: Any) -> None:
    respx.post(GRAPHQL).mock(return_value=httpx.Response(200, json=body))
    with pytest.raises(NoValuesFound, match=r"^skywalking: no values found"):
        await _value(_call(http))


@respx.mock
async def test_several_aliases_holding_values_are_ambiguous(http: Http) -> None:
    respx.post(GRAPHQL).mock(
        return_value=httpx.Response(
            200, json=_data(service_apdex=[9900], service_sla=[10000], empty=[None])
        )
    )
    with pytest.raises(AmbiguousResult, match=r'alias="service_apdex"\}, \{alias="service_sla"'):
        await _value(_call(http))


@respx.mock
async def test_one_alias_holding_values_among_empty_ones_is_read(http: Http) -> None:
    respx.post(GRAPHQL).mock(
        return_value=httpx.Response(200, json=_data(empty=[None], service_apdex=[9900]))
    )
    assert await _value(_call(http)) == 9900.0


# -- failures -----------------------------------------------------------------------------------


@respx.mock
async def test_graphql_errors_are_a_rejected_query(http: Http) -> None:
    respx.post(GRAPHQL).mock(
        return_value=httpx.Response(
            200,
            json={
                "errors": [
                    {"message": "Validation error of type FieldUndefined: readMetricsValue"}
                ],
                "data": None,
            },
        )
    )
    with pytest.raises(QueryRejected, match="skywalking rejected the query: Validation error"):
        await _value(_call(http))


@respx.mock
async def test_http_errors_are_reported_without_the_headers(http: Http) -> None:
    route = respx.post(GRAPHQL).mock(return_value=httpx.Response(503, text="OAP is starting"))
    with pytest.raises(ProviderUnavailable, match="answered HTTP 503: OAP is starting") as down:
        await _value(_call(http, headers={"Authorization": TOKEN}))
    route.mock(return_value=httpx.Response(404, text="not found"))
    with pytest.raises(QueryRejected, match=r"HTTP 404\): not found") as rejected:
        await _value(_call(http, headers={"Authorization": TOKEN}))
    for caught in (down, rejected):
        assert TOKEN not in str(caught.value)


@pytest.mark.parametrize(
    ("answer", "wording"),
    [
        (httpx.Response(200, text="<html>OAP</html>"), "not JSON"),
        (httpx.Response(200, json=[1]), "not a query result"),
        (httpx.Response(200, json={"data": [1]}), "malformed data field"),
        (httpx.Response(200, json={"data": {"service_apdex": 9900}}), "not metrics values"),
        (httpx.Response(200, json={"data": {"x": {"values": [1]}}}), "malformed values"),
        (httpx.Response(200, json={"data": {"x": {"values": {"values": 1}}}}), "malformed values"),
        (httpx.Response(200, json=_data(x=["high"])), "a value that is not a number"),
        (httpx.Response(200, json={"data": {"x": {"values": {"values": [3]}}}}), "malformed value"),
    ],
)
@respx.mock
async def test_a_malformed_answer_is_rejected(
    http: Http, answer: httpx.Response, wording: str
) -> None:
    respx.post(GRAPHQL).mock(return_value=answer)
    with pytest.raises(QueryRejected, match=wording):
        await _value(_call(http))


def test_problems_name_a_missing_or_invalid_address() -> None:
    def problems(**fields: Any) -> list[tuple[str, str]]:
        return PROVIDER.problems(
            MetricTemplateProvider.model_construct(type="skywalking", **fields)
        )

    assert problems(address=None, secret_ref=None) == [
        ("spec.provider.address", "required for skywalking: the SkyWalking OAP GraphQL API URL")
    ]
    assert problems(address="skywalking-oap:12800", secret_ref=None) == [
        (
            "spec.provider.address",
            "'skywalking-oap:12800' is not a valid URL: expected http:// or https://",
        )
    ]
    assert problems(address=ADDRESS, secret_ref=None) == []
    # Flagger's provider reads no credentials: a secretRef needs no key.
    assert problems(address=ADDRESS, secret_ref=SecretRef(name="sw")) == []
    assert PROVIDER.secret_keys == ()


# -- series -------------------------------------------------------------------------------------


async def _series(call: Call, window: Window) -> Any:
    assert PROVIDER.series is not None
    return await PROVIDER.series(call, window)


@respx.mock
async def test_series_places_one_value_per_minute_bucket(http: Http) -> None:
    route = respx.post(GRAPHQL).mock(
        return_value=httpx.Response(200, json=_data(service_apdex=[9000, 9100, None, 9300]))
    )
    # 07:57:30 .. 08:00:00: buckets 07:57, 07:58, 07:59, 08:00; 07:57 starts before the window.
    window = Window(start=NOW - 150, end=NOW, step=60)

    series = await _series(_call(http), window)

    duration = json.loads(route.calls.last.request.content)["variables"]["duration"]
    assert duration == {"start": "2027-01-15 0757", "end": "2027-01-15 0800", "step": "MINUTE"}
    assert series.times.tolist() == [NOW - 120, NOW - 60, NOW]
    assert series.values[0] == 9100 and series.values[2] == 9300
    assert math.isnan(series.values[1])


MIDNIGHT = NOW - 8 * 3600  # 2027-01-15 00:00 UTC


@pytest.mark.parametrize(
    ("step", "span", "start", "end", "name", "answer", "times", "values"),
    [
        # 06:00 .. 08:00: buckets 06:00, 07:00, 08:00, all inside the window.
        (
            3600,
            7200,
            "2027-01-15 06",
            "2027-01-15 08",
            "HOUR",
            [1, 2, 3],
            [NOW - 7200, NOW - 3600, NOW],
            [1, 2, 3],
        ),
        # 01-12 08:00 .. 01-15 08:00: the 01-12 bucket starts at midnight, before the window.
        (
            86400,
            3 * 86400,
            "2027-01-12",
            "2027-01-15",
            "DAY",
            [1, 2, 3, 4],
            [MIDNIGHT - 2 * 86400, MIDNIGHT - 86400, MIDNIGHT],
            [2, 3, 4],
        ),
    ],
)
@respx.mock
async def test_series_of_coarse_steps_ask_for_hours_or_days(
    http: Http,
    step: float,
    span: float,
    start: str,
    end: str,
    name: str,
    answer: list[float],
    times: list[float],
    values: list[float],
) -> None:
    route = respx.post(GRAPHQL).mock(
        return_value=httpx.Response(200, json=_data(service_apdex=answer))
    )
    series = await _series(_call(http), Window(start=NOW - span, end=NOW, step=step))

    duration = json.loads(route.calls.last.request.content)["variables"]["duration"]
    assert duration == {"start": start, "end": end, "step": name}
    assert series.times.tolist() == times
    assert series.values.tolist() == values


@respx.mock
async def test_series_without_values_is_empty_and_several_aliases_ambiguous(http: Http) -> None:
    route = respx.post(GRAPHQL).mock(return_value=httpx.Response(200, json=_data(x=[None])))
    assert len(await _series(_call(http), Window(NOW - 60, NOW, 60))) == 0
    route.mock(return_value=httpx.Response(200, json=_data(x=[1], y=[2])))
    with pytest.raises(AmbiguousResult):
        await _series(_call(http), Window(NOW - 60, NOW, 60))


# -- ping ---------------------------------------------------------------------------------------


async def _ping(call: Call) -> None:
    assert PROVIDER.ping is not None
    await PROVIDER.ping(call)


@pytest.mark.parametrize("status", [200, 405])
@respx.mock
async def test_ping_takes_ok_or_method_not_allowed_as_online(http: Http, status: int) -> None:
    route = respx.get(HEALTH).mock(return_value=httpx.Response(status, text="healthy"))
    await _ping(_call(http))
    assert route.called


@pytest.mark.parametrize(("status", "error"), [(404, QueryRejected), (503, ProviderUnavailable)])
@respx.mock
async def test_ping_fails_on_other_statuses(
    http: Http, status: int, error: type[Exception]
) -> None:
    respx.get(HEALTH).mock(return_value=httpx.Response(status, text="down"))
    with pytest.raises(error, match=f"HTTP {status}"):
        await _ping(_call(http))


# -- through MetricSources: the template named, the credential header redacted ------------------


@respx.mock
async def test_a_check_failure_names_the_template_and_hides_the_header() -> None:
    respx.post(GRAPHQL).mock(
        return_value=httpx.Response(401, text=f"Authorization {TOKEN} refused")
    )
    query = MetricQuery(
        canary="test/podinfo",
        metric="apdex",
        kind=CheckKind.TEMPLATE,
        expr=QUERY,
        endpoint=Endpoint(
            provider_type="skywalking", server=ADDRESS, headers={"Authorization": TOKEN}
        ),
        template="test/apdex",
    )
    answer = await fetch_one(query, {})

    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.REJECTED
    assert answer.message.startswith("skywalking MetricTemplate apdex.test: ")
    assert "HTTP 401" in answer.message
    assert "sw-proxy-token-0123456789" not in answer.message
