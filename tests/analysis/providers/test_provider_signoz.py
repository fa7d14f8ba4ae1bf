"""The SigNoz provider (analysis.providers._signoz) against respx routes.

Answers are shaped as Flagger's ``signoz_test.go`` serves them (``data.result[].series[]``,
values as strings) and as SigNoz documents its v5 Query Range answer
(``data.data.results[].aggregations[].series[]``, values as numbers). The module's ``PROVIDER``
is called directly with a ``Call``; the last test runs it through ``MetricSources`` (with the
provider added to the lookup for that test only) to check the template is named and the API key
redacted in the failure a check reports.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pytest
import respx
from providers_testkit import fetch_one

from analysis import CheckKind, Endpoint, FailureKind, MetricQuery, QueryFailure
from analysis._errors import AmbiguousResult, NoValuesFound, ProviderUnavailable, QueryRejected
from analysis.providers._base import Call, Http, Window
from analysis.providers._signoz import PROVIDER
from config import MetricTemplateProvider
from config._spec import SecretRef

NOW = 1_800_000_000.0
ADDRESS = "http://signoz:3301"
URL = f"{ADDRESS}/api/v5/query_range"
API_KEY = "test-signoz-token-0123456789"
CREDENTIALS = {"apiKey": API_KEY}
#: Flagger's test query and answer (signoz_test.go).
QUERY = '{"requestType":"time_series"}'
FLAGGER_OK = {
    "data": {
        "result": [
            {
                "series": [
                    {
                        "labels": {},
                        "labelString": "",
                        "values": [{"timestamp": 1742602572000, "value": "100"}],
                    }
                ],
                "queryName": "A",
            }
        ]
    }
}


def _v5(*series: list[tuple[float, Any]], labels: list[dict[str, str]] | None = None) -> Any:
    """A v5 time_series answer with one result whose one aggregation holds ``series``."""
    names = labels or [{} for _ in series]
    return {
        "status": "success",
        "data": {
            "type": "time_series",
            "data": {
                "results": [
                    {
                        "queryName": "A",
                        "aggregations": [
                            {
                                "index": 0,
                                "alias": "__result_0",
                                "meta": {},
                                "series": [
                                    {
                                        "labels": [
                                            {"key": {"name": k}, "value": v}
                                            for k, v in named.items()
                                        ],
                                        "values": [
                                            {"timestamp": int(t * 1000), "value": v}
                                            for t, v in points
                                        ],
                                    }
                                    for named, points in zip(names, series, strict=True)
                                ],
                            }
                        ],
                    }
                ]
            },
            "meta": {"rowsScanned": 0, "bytesScanned": 0, "durationMs": 1},
        },
    }


@pytest.fixture
async def http() -> AsyncIterator[Http]:
    async with httpx.AsyncClient() as client:
        yield Http(lambda insecure: client)


def _call(
    http: Http,
    expr: str = QUERY,
    *,
    address: str = ADDRESS,
    credentials: Mapping[str, str] = CREDENTIALS,
    has_secret: bool = True,
    headers: Mapping[str, str] | None = None,
) -> Call:
    query = MetricQuery(
        canary="test/podinfo",
        metric="signoz metric",
        kind=CheckKind.TEMPLATE,
        expr=expr,
        endpoint=Endpoint(
            provider_type="signoz",
            server=address,
            headers=dict(headers or {}),
            secret="test/signoz" if has_secret else None,
        ),
        template="test/signoz",
    )
    return Call(
        query=query,
        expr=expr,
        address=address,
        credentials=dict(credentials),
        has_secret=has_secret,
        now=NOW,
        http=http,
        sleep=asyncio.sleep,
    )


async def _value(call: Call) -> float:
    assert PROVIDER.value is not None
    return await PROVIDER.value(call)


# -- value --------------------------------------------------------------------------------------


@respx.mock
async def test_posts_the_query_unchanged_with_the_api_key_and_reads_the_value(http: Http) -> None:
    route = respx.post(URL).mock(return_value=httpx.Response(200, json=FLAGGER_OK))

    assert await _value(_call(http, headers={"X-Scope-OrgID": "tenant1"})) == 100.0

    request = route.calls.last.request
    assert request.content == QUERY.encode()
    assert request.headers["SIGNOZ-API-KEY"] == API_KEY
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Scope-OrgID"] == "tenant1"


@respx.mock
async def test_reads_the_last_value_of_the_v5_answer(http: Http) -> None:
    respx.post(URL).mock(
        return_value=httpx.Response(200, json=_v5([(NOW - 120, 99.1), (NOW - 60, 99.7)]))
    )
    assert await _value(_call(http)) == 99.7


@respx.mock
async def test_keeps_the_address_path_and_drops_its_query(http: Http) -> None:
    route = respx.post("https://signoz.example/signoz/api/v5/query_range").mock(
        return_value=httpx.Response(200, json=FLAGGER_OK)
    )
    await _value(_call(http, address="https://signoz.example/signoz/?tenant=x"))
    assert route.calls.last.request.url.query == b""


@respx.mock
async def test_without_secret_ref_no_api_key_is_sent(http: Http) -> None:
    route = respx.post(URL).mock(return_value=httpx.Response(200, json=FLAGGER_OK))
    await _value(_call(http, credentials={}, has_secret=False))
    assert "SIGNOZ-API-KEY" not in route.calls.last.request.headers


@respx.mock
async def test_the_secrets_api_key_wins_over_a_template_header(http: Http) -> None:
    route = respx.post(URL).mock(return_value=httpx.Response(200, json=FLAGGER_OK))
    await _value(_call(http, headers={"signoz-api-key": "other", "content-type": "text/plain"}))
    request = route.calls.last.request
    assert request.headers.get_list("SIGNOZ-API-KEY") == [API_KEY]
    assert request.headers.get_list("Content-Type") == ["application/json"]


@pytest.mark.parametrize(
    "body",
    [
        # Flagger's "no values result", "NaN result in series" and "empty series".
        {"data": {"result": []}},
        {
            "data": {
                "result": [
                    {
                        "series": [
                            {
                                "labels": {},
                                "labelString": "",
                                "values": [{"timestamp": 1714404069294, "value": "NaN"}],
                            }
                        ],
                        "queryName": "A",
                    }
                ]
            }
        },
        {"data": {"result": [{"series": [], "queryName": "A"}]}},
        {"data": {"result": [{"series": [{"labels": {}, "values": []}], "queryName": "A"}]}},
        {"data": {"result": None}},
        {"data": None},
        {},
        _v5(),
        _v5([]),
        _v5([(NOW - 60, 1.0), (NOW, "NaN")]),
        _v5([(NOW, None)]),
        {"status": "success", "data": {"type": "time_series", "data": {"results": []}}},
    ],
)
@respx.mock
async def test_no_result_no_series_no_point_or_nan_is_no_data(http: Http, body: Any) -> None:
    respx.post(URL).mock(return_value=httpx.Response(200, json=body))
    with pytest.raises(NoValuesFound, match=r"^signoz: no values found"):
        await _value(_call(http))


@pytest.mark.parametrize(
    "body",
    [
        # Flagger's "multiple series" and "multiple results".
        {
            "data": {
                "result": [
                    {
                        "series": [
                            {"labels": {"pod": "a"}, "values": [{"timestamp": 1, "value": "1"}]},
                            {"labels": {"pod": "b"}, "values": [{"timestamp": 1, "value": "2"}]},
                        ],
                        "queryName": "A",
                    }
                ]
            }
        },
        {
            "data": {
                "result": [
                    {"series": [{"values": [{"timestamp": 1, "value": "1"}]}], "queryName": "A"},
                    {"series": [{"values": [{"timestamp": 1, "value": "2"}]}], "queryName": "B"},
                ]
            }
        },
        _v5([(NOW, 1.0)], [(NOW, 2.0)], labels=[{"pod": "a"}, {"pod": "b"}]),
    ],
)
@respx.mock
async def test_several_results_or_series_are_ambiguous(http: Http, body: Any) -> None:
    respx.post(URL).mock(return_value=httpx.Response(200, json=body))
    with pytest.raises(AmbiguousResult, match="2 series where one value is expected"):
        await _value(_call(http))


@respx.mock
async def test_ambiguity_names_the_series_labels(http: Http) -> None:
    respx.post(URL).mock(
        return_value=httpx.Response(
            200, json=_v5([(NOW, 1.0)], [(NOW, 2.0)], labels=[{"pod": "a"}, {"pod": "b"}])
        )
    )
    with pytest.raises(AmbiguousResult, match=r'\{pod="a"\}, \{pod="b"\}'):
        await _value(_call(http))


# -- failures -----------------------------------------------------------------------------------


@respx.mock
async def test_a_server_error_is_unavailable_without_the_key(http: Http) -> None:
    respx.post(URL).mock(return_value=httpx.Response(502, text="bad gateway"))
    with pytest.raises(ProviderUnavailable, match="answered HTTP 502: bad gateway") as caught:
        await _value(_call(http))
    assert API_KEY not in str(caught.value)


@respx.mock
async def test_a_refused_key_is_rejected_without_the_key(http: Http) -> None:
    respx.post(URL).mock(
        return_value=httpx.Response(
            401, json={"status": "error", "error": {"code": "unauthorized", "message": "bad key"}}
        )
    )
    with pytest.raises(QueryRejected, match=r"HTTP 401.*check the credentials") as caught:
        await _value(_call(http))
    assert API_KEY not in str(caught.value)


@respx.mock
async def test_an_error_status_is_rejected_with_its_message(http: Http) -> None:
    respx.post(URL).mock(
        return_value=httpx.Response(
            200,
            json={
                "status": "error",
                "error": {"code": "invalid_input", "message": "unknown metric foo"},
            },
        )
    )
    with pytest.raises(QueryRejected, match="signoz rejected the query: unknown metric foo"):
        await _value(_call(http))


@pytest.mark.parametrize(
    ("answer", "wording"),
    [
        (httpx.Response(200, text="<html>login</html>"), "not JSON"),
        (httpx.Response(200, json=[1, 2]), "not a query result"),
        (httpx.Response(200, json={"data": [1]}), "malformed data field"),
        (httpx.Response(200, json={"data": {"result": {"a": 1}}}), "malformed result list"),
        (httpx.Response(200, json={"data": {"result": ["x"]}}), "malformed result"),
        (
            httpx.Response(
                200,
                json={"data": {"result": [{"series": [{"values": [{"value": "abc"}]}]}]}},
            ),
            "a value that is not a number",
        ),
        (
            httpx.Response(200, json=_v5([(NOW, {"v": 1})])),
            "a value that is not a number",
        ),
    ],
)
@respx.mock
async def test_a_malformed_answer_is_rejected(
    http: Http, answer: httpx.Response, wording: str
) -> None:
    respx.post(URL).mock(return_value=answer)
    with pytest.raises(QueryRejected, match=wording) as caught:
        await _value(_call(http))
    assert API_KEY not in str(caught.value)


@respx.mock
async def test_a_secret_without_api_key_fails_before_sending(http: Http) -> None:
    route = respx.post(URL).mock(return_value=httpx.Response(200, json=FLAGGER_OK))
    with pytest.raises(QueryRejected, match=r"signoz credentials does not contain apiKey"):
        await _value(_call(http, credentials={"token": "x"}))
    assert not route.called


def test_problems_name_a_missing_or_invalid_address() -> None:
    def problems(**fields: Any) -> list[tuple[str, str]]:
        return PROVIDER.problems(MetricTemplateProvider.model_construct(type="signoz", **fields))

    assert problems(address=None, secret_ref=None) == [
        ("spec.provider.address", "required for signoz: the SigNoz Query Range API URL")
    ]
    assert problems(address="signoz:3301", secret_ref=None) == [
        ("spec.provider.address", "'signoz:3301' is not a valid URL: expected http:// or https://")
    ]
    assert problems(address=ADDRESS, secret_ref=None) == []
    assert problems(address=ADDRESS, secret_ref=SecretRef(name="signoz")) == []
    assert PROVIDER.missing_keys({}) == ["apiKey"]
    assert PROVIDER.missing_keys(CREDENTIALS) == []


# -- series -------------------------------------------------------------------------------------

RANGE_QUERY = json.dumps(
    {
        "start": 1,
        "end": 2,
        "requestType": "scalar",
        "compositeQuery": {
            "queries": [
                {
                    "type": "builder_query",
                    "spec": {"name": "A", "signal": "metrics", "stepInterval": 300},
                },
                {"type": "builder_formula", "spec": {"name": "F1", "expression": "A * 100"}},
            ]
        },
    }
)


async def _series(call: Call, window: Window) -> Any:
    assert PROVIDER.series is not None
    return await PROVIDER.series(call, window)


@respx.mock
async def test_series_asks_for_the_window_at_the_step(http: Http) -> None:
    route = respx.post(URL).mock(
        return_value=httpx.Response(
            200, json=_v5([(NOW - 240, 5.0), (NOW - 120, 1.0), (NOW - 60, "NaN"), (NOW, 2.0)])
        )
    )
    window = Window(start=NOW - 120.5, end=NOW, step=60.0)

    series = await _series(_call(http, RANGE_QUERY), window)

    sent = json.loads(route.calls.last.request.content)
    assert sent["start"] == int((NOW - 120.5) * 1000)
    assert sent["end"] == int(NOW * 1000)
    assert sent["requestType"] == "time_series"
    queries = sent["compositeQuery"]["queries"]
    assert queries[0]["spec"]["stepInterval"] == 60
    assert "stepInterval" not in queries[1]["spec"]
    assert route.calls.last.request.headers["SIGNOZ-API-KEY"] == API_KEY
    assert series.times.tolist() == [NOW - 120, NOW - 60, NOW]
    assert series.values[0] == 1.0 and series.values[2] == 2.0
    assert series.values[1] != series.values[1]  # NaN: a step without data


@pytest.mark.parametrize("body", [_v5(), _v5([]), {"data": {"result": []}}])
@respx.mock
async def test_series_without_data_is_empty(http: Http, body: Any) -> None:
    respx.post(URL).mock(return_value=httpx.Response(200, json=body))
    series = await _series(_call(http, RANGE_QUERY), Window(NOW - 60, NOW, 60))
    assert len(series) == 0


@respx.mock
async def test_series_of_several_series_is_ambiguous(http: Http) -> None:
    respx.post(URL).mock(return_value=httpx.Response(200, json=_v5([(NOW, 1.0)], [(NOW, 2.0)])))
    with pytest.raises(AmbiguousResult):
        await _series(_call(http, RANGE_QUERY), Window(NOW - 60, NOW, 60))


@pytest.mark.parametrize("expr", ["not json", "[1, 2]"])
@respx.mock
async def test_series_of_a_query_that_is_not_a_json_object_is_rejected(
    http: Http, expr: str
) -> None:
    route = respx.post(URL).mock(return_value=httpx.Response(200, json=_v5()))
    with pytest.raises(QueryRejected, match="signoz: the query is not a JSON"):
        await _series(_call(http, expr), Window(NOW - 60, NOW, 60))
    assert not route.called


# -- ping ---------------------------------------------------------------------------------------


async def _ping(call: Call) -> None:
    assert PROVIDER.ping is not None
    await PROVIDER.ping(call)


@respx.mock
async def test_ping_runs_flaggers_formula_over_the_last_minute(http: Http) -> None:
    route = respx.post(URL).mock(
        return_value=httpx.Response(
            200,
            json={
                "data": {
                    "result": [
                        {
                            "series": [{"values": [{"timestamp": 1714404069294, "value": "1"}]}],
                            "queryName": "F1",
                        }
                    ]
                }
            },
        )
    )
    await _ping(_call(http))
    sent = json.loads(route.calls.last.request.content)
    assert sent == {
        "start": int(NOW * 1000) - 60_000,
        "end": int(NOW * 1000),
        "requestType": "time_series",
        "compositeQuery": {
            "queries": [
                {
                    "type": "builder_formula",
                    "spec": {"name": "F1", "expression": "1", "disabled": False},
                }
            ]
        },
    }
    assert route.calls.last.request.headers["SIGNOZ-API-KEY"] == API_KEY


@respx.mock
async def test_ping_wants_the_value_one(http: Http) -> None:
    respx.post(URL).mock(return_value=httpx.Response(200, json=_v5([(NOW, 2.0)])))
    with pytest.raises(QueryRejected, match="value is not 1 for query: builder_formula 1"):
        await _ping(_call(http))


@respx.mock
async def test_ping_fails_on_bad_gateway(http: Http) -> None:
    respx.post(URL).mock(return_value=httpx.Response(502, text="bad gateway"))
    with pytest.raises(ProviderUnavailable, match="HTTP 502"):
        await _ping(_call(http))


# -- through MetricSources: the template named, the key redacted ---------------------------------


@respx.mock
async def test_a_check_failure_names_the_template_and_hides_the_key() -> None:
    respx.post(URL).mock(
        return_value=httpx.Response(403, text=f"API key {API_KEY} is not allowed here")
    )
    query = MetricQuery(
        canary="test/podinfo",
        metric="error rate",
        kind=CheckKind.TEMPLATE,
        expr=QUERY,
        endpoint=Endpoint(provider_type="signoz", server=ADDRESS, secret="test/signoz"),
        template="test/signoz-error-rate",
    )
    answer = await fetch_one(query, {"test/signoz": CREDENTIALS})

    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.REJECTED
    assert answer.message.startswith("signoz MetricTemplate signoz-error-rate.test: ")
    assert "HTTP 403" in answer.message
    assert API_KEY not in answer.message
