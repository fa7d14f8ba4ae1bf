"""The helpers the hosted providers share (analysis.providers._base), checked on their own."""

from __future__ import annotations

import gzip
import json
import math

import httpx
import pytest
import respx

from analysis._errors import ProviderUnavailable, QueryRejected
from analysis.providers._base import (
    MAX_ANSWER_BYTES,
    Http,
    Window,
    json_object,
    online_if_bad_request,
    window_series,
)


def test_window_series_keeps_both_ends_and_makes_nulls_nan() -> None:
    points = [(9.0, 1.0), (10.0, 2.0), (15.0, None), (20.0, 4.0), (21.0, 5.0)]

    series = window_series(points, Window(start=10.0, end=20.0, step=5.0))

    assert series.times.tolist() == [10.0, 15.0, 20.0]
    assert series.values[0] == 2.0 and series.values[2] == 4.0
    assert math.isnan(series.values[1])


def test_window_series_orders_points_and_the_last_of_a_time_wins() -> None:
    points = iter([(20.0, 2.0), (10.0, 1.0), (20.0, 3.0)])  # any iterable, read once

    series = window_series(points, Window(start=0.0, end=30.0, step=10.0))

    assert series.times.tolist() == [10.0, 20.0]
    assert series.values.tolist() == [1.0, 3.0]


def test_window_series_with_no_point_inside_is_empty() -> None:
    assert len(window_series([(1.0, 1.0)], Window(start=5.0, end=6.0, step=1.0))) == 0


def test_json_object_refuses_an_answer_that_is_not_an_object() -> None:
    with pytest.raises(QueryRejected, match=r"^acme answered '\[1, 2\]', not a query result$"):
        json_object(httpx.Response(200, json=[1, 2]), "acme")
    assert json_object(httpx.Response(200, json={"a": 1}), "acme") == {"a": 1}


async def _answer(error: Exception | None) -> None:
    if error is not None:
        raise error


async def test_online_if_bad_request_takes_a_2xx_or_http_400_as_online() -> None:
    await online_if_bad_request(_answer(None))
    await online_if_bad_request(
        _answer(QueryRejected("acme rejected the query (HTTP 400): bad", status=400))
    )
    with pytest.raises(QueryRejected, match="HTTP 403"):
        await online_if_bad_request(
            _answer(QueryRejected("acme rejected the query (HTTP 403): x", status=403))
        )
    # the status decides, not a body that quotes one
    with pytest.raises(QueryRejected, match="HTTP 404"):
        await online_if_bad_request(
            _answer(QueryRejected("acme rejected the query (HTTP 404): (HTTP 400)", status=404))
        )
    with pytest.raises(ProviderUnavailable):
        await online_if_bad_request(_answer(ProviderUnavailable("acme unreachable")))


@respx.mock
async def test_a_redirect_to_another_host_never_carries_the_templates_headers() -> None:
    # httpx drops Authorization on a cross-host redirect but keeps other headers (SigNoz's
    # SIGNOZ-API-KEY, Datadog's DD-API-KEY): such a redirect is refused, not followed.
    respx.post("https://signoz.example/api/v5/query_range").mock(
        return_value=httpx.Response(302, headers={"Location": "https://elsewhere.example/x"})
    )
    elsewhere = respx.post("https://elsewhere.example/x").mock(return_value=httpx.Response(200))
    async with httpx.AsyncClient(follow_redirects=True) as client:
        http = Http(lambda _insecure: client)
        with pytest.raises(
            QueryRejected,
            match=r"^signoz redirected from https://signoz.example to https://elsewhere.example, "
            "another origin; not followed",
        ):
            await http.send(
                "signoz",
                "POST",
                "https://signoz.example/api/v5/query_range",
                headers={"SIGNOZ-API-KEY": "key-123"},
                json_body={},
            )
    assert not elsewhere.called


@respx.mock
@pytest.mark.parametrize("status", [307, 308])
async def test_a_redirect_to_another_host_never_carries_a_body(status: int) -> None:
    # 307/308 send the body again, and a body may be the credential (Azure's token request
    # posts the client secret): refused even with no credential header.
    respx.post("https://login.example/token").mock(
        return_value=httpx.Response(status, headers={"Location": "https://elsewhere.example/t"})
    )
    elsewhere = respx.post("https://elsewhere.example/t").mock(return_value=httpx.Response(200))
    async with httpx.AsyncClient() as client:
        http = Http(lambda _insecure: client)
        with pytest.raises(QueryRejected, match="another origin; not followed"):
            await http.send(
                "azuremonitor",
                "POST",
                "https://login.example/token",
                content=b"grant_type=client_credentials&client_secret=s3cret-value",
            )
    assert not elsewhere.called


@respx.mock
async def test_a_redirect_that_drops_the_body_may_leave_the_host() -> None:
    # a 303 turns the POST into a GET without its body: nothing of the request goes along
    respx.post("https://graphite.example/render").mock(
        return_value=httpx.Response(303, headers={"Location": "https://cdn.example/render"})
    )
    final = respx.get("https://cdn.example/render").mock(return_value=httpx.Response(200))
    async with httpx.AsyncClient() as client:
        http = Http(lambda _insecure: client)
        response = await http.send(
            "graphite", "POST", "https://graphite.example/render", content=b"target=x"
        )
    assert response.status_code == 200 and final.calls.last.request.content == b""


@respx.mock
async def test_a_redirect_on_the_same_host_is_followed() -> None:
    respx.get("https://graphite.example/render").mock(
        return_value=httpx.Response(301, headers={"Location": "https://graphite.example/v2/render"})
    )
    final = respx.get("https://graphite.example/v2/render").mock(
        return_value=httpx.Response(200, json=[])
    )
    async with httpx.AsyncClient(follow_redirects=True) as client:
        http = Http(lambda _insecure: client)
        response = await http.send(
            "graphite", "GET", "https://graphite.example/render", headers={"X-Key": "k"}
        )
    assert response.status_code == 200
    assert final.calls.last.request.headers["X-Key"] == "k"


@respx.mock
async def test_an_answer_past_the_size_limit_is_refused_not_read_whole() -> None:
    # httpx would read any body into memory; with 64 queries in flight that is the controller's
    padding = b" " * (MAX_ANSWER_BYTES + 1)
    respx.get("https://graphite.example/render").mock(
        return_value=httpx.Response(200, content=b"[" + padding + b"]")
    )
    async with httpx.AsyncClient() as client:
        http = Http(lambda _insecure: client)
        with pytest.raises(QueryRejected, match=r"graphite https://graphite.example answered more"):
            await http.send("graphite", "GET", "https://graphite.example/render")


@respx.mock
async def test_a_compressed_answer_is_read_decoded() -> None:
    body = json.dumps([{"target": "x", "datapoints": [[1.5, 1]]}]).encode()
    respx.get("https://graphite.example/render").mock(
        return_value=httpx.Response(
            200, content=gzip.compress(body), headers={"Content-Encoding": "gzip"}
        )
    )
    async with httpx.AsyncClient() as client:
        http = Http(lambda _insecure: client)
        response = await http.send("graphite", "GET", "https://graphite.example/render")
    assert response.json() == [{"target": "x", "datapoints": [[1.5, 1]]}]


@respx.mock
async def test_a_redirect_loop_says_so() -> None:
    # the last 3xx was handed on as the answer: "rejected the query (HTTP 302): Found"
    respx.get("https://graphite.example/render").mock(
        return_value=httpx.Response(302, headers={"Location": "https://graphite.example/render"})
    )
    async with httpx.AsyncClient() as client:
        http = Http(lambda _insecure: client)
        with pytest.raises(QueryRejected, match=r"redirected more than 5 times \(last from https"):
            await http.send("graphite", "GET", "https://graphite.example/render")
