"""The helpers the hosted providers share (analysis.providers._base), checked on their own."""

from __future__ import annotations

import math

import httpx
import pytest

from analysis._errors import ProviderUnavailable, QueryRejected
from analysis.providers._base import Window, json_object, online_if_bad_request, window_series


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
