"""Cloud Monitoring (stackdriver) as Flagger's ``stackdriver_test.go`` answers it: a point may come
without its time interval; only a series, which places samples in time, needs it."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
import respx

from analysis import FailureKind, QueryFailure, Series
from analysis.providers import _stackdriver
from tests.analysis.providers.providers_testkit import NOW, SECRETS, docs_query, fetch_one
from tests.analysis.providers.test_provider_hosted import _series

MONITORING = "https://monitoring.googleapis.com/v3/projects/my-project/timeSeries:query"
WITH_PROJECT = {**SECRETS, "test/gcloud-sa": {"project": "my-project"}}


@pytest.fixture(autouse=True)
def no_google_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    async def token(key: str) -> str:
        return "ya29.test-access-token"

    monkeypatch.setattr(_stackdriver, "_token", token)


def _answer(*points: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"timeSeriesData": [{"pointData": list(points)}]})


@respx.mock
async def test_a_point_without_a_time_interval_is_read() -> None:
    # TestStackDriverProvider_RunQuery "ok": one point, Values [DoubleValue 100], no TimeInterval
    route = respx.post(MONITORING).mock(return_value=_answer({"values": [{"doubleValue": 100}]}))
    assert await fetch_one(docs_query("latency p99"), WITH_PROJECT) == 100.0
    assert route.calls.last.request.headers["Authorization"] == "Bearer ya29.test-access-token"


@respx.mock
async def test_the_first_point_is_the_value_without_times() -> None:
    respx.post(MONITORING).mock(
        return_value=_answer({"values": [{"int64Value": "7"}]}, {"values": [{"doubleValue": 1}]})
    )
    assert await fetch_one(docs_query("latency p99"), WITH_PROJECT) == 7.0


@respx.mock
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("garbage", "stackdriver answered a malformed value: 'garbage'"),
        ({"doubleValue": [1]}, "stackdriver answered a doubleValue that is not a number: [1]"),
    ],
)
async def test_a_timeless_point_s_garbage_value_is_still_rejected(value: Any, message: str) -> None:
    respx.post(MONITORING).mock(return_value=_answer({"values": [value]}))
    answer = await fetch_one(docs_query("latency p99"), WITH_PROJECT)
    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.REJECTED
    assert message in answer.message


@respx.mock
async def test_a_timeless_point_s_non_finite_value_is_read_as_before() -> None:
    respx.post(MONITORING).mock(return_value=_answer({"values": [{"doubleValue": "NaN"}]}))
    answer = await fetch_one(docs_query("latency p99"), WITH_PROJECT)
    assert isinstance(answer, float) and math.isnan(answer)
    respx.post(MONITORING).mock(return_value=_answer({"values": [{}]}))
    answer = await fetch_one(docs_query("latency p99"), WITH_PROJECT)
    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.NO_DATA


@respx.mock
async def test_a_series_still_needs_each_point_s_end_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.analysis.providers.test_provider_hosted as hosted

    monkeypatch.setattr(hosted, "SECRETS", WITH_PROJECT)
    respx.post(MONITORING).mock(return_value=_answer({"values": [{"doubleValue": 100}]}))
    answer = await _series("latency p99", NOW - 120, NOW, 60)
    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.REJECTED
    assert "stackdriver answered a point without an end time: None" in answer.message
    respx.post(MONITORING).mock(
        return_value=_answer(
            {
                "values": [{"doubleValue": 3.0}],
                "timeInterval": {"endTime": "2027-01-15T08:00:00Z"},
            }
        )
    )
    series = await _series("latency p99", NOW - 120, NOW, 60)
    assert isinstance(series, Series)
    assert series.values.tolist() == [3.0]
