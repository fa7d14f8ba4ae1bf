"""The hosted metric providers against respx routes answering as the vendors document.

Each test plans the check of Flagger's documentation template (providers_testkit), answers it
from a route that checks the request Flagger's provider sends (URL, parameters, headers, window),
and checks the float (or Series) or the QueryFailure and its wording: no data, rejections that
name the template, timeouts, and no Secret value in any message.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import respx

from analysis import FailureKind, QueryFailure, Series, SeriesRequest, open_metric_sources
from analysis.providers import _cloudwatch, _influxdb
from tests.analysis.providers.providers_testkit import NOW, SECRETS, docs_query, fetch_one

DATADOG = "https://api.datadoghq.com/api/v1/query"
NEWRELIC = "https://insights-api.newrelic.com/v1/accounts/1234567/query"
DYNATRACE = "https://xxxxxxxx.live.dynatrace.com/api/v2/metrics/query"
INFLUX = "http://influxdb.monitoring:8086/api/v2/query"
CLOUDWATCH = "https://monitoring.ap-northeast-1.amazonaws.com/"
ALL_SECRET_VALUES = [v for data in SECRETS.values() for v in data.values() if len(v) > 8]


def _no_secret(text: str) -> None:
    for value in ALL_SECRET_VALUES:
        assert value not in text


async def _series(metric: str, start: float, end: float, step: float) -> Series | QueryFailure:
    async with open_metric_sources(
        sleep=asyncio.sleep, now=lambda: NOW, credentials=SECRETS.get
    ) as live:
        [answer] = await live.fetch_series(
            [SeriesRequest(query=docs_query(metric), start=start, end=end, step=step)]
        )
        return answer


# -- Datadog ------------------------------------------------------------------------------------


@respx.mock
async def test_datadog_reads_the_oldest_point_of_ten_intervals() -> None:
    # Flagger's datadog.go returns the first series' first point (pl[0], fluxcd/flagger#1763):
    # the newest bucket is still filling and reads low
    route = respx.get(DATADOG).mock(
        return_value=httpx.Response(
            200,
            json={
                "status": "ok",
                "series": [
                    {"pointlist": [[(NOW - 600) * 1000, 7.0], [(NOW - 60) * 1000, 1.25]]},
                    {"pointlist": [[(NOW - 600) * 1000, 99.0]]},
                ],
            },
        )
    )
    assert await fetch_one(docs_query("404s percentage")) == 7.0
    request = route.calls.last.request
    assert request.headers["DD-API-KEY"] == "dd-api-key-0123456789"
    assert request.headers["DD-APPLICATION-KEY"] == "dd-app-key-9876543210"
    params = request.url.params
    assert (params["from"], params["to"]) == (str(int(NOW - 600)), str(int(NOW)))
    assert "destination_workload:podinfo" in params["query"]
    assert "destination_workload_namespace:test" in params["query"]


@respx.mock
@pytest.mark.parametrize(
    "body",
    [
        {"series": []},
        {"series": [{"pointlist": []}]},
        {"series": [{"pointlist": [[(NOW - 120) * 1000, None], [(NOW - 60) * 1000, 5.0]]}]},
    ],
)
async def test_datadog_without_a_point_is_no_data(body: dict[str, Any]) -> None:
    respx.get(DATADOG).mock(return_value=httpx.Response(200, json=body))
    answer = await fetch_one(docs_query("404s percentage"))
    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.NO_DATA
    assert "no values found" in answer.message


@respx.mock
async def test_datadog_rejection_names_the_template_and_hides_the_keys() -> None:
    respx.get(DATADOG).mock(
        return_value=httpx.Response(
            403, json={"errors": ["Forbidden: key dd-api-key-0123456789 is invalid"]}
        )
    )
    answer = await fetch_one(docs_query("404s percentage"))
    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.REJECTED
    assert answer.message.startswith("datadog MetricTemplate not-found-percentage.test:")
    assert "HTTP 403" in answer.message and "check the credentials" in answer.message
    _no_secret(answer.message)


async def test_datadog_secret_without_a_key_fails_before_sending() -> None:
    secrets = {"test/datadog": {"datadog_api_key": "dd-api-key-0123456789"}}
    answer = await fetch_one(docs_query("404s percentage"), secrets)
    assert isinstance(answer, QueryFailure)
    assert "datadog credentials does not contain datadog_application_key" in answer.message
    _no_secret(answer.message)


async def test_a_missing_secret_is_named() -> None:
    answer = await fetch_one(docs_query("404s percentage"), {})
    assert isinstance(answer, QueryFailure)
    assert "credentials Secret test/datadog not found" in answer.message


@respx.mock
async def test_datadog_series_spans_the_window() -> None:
    route = respx.get(DATADOG).mock(
        return_value=httpx.Response(
            200,
            json={
                "series": [
                    {
                        "pointlist": [
                            [(NOW - 120) * 1000, 2.0],
                            [(NOW - 60) * 1000, None],
                            [NOW * 1000, 3.0],
                        ]
                    }
                ]
            },
        )
    )
    series = await _series("404s percentage", NOW - 120, NOW, 60)
    assert isinstance(series, Series)
    assert series.times.tolist() == [NOW - 120, NOW - 60, NOW]
    assert series.values[0] == 2.0 and series.values[2] == 3.0
    assert series.values[1] != series.values[1]  # a null point is a step without data
    params = route.calls.last.request.url.params
    assert (params["from"], params["to"]) == (str(int(NOW - 120)), str(int(NOW)))


@respx.mock
async def test_a_slow_provider_times_out_naming_the_template() -> None:
    respx.get(DATADOG).mock(side_effect=httpx.ReadTimeout("slow"))
    answer = await fetch_one(docs_query("404s percentage"))
    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.TIMEOUT
    assert "datadog MetricTemplate not-found-percentage.test" in answer.message
    assert "did not answer within 5s" in answer.message


# -- New Relic ----------------------------------------------------------------------------------


@respx.mock
async def test_newrelic_sends_nrql_since_the_interval_with_the_query_key() -> None:
    route = respx.get(NEWRELIC).mock(
        return_value=httpx.Response(200, json={"results": [{"result": 0.75}]})
    )
    assert await fetch_one(docs_query("error rate")) == 0.75
    request = route.calls.last.request
    assert request.headers["X-Query-Key"] == "NRIQ-querykey42"
    nrql = request.url.params["nrql"]
    assert nrql.endswith(" SINCE 60 seconds ago")
    assert "ingress = 'podinfo' AND  namespace = 'test'" in nrql


@respx.mock
async def test_newrelic_takes_a_value_named_after_its_function() -> None:
    # fluxcd/flagger#1584: {"results": [{"sum": ...}]} is what NRQL answers for sum().
    respx.get(NEWRELIC).mock(
        return_value=httpx.Response(200, json={"results": [{"sum": 91979529.0}]})
    )
    assert await fetch_one(docs_query("error rate")) == 91979529.0


@respx.mock
@pytest.mark.parametrize("results", [[], [{"result": None}], [{"a": 1}, {"b": 2}]])
async def test_newrelic_without_one_value_is_no_data(results: list[Any]) -> None:
    respx.get(NEWRELIC).mock(return_value=httpx.Response(200, json={"results": results}))
    answer = await fetch_one(docs_query("error rate"))
    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.NO_DATA


@respx.mock
async def test_newrelic_series_uses_timeseries_buckets() -> None:
    route = respx.get(NEWRELIC).mock(
        return_value=httpx.Response(
            200,
            json={
                "timeSeries": [
                    {
                        "results": [{"result": 1.0}],
                        "beginTimeSeconds": NOW - 120,
                        "endTimeSeconds": NOW - 60,
                    },
                    {
                        "results": [{"result": 2.0}],
                        "beginTimeSeconds": NOW - 60,
                        "endTimeSeconds": NOW,
                    },
                ]
            },
        )
    )
    series = await _series("error rate", NOW - 120, NOW, 60)
    assert isinstance(series, Series)
    assert series.times.tolist() == [NOW - 60, NOW]
    assert series.values.tolist() == [1.0, 2.0]
    nrql = route.calls.last.request.url.params["nrql"]
    assert nrql.endswith(
        f"SINCE {int((NOW - 120) * 1000)} UNTIL {int(NOW * 1000)} TIMESERIES 60 seconds"
    )


# -- Dynatrace ----------------------------------------------------------------------------------


def _dynatrace(values: list[float | None], timestamps: list[float]) -> dict[str, Any]:
    return {
        "totalCount": 1,
        "resolution": "Inf",
        "result": [
            {
                "metricId": "builtin:service.response.time:percentile(95)",
                "data": [
                    {
                        "dimensions": ["SERVICE-ABCDEFG0123456789"],
                        "dimensionMap": {"dt.entity.service": "SERVICE-ABCDEFG0123456789"},
                        "timestamps": [int(t * 1000) for t in timestamps],
                        "values": values,
                    }
                ],
            }
        ],
    }


@respx.mock
async def test_dynatrace_reads_the_value_with_an_api_token() -> None:
    route = respx.get(DYNATRACE).mock(
        return_value=httpx.Response(200, json=_dynatrace([240.5], [NOW]))
    )
    assert await fetch_one(docs_query("response-time-95pct")) == 240.5
    request = route.calls.last.request
    assert request.headers["Authorization"] == "Api-Token dt0c01.SECRETTOKENVALUE"
    params = request.url.params
    assert params["resolution"] == "Inf"
    assert params["metricSelector"].startswith("builtin:service.response.time:filter(")
    assert (params["from"], params["to"]) == (
        str(int((NOW - 600) * 1000)),
        str(int(NOW * 1000)),
    )


@respx.mock
async def test_dynatrace_without_data_is_no_data() -> None:
    respx.get(DYNATRACE).mock(
        return_value=httpx.Response(200, json={"totalCount": 0, "result": [{"data": []}]})
    )
    answer = await fetch_one(docs_query("response-time-95pct"))
    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.NO_DATA


@respx.mock
async def test_dynatrace_series_asks_for_the_step_resolution() -> None:
    route = respx.get(DYNATRACE).mock(
        return_value=httpx.Response(
            200, json=_dynatrace([200.0, None, 210.0], [NOW - 120, NOW - 60, NOW])
        )
    )
    series = await _series("response-time-95pct", NOW - 120, NOW, 60)
    assert isinstance(series, Series)
    assert series.times.tolist() == [NOW - 120, NOW - 60, NOW]
    assert route.calls.last.request.url.params["resolution"] == "60s"


# -- InfluxDB -----------------------------------------------------------------------------------

ANNOTATED_COUNT = (
    "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,long,string\r\n"
    "#group,false,false,true,true,false,true\r\n"
    "#default,count,,,,,\r\n"
    ",result,table,_start,_stop,_value,_measurement\r\n"
    ",,0,2027-01-15T06:00:00Z,2027-01-15T08:00:00Z,3,istio_requests_total\r\n"
    "\r\n"
)


@respx.mock
async def test_influxdb_posts_flux_with_the_token_and_reads_the_first_value() -> None:
    route = respx.post(INFLUX).mock(return_value=httpx.Response(200, text=ANNOTATED_COUNT))
    assert await fetch_one(docs_query("not found")) == 3.0
    request = route.calls.last.request
    assert request.headers["Authorization"] == "Token influx-token-abcdef"
    assert request.url.params["org"] == "my-org"
    body = json.loads(request.content)
    assert body["type"] == "flux"
    assert 'r["destination_workload"] == "podinfo"' in body["query"]
    assert "now" not in body


@respx.mock
async def test_influxdb_waits_fifteen_seconds_as_flagger() -> None:
    # Flagger's influxdb.go gives a Flux query 15 s (the hosted APIs 5 s)
    route = respx.post(INFLUX).mock(side_effect=httpx.ReadTimeout("slow"))
    answer = await fetch_one(docs_query("not found"))
    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.TIMEOUT
    assert "did not answer within 15s" in answer.message
    assert route.calls.last.request.extensions["timeout"]["read"] == 15.0


@respx.mock
async def test_influxdb_without_records_is_no_data() -> None:
    respx.post(INFLUX).mock(return_value=httpx.Response(200, text="\r\n"))
    answer = await fetch_one(docs_query("not found"))
    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.NO_DATA


@respx.mock
async def test_influxdb_an_empty_value_reads_its_columns_default() -> None:
    # the influxdb client's parser fills an empty cell with the #default annotation's value
    answer_text = ANNOTATED_COUNT.replace("#default,count,,,,,", "#default,count,,,,7.5,").replace(
        ",3,istio", ",,istio"
    )
    respx.post(INFLUX).mock(return_value=httpx.Response(200, text=answer_text))
    assert await fetch_one(docs_query("not found")) == 7.5
    respx.post(INFLUX).mock(  # no default: an empty value is no data, as before
        return_value=httpx.Response(200, text=ANNOTATED_COUNT.replace(",3,istio", ",,istio"))
    )
    answer = await fetch_one(docs_query("not found"))
    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.NO_DATA


@respx.mock
async def test_influxdb_a_numeric_value_that_is_not_a_number_is_rejected() -> None:
    garbled = ANNOTATED_COUNT.replace(",3,istio", ",three,istio")
    respx.post(INFLUX).mock(return_value=httpx.Response(200, text=garbled))
    answer = await fetch_one(docs_query("not found"))
    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.REJECTED
    assert answer.message == (
        "influxdb MetricTemplate not-found.test: "
        "influxdb answered a _value that is not a number: 'three'"
    )


@respx.mock
async def test_influxdb_flux_error_is_rejected_with_its_message() -> None:
    respx.post(INFLUX).mock(
        return_value=httpx.Response(
            400, json={"code": "invalid", "message": "compilation failed: undefined identifier"}
        )
    )
    answer = await fetch_one(docs_query("not found"))
    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.REJECTED
    assert "compilation failed" in answer.message
    assert "influxdb MetricTemplate not-found.test" in answer.message


@respx.mock
async def test_influxdb_series_evaluates_the_query_at_each_step() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content)["now"])
        return httpx.Response(200, text=ANNOTATED_COUNT)

    respx.post(INFLUX).mock(side_effect=answer)
    series = await _series("not found", NOW - 120, NOW, 60)
    assert isinstance(series, Series)
    assert series.times.tolist() == [NOW - 120, NOW - 60, NOW]
    assert series.values.tolist() == [3.0, 3.0, 3.0]
    assert sorted(seen) == ["2027-01-15T07:58:00Z", "2027-01-15T07:59:00Z", "2027-01-15T08:00:00Z"]


@respx.mock
async def test_influxdb_series_asks_a_few_steps_at_a_time() -> None:
    # A series counts as one query against its server's limit: its steps (up to 1,000, one Flux
    # query each) are asked a few at a time, not all at once on as many connections.
    in_flight = peak = 0

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.005)
        in_flight -= 1
        return httpx.Response(200, text=ANNOTATED_COUNT)

    respx.post(INFLUX).mock(side_effect=answer)
    series = await _series("not found", NOW - 6000, NOW, 60)
    assert isinstance(series, Series) and len(series.values) == 101
    assert 1 < peak <= _influxdb.SERIES_CONCURRENCY < 101


# -- CloudWatch ---------------------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    _cloudwatch.forget_credentials()


@respx.mock
async def test_cloudwatch_signs_get_metric_data_and_reads_the_newest_value(aws: None) -> None:
    route = respx.post(CLOUDWATCH).mock(
        return_value=httpx.Response(
            200,
            json={
                "MetricDataResults": [
                    {
                        "Id": "e1",
                        "Label": "ErrorRate",
                        "Timestamps": [NOW - 60, NOW - 120],
                        "Values": [0.02, 0.05],
                        "StatusCode": "Complete",
                    }
                ],
                "Messages": [],
            },
        )
    )
    assert await fetch_one(docs_query("app error rate")) == 0.02
    request = route.calls.last.request
    assert request.headers["X-Amz-Target"] == "GraniteServiceVersion20100801.GetMetricData"
    assert request.headers["Content-Type"] == "application/x-amz-json-1.0"
    authorization = request.headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/ap-northeast-1/monitoring/aws4_request" in authorization
    assert "wJalrXUtnFEMI" not in authorization
    body = json.loads(request.content)
    assert [q["Id"] for q in body["MetricDataQueries"]] == ["e1", "m1", "m2"]
    dimension = body["MetricDataQueries"][1]["MetricStat"]["Metric"]["Dimensions"][0]
    assert dimension == {"Name": "appName", "Value": "podinfo.test"}
    assert (body["StartTime"], body["EndTime"], body["MaxDatapoints"]) == (
        NOW - 600,
        NOW,
        20,
    )


@respx.mock
async def test_cloudwatch_without_values_is_no_data(aws: None) -> None:
    respx.post(CLOUDWATCH).mock(
        return_value=httpx.Response(
            200, json={"MetricDataResults": [{"Id": "e1", "Timestamps": [], "Values": []}]}
        )
    )
    answer = await fetch_one(docs_query("app error rate"))
    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.NO_DATA


@respx.mock
async def test_cloudwatch_series_orders_the_newest_first_answer(aws: None) -> None:
    respx.post(CLOUDWATCH).mock(
        return_value=httpx.Response(
            200,
            json={
                "MetricDataResults": [
                    {"Id": "e1", "Timestamps": [NOW, NOW - 60], "Values": [0.2, 0.1]}
                ]
            },
        )
    )
    series = await _series("app error rate", NOW - 60, NOW, 60)
    assert isinstance(series, Series)
    assert series.times.tolist() == [NOW - 60, NOW]
    assert series.values.tolist() == [0.1, 0.2]


@respx.mock
async def test_cloudwatch_availability_is_an_http_400_to_an_empty_query(aws: None) -> None:
    route = respx.post(CLOUDWATCH).mock(
        return_value=httpx.Response(
            400, json={"__type": "#InvalidParameterValueException", "message": "empty"}
        )
    )
    async with open_metric_sources(sleep=asyncio.sleep, now=lambda: NOW) as live:
        assert await live.check_providers([docs_query("app error rate")]) == ""
        route.mock(return_value=httpx.Response(403, json={"message": "not authorized"}))
        reason = await live.check_providers([docs_query("app error rate")])
    assert "HTTP 403" in reason and "cloudwatch-error-rate.test" in reason


# -- External metrics API at an address ---------------------------------------------------------


@respx.mock
async def test_externalmetrics_at_an_address_sends_the_selector_and_token() -> None:
    from analysis import CheckKind, Endpoint, MetricQuery

    route = respx.get(
        "https://metrics.example:6443/apis/external.metrics.k8s.io/v1beta1/namespaces/prod/"
        "queue_depth"
    ).mock(
        return_value=httpx.Response(
            200,
            json={
                "kind": "ExternalMetricValueList",
                "apiVersion": "external.metrics.k8s.io/v1beta1",
                "metadata": {},
                "items": [
                    {
                        "metricName": "queue_depth",
                        "metricLabels": {"app": "podinfo"},
                        "timestamp": "2027-01-15T08:00:00Z",
                        "value": "2Ki",
                    }
                ],
            },
        )
    )
    query = MetricQuery(
        canary="test/podinfo",
        metric="queue",
        kind=CheckKind.TEMPLATE,
        template="test/queue-depth",
        endpoint=Endpoint(
            provider_type="externalmetrics",
            server="https://metrics.example:6443",
            secret="test/ext",
        ),
        expr="prod/queue_depth?labelSelector=app+in+%28podinfo%29%2Ctier%21%3Dweb",
    )
    secrets = {"test/ext": {"token": "kube-token-abcdef123"}}
    assert await fetch_one(query, secrets) == 2048.0
    request = route.calls.last.request
    assert request.headers["Authorization"] == "Bearer kube-token-abcdef123"
    assert request.url.params["labelSelector"] == "app in (podinfo),tier!=web"


@pytest.mark.parametrize(
    ("text", "value"),
    [("1500m", 1.5), ("3", 3.0), ("2k", 2000.0), ("1Mi", 1048576.0), ("1e3", 1000.0), (7, 7.0)],
)
def test_external_metric_quantities(text: object, value: float) -> None:
    from analysis.providers._externalmetrics import quantity

    assert quantity(text) == value


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("queue", ("default", "queue", "")),
        ("/queue", ("default", "queue", "")),
        ("prod/queue?labelSelector=a%3Db", ("prod", "queue", "a=b")),
    ],
)
def test_external_metrics_queries_parse_as_flagger_parses_them(
    query: str, expected: tuple[str, str, str]
) -> None:
    from analysis.providers._externalmetrics import parse_query

    assert parse_query(query) == expected


def test_external_metrics_query_with_too_many_slashes_is_rejected() -> None:
    from analysis._errors import QueryRejected
    from analysis.providers._externalmetrics import parse_query

    with pytest.raises(QueryRejected, match="too many slashes"):
        parse_query("a/b/c")


# -- Credentials ------------------------------------------------------------------------------


async def test_a_credentials_secret_that_never_arrives_fails_the_query_within_its_deadline() -> (
    None
):
    # The hosted provider's Secret read is bounded by the query's own deadline (twice the HTTP
    # timeout), not by the Kubernetes client's 30 s, which would hold every canary of the batch.
    async def credentials(ref: str) -> dict[str, str]:
        await asyncio.Event().wait()  # the API server never answers
        raise AssertionError("unreachable")

    loop = asyncio.get_running_loop()
    with respx.mock(assert_all_called=False) as mock:
        route = mock.get(DATADOG)
        async with open_metric_sources(
            sleep=asyncio.sleep, now=lambda: NOW, credentials=credentials, timeout_seconds=0.2
        ) as live:
            started = loop.time()
            # wait_for: a regression fails the test instead of hanging it
            [answer] = await asyncio.wait_for(live.fetch([docs_query("404s percentage")]), 5)
            waited = loop.time() - started
    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.TRANSPORT
    assert "reading credentials Secret test/datadog: no answer within 0.4s" in answer.message
    assert waited < 2 and route.call_count == 0


async def test_a_hosted_query_that_never_got_a_slot_says_it_sent_nothing() -> None:
    # With one slot per server, a check waits behind a series read (its own deadline is a
    # minute) that the server does not answer: the check fails at its deadline saying it sent no
    # request and why, not "no answer" (which would blame the server for a request it never got).
    release = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200, json={"status": "ok", "series": []})

    with respx.mock:
        respx.get(DATADOG).mock(side_effect=hang)
        async with open_metric_sources(
            sleep=asyncio.sleep,
            now=lambda: NOW,
            credentials=SECRETS.get,
            timeout_seconds=0.2,
            concurrency=1,
        ) as live:
            query = docs_query("404s percentage")
            held = asyncio.create_task(
                live.fetch_series([SeriesRequest(query=query, start=NOW - 600, end=NOW, step=60)])
            )
            await asyncio.sleep(0.05)
            [answer] = await asyncio.wait_for(live.fetch([query]), 5)
            release.set()
            await held
    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.TIMEOUT
    assert "no request sent within 0.4s: its other queries held all 1 slots" in answer.message


async def test_a_hosted_query_and_its_secret_read_share_one_deadline() -> None:
    # Each within the deadline (twice the 0.2 s HTTP timeout) alone, not together: the query
    # fails at its deadline rather than at twice it (found by a reviewer).
    async def credentials(ref: str) -> dict[str, str]:
        await asyncio.sleep(0.3)
        return SECRETS[ref]

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.3)
        return httpx.Response(200, json={"status": "ok", "series": []})

    loop = asyncio.get_running_loop()
    with respx.mock:
        respx.get(DATADOG).mock(side_effect=slow)
        async with open_metric_sources(
            sleep=asyncio.sleep, now=lambda: NOW, credentials=credentials, timeout_seconds=0.2
        ) as live:
            started = loop.time()
            [answer] = await live.fetch([docs_query("404s percentage")])
            waited = loop.time() - started
    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.TIMEOUT
    assert "no answer within 0.4s" in answer.message
    assert waited < 0.55
