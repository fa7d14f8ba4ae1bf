"""The helpers the hosted providers share (analysis.providers._base), checked on their own."""

from __future__ import annotations

import math

import httpx
import pytest
import respx

from analysis._errors import ProviderUnavailable, QueryRejected
from analysis.providers._base import (
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
    await online_if_bad_request(_answer(QueryRejected("acme rejected the query (HTTP 400): bad")))
    with pytest.raises(QueryRejected, match="HTTP 403"):
        await online_if_bad_request(_answer(QueryRejected("acme rejected the query (HTTP 403): x")))
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
