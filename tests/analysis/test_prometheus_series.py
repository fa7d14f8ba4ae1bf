"""PrometheusSource.fetch_series against a mocked Prometheus (respx): range queries for a judge.

Each test builds ``SeriesRequest`` values (from ``plan_queries`` or a hand-made MetricQuery),
answers ``/api/v1/query_range`` from a respx route that inspects the query and its window, and
checks the ``Series`` (times, values scaled to the check's unit) or the ``QueryFailure`` kind and
wording. Grouping: one range request per query shape and grid for many canaries, each canary
getting its own series and window; windows; a long window in several requests; credentials
never echoed.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import numpy as np
import pytest
import respx

import config
from analysis import (
    Endpoint,
    FailureKind,
    MetricQuery,
    PrometheusSource,
    QueryFailure,
    open_prometheus,
    plan_queries,
)
from analysis._range_grid import MAX_RANGE_STEPS
from analysis._types import Series, SeriesRequest
from tests.analysis.conftest import PROM, Sleeps, raw

CanaryFactory = Callable[..., config.Canary]

RANGE_URL = f"{PROM}/api/v1/query_range"
INSTANT_URL = f"{PROM}/api/v1/query"
SUCCESS = {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}
DURATION = {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "1m"}
ISTIO_LABELS = ("destination_workload_namespace", "destination_workload")
T0 = 1_767_225_600.0  # a whole minute (2026-01-01T00:00:00Z)

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def matrix(*series: tuple[dict[str, str], Sequence[tuple[float, str | float]]]) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {"metric": labels, "values": [[t, str(v)] for t, v in samples]}
                for labels, samples in series
            ],
        },
    }


def params_of(request: httpx.Request) -> httpx.QueryParams:
    if request.method == "POST":
        return httpx.QueryParams(request.content.decode())
    return request.url.params


def window_of(request: httpx.Request) -> tuple[float, float, float]:
    params = params_of(request)
    return float(params["start"]), float(params["end"]), float(params["step"])


def grid(request: httpx.Request) -> list[float]:
    start, end, step = window_of(request)
    count = math.floor(round((end - start) / step, 9)) + 1
    return [round(start + k * step, 3) for k in range(count)]


def ask(
    query: MetricQuery, start: float = T0 - 300, end: float = T0, step: float = 60
) -> SeriesRequest:
    return SeriesRequest(query=query, start=start, end=end, step=step)


async def one_series(source: PrometheusSource, request: SeriesRequest) -> Series | QueryFailure:
    return (await source.fetch_series([request]))[0]


def series(answer: Series | QueryFailure) -> Series:
    assert isinstance(answer, Series), answer
    return answer


def failure(answer: Series | QueryFailure, kind: FailureKind) -> QueryFailure:
    assert isinstance(answer, QueryFailure), answer
    assert answer.kind is kind, answer
    return answer


def istio_fleet(
    make_canary: CanaryFactory, names: Sequence[tuple[str, str]], metrics: list[dict[str, Any]]
) -> list[MetricQuery]:
    return [
        q
        for namespace, name in names
        for q in plan_queries(
            make_canary(metrics, name=name, namespace=namespace),
            {},
            provider="istio",
            default_server=PROM,
        )
    ]


def istio_answer(rates: dict[tuple[str, str], float]) -> Callable[[httpx.Request], httpx.Response]:
    """A fake Prometheus: each workload's value at time t is ``rate + t / 1e6`` on the grid."""

    def answer(request: httpx.Request) -> httpx.Response:
        expr = params_of(request)["query"]
        times = grid(request)
        if "sum by (" in expr:
            return httpx.Response(
                200,
                json=matrix(
                    *(
                        (
                            {ISTIO_LABELS[0]: ns, ISTIO_LABELS[1]: wl},
                            [(t, rate + (t - T0) / 1e6) for t in times],
                        )
                        for (ns, wl), rate in rates.items()
                    )
                ),
            )
        for (ns, wl), rate in rates.items():  # a per-canary query
            if f'destination_workload_namespace="{ns}"' in expr and f'=~"{wl}"' in expr:
                return httpx.Response(
                    200, json=matrix(({}, [(t, rate + (t - T0) / 1e6) for t in times]))
                )
        return httpx.Response(200, json=matrix())

    return answer


# ---------------------------------------------------------------------------------------------
# Answers
# ---------------------------------------------------------------------------------------------


@respx.mock
async def test_a_range_answer_is_a_series_in_the_checks_unit(
    source: PrometheusSource, make_canary: CanaryFactory
) -> None:
    [query] = plan_queries(
        make_canary([DURATION], provider="kubernetes"),
        {},
        provider="kubernetes",
        default_server=PROM,
    )
    assert query.scale == 1000.0  # seconds -> ms
    samples = [(T0 - 120, "0.2"), (T0 - 60, "NaN"), (T0, "+Inf")]  # T0-180 and T0-240: no data
    route = respx.get(RANGE_URL).mock(return_value=httpx.Response(200, json=matrix(({}, samples))))
    answer = series(await one_series(source, ask(query, start=T0 - 240, end=T0, step=60)))
    assert route.call_count == 1
    params = route.calls[0].request.url.params
    assert params["query"] == query.expr  # Flagger's query, byte for byte
    assert (params["start"], params["end"], params["step"]) == (
        f"{T0 - 240:.0f}",
        f"{T0:.0f}",
        "60",
    )
    assert answer.times.dtype == np.float64 and answer.values.dtype == np.float64
    assert answer.times.tolist() == [T0 - 120, T0 - 60, T0]  # missing steps are absent
    assert answer.values[0] == 200.0
    assert math.isnan(answer.values[1])  # a step without data
    assert answer.values[2] == math.inf
    assert len(answer) == 3
    assert source.requests_sent == 1


@respx.mock
async def test_the_request_carries_start_end_and_step(source: PrometheusSource) -> None:
    route = respx.get(RANGE_URL).mock(return_value=httpx.Response(200, json=matrix()))
    await one_series(source, ask(raw(), start=T0 - 90.5, end=T0 + 0.25, step=30))
    params = route.calls[0].request.url.params
    # the grid is the Unix-epoch multiples of the step inside [start, end]: never past the end
    assert (params["start"], params["end"], params["step"]) == (
        "1767225510",
        "1767225600",
        "30",
    )
    assert params["query"] == "up"
    await one_series(source, ask(raw(), start=T0 - 1, end=T0, step=0.25))
    params = route.calls[1].request.url.params
    assert (params["start"], params["end"], params["step"]) == ("1767225599", "1767225600", "0.250")


@respx.mock
async def test_an_empty_matrix_is_an_empty_series(source: PrometheusSource) -> None:
    respx.get(RANGE_URL).mock(return_value=httpx.Response(200, json=matrix()))
    answer = series(await one_series(source, ask(raw())))
    assert len(answer) == 0 and answer.values.size == 0


@respx.mock
async def test_two_series_at_one_instant_are_ambiguous_and_named(source: PrometheusSource) -> None:
    body = matrix(
        ({"pod": "a-1", "code": "200"}, [(T0 - 60, 1), (T0, 1)]),
        ({"pod": "b-2", "code": "200"}, [(T0, 2)]),
    )
    respx.get(RANGE_URL).mock(return_value=httpx.Response(200, json=body))
    answer = failure(await one_series(source, ask(raw())), FailureKind.AMBIGUOUS)
    assert answer.message.startswith("query returned 2 series where one value is expected: ")
    assert '{code="200", pod="a-1"}' in answer.message
    assert '{code="200", pod="b-2"}' in answer.message


@respx.mock
async def test_series_that_never_share_an_instant_are_merged(source: PrometheusSource) -> None:
    # A label that changes during the window (a restarted pod): at each step one series answers,
    # as an instant query at that step would see.
    body = matrix(
        ({"pod": "new"}, [(T0 - 60, 3), (T0, 4)]),
        ({"pod": "old"}, [(T0 - 180, 1), (T0 - 120, 2)]),
    )
    respx.get(RANGE_URL).mock(return_value=httpx.Response(200, json=body))
    answer = series(await one_series(source, ask(raw(scale=10.0))))
    assert answer.times.tolist() == [T0 - 180, T0 - 120, T0 - 60, T0]
    assert answer.values.tolist() == [10.0, 20.0, 30.0, 40.0]


@respx.mock
async def test_a_result_that_is_not_a_matrix_is_rejected(source: PrometheusSource) -> None:
    body = {"status": "success", "data": {"resultType": "vector", "result": []}}
    respx.get(RANGE_URL).mock(return_value=httpx.Response(200, json=body))
    answer = failure(await one_series(source, ask(raw())), FailureKind.REJECTED)
    assert (
        answer.message
        == "range query returned a vector where a matrix (samples over time) is expected"
    )


@respx.mock
@pytest.mark.parametrize("value", ["lots", "1_000", "١٠٠", " 5"])
async def test_a_sample_that_is_not_a_number_is_rejected(
    source: PrometheusSource, value: str
) -> None:
    # "1_000", other scripts' digits and padding are numbers to Python, not to Go's ParseFloat
    samples = [(T0 - 60, "1"), (T0, value)]
    respx.get(RANGE_URL).mock(return_value=httpx.Response(200, json=matrix(({}, samples))))
    answer = failure(await one_series(source, ask(raw())), FailureKind.REJECTED)
    assert answer.message == "the answer holds a sample that is not a number"


@respx.mock
async def test_each_request_gets_its_own_copy(source: PrometheusSource) -> None:
    route = respx.get(RANGE_URL).mock(
        return_value=httpx.Response(200, json=matrix(({}, [(T0, "2")])))
    )
    first, second = await source.fetch_series([ask(raw("x")), ask(raw("x", scale=3.0))])
    assert route.call_count == 1  # identical query, server and window: sent once
    assert series(first).values.tolist() == [2.0] and series(second).values.tolist() == [6.0]
    series(first).values[0] = 0.0
    assert series(second).values.tolist() == [6.0]


# ---------------------------------------------------------------------------------------------
# Errors, retries, timeouts, what is never sent
# ---------------------------------------------------------------------------------------------


@respx.mock
async def test_400_is_rejected_with_prometheus_error_text(
    source: PrometheusSource, sleeps: Sleeps
) -> None:
    body = {
        "status": "error",
        "errorType": "bad_data",
        "error": 'invalid parameter "query": 1:5: parse error: unexpected "}"',
    }
    route = respx.get(RANGE_URL).mock(return_value=httpx.Response(400, json=body))
    answer = failure(await one_series(source, ask(raw("sum(x})"))), FailureKind.REJECTED)
    assert answer.message == (
        "prometheus rejected the query (HTTP 400, bad_data): "
        'invalid parameter "query": 1:5: parse error: unexpected "}"'
    )
    assert route.call_count == 1 and sleeps.delays == []


@respx.mock
async def test_503_is_retried_then_a_transport_failure(
    source: PrometheusSource, sleeps: Sleeps
) -> None:
    route = respx.get(RANGE_URL).mock(return_value=httpx.Response(503, text="overloaded"))
    answer = failure(await one_series(source, ask(raw())), FailureKind.TRANSPORT)
    assert answer.message == (
        f"prometheus {PROM} answered HTTP 503: overloaded (gave up after 3 attempts)"
    )
    assert route.call_count == 3 and sleeps.delays == [0.25, 0.5]
    assert source.requests_sent == 3  # attempts included


@respx.mock
async def test_503_then_success_is_retried(source: PrometheusSource, sleeps: Sleeps) -> None:
    respx.get(RANGE_URL).mock(
        side_effect=[
            httpx.Response(503, text="overloaded"),
            httpx.Response(200, json=matrix(({}, [(T0, 1)]))),
        ]
    )
    assert series(await one_series(source, ask(raw()))).values.tolist() == [1.0]
    assert sleeps.delays == [0.25]


@respx.mock
async def test_connection_errors_are_retried_then_a_transport_failure(
    source: PrometheusSource,
) -> None:
    route = respx.get(RANGE_URL).mock(side_effect=httpx.ConnectError("Connection refused"))
    answer = failure(await one_series(source, ask(raw())), FailureKind.TRANSPORT)
    assert answer.message == (
        f"prometheus {PROM} unreachable: ConnectError: Connection refused "
        "(gave up after 3 attempts)"
    )
    assert route.call_count == 3


@respx.mock
async def test_a_query_that_hangs_is_a_timeout(sleeps: Sleeps) -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    respx.get(RANGE_URL).mock(side_effect=hang)
    async with open_prometheus(sleep=sleeps, timeout_seconds=0.05) as source:
        answer = failure(await one_series(source, ask(raw())), FailureKind.TIMEOUT)
    assert answer.message == f"prometheus {PROM} did not answer within 50ms"


@respx.mock
async def test_one_failing_request_never_cancels_the_others(source: PrometheusSource) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        expr = params_of(request)["query"]
        if expr == "bad":
            return httpx.Response(400, json={"status": "error", "error": "parse error"})
        if expr == "boom":
            raise RuntimeError("unexpected")
        return httpx.Response(200, json=matrix(({}, [(T0, len(expr))])))

    respx.get(RANGE_URL).mock(side_effect=answer)
    answers = await source.fetch_series([ask(raw("a")), ask(raw("bad")), ask(raw("boom"))])
    assert series(answers[0]).values.tolist() == [1.0]
    assert failure(answers[1], FailureKind.REJECTED).message.endswith("parse error")
    assert failure(answers[2], FailureKind.TRANSPORT).message == "RuntimeError: unexpected"


async def test_what_cannot_be_asked_sends_nothing(source: PrometheusSource) -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.route(host="prom.test")
        broken = raw(render_error="Metric template lat.test query render error: boom", expr=None)
        answers = await source.fetch_series(
            [
                ask(broken),
                ask(raw(endpoint=Endpoint(provider_type="datadog", server=PROM))),
                ask(raw(endpoint=Endpoint(server=None))),
                ask(raw(), start=T0, end=T0 - 60),
                ask(raw(), step=0),
                ask(raw(), start=math.nan),
            ]
        )
    assert route.call_count == 0 and source.requests_sent == 0
    assert failure(answers[0], FailureKind.RENDER).message == (
        "Metric template lat.test query render error: boom"
    )
    assert "'datadog' is not Prometheus" in failure(answers[1], FailureKind.REJECTED).message
    assert failure(answers[2], FailureKind.TRANSPORT).message.startswith("no Prometheus address")
    assert failure(answers[3], FailureKind.REJECTED).message.endswith("the end is before the start")
    assert failure(answers[4], FailureKind.REJECTED).message.endswith("at least 1ms")
    assert failure(answers[5], FailureKind.REJECTED).message.endswith("must be finite numbers")


@respx.mock
async def test_a_long_range_query_is_sent_as_a_post_form(source: PrometheusSource) -> None:
    route = respx.post(RANGE_URL).mock(
        return_value=httpx.Response(200, json=matrix(({}, [(T0, 3)])))
    )
    expr = 'sum(up{job=~"' + "|".join(f"job{i}" for i in range(1000)) + '"})'
    assert series(await one_series(source, ask(raw(expr)))).values.tolist() == [3.0]
    request = route.calls[0].request
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = params_of(request)
    assert (form["query"], form["end"], form["step"]) == (expr, f"{T0:.0f}", "60")


# ---------------------------------------------------------------------------------------------
# Credentials
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        httpx.ConnectError("connecting to http://user:s3cret-pw@prom.test:9090 failed"),
        httpx.Response(503, text="upstream http://user:s3cret-pw@prom.test:9090 is down"),
        httpx.Response(400, json={"status": "error", "error": "bad user:s3cret-pw"}),
        httpx.Response(200, text="<html>login as user:s3cret-pw</html>"),
        httpx.ReadTimeout("timed out"),
        RuntimeError("boom at http://user:s3cret-pw@prom.test:9090"),
    ],
    ids=["connect", "5xx", "4xx", "not-json", "timeout", "unexpected"],
)
@respx.mock
async def test_credentials_in_the_address_never_appear_in_a_failure(
    source: PrometheusSource, reply: Any
) -> None:
    route = respx.get(RANGE_URL).mock(side_effect=[reply] * 3)
    answer = await one_series(
        source, ask(raw(endpoint=Endpoint(server="http://user:s3cret-pw@prom.test:9090")))
    )
    assert isinstance(answer, QueryFailure), answer
    assert route.call_count >= 1
    assert "s3cret-pw" not in answer.message, answer.message


@respx.mock
async def test_a_token_as_the_address_user_is_not_echoed(source: PrometheusSource) -> None:
    respx.get(RANGE_URL).mock(side_effect=httpx.ConnectError("nope"))
    answer = await one_series(
        source, ask(raw(endpoint=Endpoint(server="http://glsa_T0k3nValue@prom.test:9090")))
    )
    message = failure(answer, FailureKind.TRANSPORT).message
    assert "glsa_T0k3nValue" not in message and "http://xxxxx@prom.test:9090" in message


@respx.mock
async def test_a_bearer_token_echoed_by_a_proxy_is_scrubbed(sleeps: Sleeps) -> None:
    secret_query = raw(endpoint=Endpoint(server=PROM, secret="test/prom-auth"))

    def credentials(ref: str) -> dict[str, str]:
        return {"token": "t0k3n-very-secret"}

    route = respx.get(RANGE_URL).mock(
        return_value=httpx.Response(403, text="token t0k3n-very-secret is not allowed")
    )
    async with open_prometheus(sleep=sleeps, credentials=credentials) as source:
        answer = failure(await one_series(source, ask(secret_query)), FailureKind.REJECTED)
    assert route.calls[0].request.headers["authorization"] == "Bearer t0k3n-very-secret"
    assert "t0k3n-very-secret" not in answer.message
    assert answer.message.endswith("token xxxxx is not allowed (check the credentials)")


# ---------------------------------------------------------------------------------------------
# Windows: grid, clamp, sharing
# ---------------------------------------------------------------------------------------------


@respx.mock
async def test_a_window_over_11000_steps_is_read_in_consecutive_requests(
    source: PrometheusSource,
) -> None:
    route = respx.get(RANGE_URL).mock(return_value=httpx.Response(200, json=matrix()))
    answer = await one_series(source, ask(raw(), start=T0 - 30 * 86400, end=T0, step=60))
    assert isinstance(answer, Series)
    spans = sorted(window_of(call.request) for call in route.calls)
    assert len(spans) == 4  # 43,201 points, at most 11,000 per request
    assert spans[0][0] == T0 - 30 * 86400 and spans[-1][1] == T0
    assert all(b[0] == a[1] + 60 for a, b in itertools.pairwise(spans))
    assert all((end - start) / step < MAX_RANGE_STEPS for start, end, step in spans)
    # 11,000 points: sent as asked, in one request.
    await one_series(source, ask(raw("y"), start=T0 - 10_999 * 15, end=T0, step=15))
    assert window_of(route.calls[4].request) == (T0 - 10_999 * 15, T0, 15.0)


@respx.mock
async def test_grouped_builtin_range_queries_send_one_request_for_three_canaries(
    source: PrometheusSource, make_canary: CanaryFactory
) -> None:
    names = [("prod", "api"), ("prod", "web"), ("staging", "api")]
    rates = {("prod", "api"): 99.5, ("prod", "web"): 97.0, ("staging", "api"): 100.0}
    route = respx.get(RANGE_URL).mock(side_effect=istio_answer(rates))
    queries = istio_fleet(make_canary, names, [SUCCESS])
    answers = await source.fetch_series([ask(q) for q in queries])
    assert route.call_count == 1 and source.requests_sent == 1
    expr = params_of(route.calls[0].request)["query"]
    assert expr.startswith(f" sum by ({', '.join(ISTIO_LABELS)}) ( rate( istio_requests_total{{")
    assert 'destination_workload_namespace=~"(?:prod|staging)"' in expr
    assert 'destination_workload=~"(?:api|web)"' in expr
    times = [T0 - 300 + 60 * k for k in range(6)]
    for (ns, wl), answer in zip(names, answers, strict=True):
        got = series(answer)
        assert got.times.tolist() == times
        assert got.values.tolist() == [rates[(ns, wl)] + (t - T0) / 1e6 for t in times]


@respx.mock
async def test_a_canary_missing_from_the_grouped_matrix_gets_an_empty_series(
    source: PrometheusSource, make_canary: CanaryFactory
) -> None:
    respx.get(RANGE_URL).mock(side_effect=istio_answer({("prod", "api"): 99.0}))
    queries = istio_fleet(make_canary, [("prod", "api"), ("prod", "gone")], [SUCCESS])
    present, missing = await source.fetch_series([ask(q) for q in queries])
    assert len(series(present)) == 6
    assert len(series(missing)) == 0


@respx.mock
async def test_windows_with_one_end_and_step_share_a_grouped_request(
    source: PrometheusSource, make_canary: CanaryFactory
) -> None:
    # A judge asks for each canary since its own analysis started, and for the primary's history:
    # one grid (same end and step), so one request for the longest window, cut per member.
    names = [("prod", "api"), ("prod", "web")]
    rates = {("prod", "api"): 99.5, ("prod", "web"): 97.0}
    route = respx.get(RANGE_URL).mock(side_effect=istio_answer(rates))
    api, web = istio_fleet(make_canary, names, [SUCCESS])
    answers = await source.fetch_series(
        [ask(api, start=T0 - 120), ask(web, start=T0 - 590), ask(api, start=T0 - 30)]
    )
    assert route.call_count == 1
    assert window_of(route.calls[0].request) == (T0 - 540, T0, 60.0)
    assert series(answers[0]).times.tolist() == [T0 - 120, T0 - 60, T0]
    assert series(answers[1]).times.tolist() == [T0 - 60 * k for k in range(9, -1, -1)]
    assert series(answers[2]).times.tolist() == [T0]
    assert series(answers[0]).values.tolist() == [99.5 - 120e-6, 99.5 - 60e-6, 99.5]


@respx.mock
async def test_grouped_and_per_canary_range_answers_agree(
    sleeps: Sleeps, make_canary: CanaryFactory
) -> None:
    names = [("prod", "api"), ("prod", "web"), ("staging", "api"), ("staging", "gone")]
    rates = {("prod", "api"): 99.5, ("prod", "web"): 97.0, ("staging", "api"): 100.0}
    route = respx.get(RANGE_URL).mock(side_effect=istio_answer(rates))
    queries = istio_fleet(make_canary, names, [SUCCESS])
    requests = [ask(q, start=T0 - 60 * (n + 2)) for n, q in enumerate(queries)]
    async with open_prometheus(sleep=sleeps) as grouped:
        together = await grouped.fetch_series(requests)
    assert route.call_count == 1
    async with open_prometheus(sleep=sleeps, group=False) as single:
        alone = await single.fetch_series(requests)
    assert route.call_count == 1 + len(requests)
    for a, b in zip(together, alone, strict=True):
        assert np.array_equal(series(a).times, series(b).times)
        assert np.array_equal(series(a).values, series(b).values, equal_nan=True)
    assert [len(series(a)) for a in together] == [3, 4, 5, 0]


@respx.mock
async def test_different_ends_steps_or_servers_are_separate_requests(
    source: PrometheusSource, make_canary: CanaryFactory
) -> None:
    route = respx.route(path="/api/v1/query_range").mock(
        return_value=httpx.Response(200, json=matrix())
    )
    a, b = istio_fleet(make_canary, [("prod", "a"), ("prod", "b")], [SUCCESS])
    elsewhere = plan_queries(
        make_canary([SUCCESS], name="c"), {}, provider="istio", default_server="http://o:9090"
    )[0]
    await source.fetch_series(
        [
            ask(a),
            ask(b),  # grouped with a
            ask(a, end=T0 + 1),  # the same grid (the last minute before T0 + 1s): grouped
            ask(a, end=T0 + 60),  # another grid
            ask(b, step=30),  # another step
            ask(elsewhere),  # another server
        ]
    )
    sent = sorted(
        (str(c.request.url.host), *window_of(c.request), "sum by" in c.request.url.params["query"])
        for c in route.calls
    )
    assert sent == [
        ("o", T0 - 300, T0, 60.0, False),
        ("prom.test", T0 - 300, T0, 30.0, False),
        ("prom.test", T0 - 300, T0, 60.0, True),
        ("prom.test", T0 - 300, T0 + 60, 60.0, False),
    ]


@respx.mock
async def test_range_requests_are_bounded_by_the_concurrency_limit(sleeps: Sleeps) -> None:
    in_flight = 0
    peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, json=matrix(({}, [(T0, 1)])))

    respx.get(RANGE_URL).mock(side_effect=slow)
    async with open_prometheus(sleep=sleeps, concurrency=3) as source:
        answers = await source.fetch_series([ask(raw(f"q{i}")) for i in range(12)])
        assert source.requests_sent == 12
    assert all(series(a).values.tolist() == [1.0] for a in answers)
    assert peak == 3


@respx.mock
async def test_instant_and_range_requests_are_both_counted(source: PrometheusSource) -> None:
    respx.get(INSTANT_URL).mock(
        return_value=httpx.Response(
            200,
            json={
                "status": "success",
                "data": {"resultType": "vector", "result": [{"metric": {}, "value": [T0, "1"]}]},
            },
        )
    )
    respx.get(RANGE_URL).mock(return_value=httpx.Response(200, json=matrix(({}, [(T0, 2)]))))
    assert await source.fetch([raw("a")]) == [1.0]
    assert series(await one_series(source, ask(raw("b")))).values.tolist() == [2.0]
    assert source.requests_sent == 2 and source.stats.queries == 2
