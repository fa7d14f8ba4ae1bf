"""analyze() judges a tick's checks and words each outcome as Flagger's events do."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import pytest

import config
from analysis import (
    AmbiguousResult,
    AnalysisError,
    Check,
    CheckKind,
    FailureKind,
    MetricQuery,
    QueryFailure,
    QueryRejected,
    RecordedMetricSource,
    RecordedWebhooks,
    Recording,
    Verdict,
    analyze,
    analyze_batches,
    first_failure,
    parse_csv,
    plan_checks,
)

CanaryFactory = Callable[..., config.Canary]
TemplateFactory = Callable[..., config.MetricTemplate]
Answer = float | QueryFailure


class StubSource:
    """A MetricSource answering fixed values in order, counting fetches."""

    def __init__(self, answers: Sequence[Answer]) -> None:
        self.answers = list(answers)
        self.fetches: list[list[MetricQuery]] = []

    async def fetch(self, queries: Sequence[MetricQuery]) -> list[Answer]:
        self.fetches.append(list(queries))
        return self.answers[: len(queries)]


def _check(
    kind: CheckKind,
    metric: str | None = None,
    *,
    lo: float | None = None,
    hi: float | None = None,
    truncate: bool = False,
    **fields: object,
) -> Check:
    """A check of ``kind`` with its bounds; ``fields`` go to its query."""
    query = MetricQuery(
        canary="test/podinfo",
        metric=metric or str(kind),
        kind=kind,
        expr="up",
        observer="istio",
        target_name="podinfo-target",
    )
    query = dataclasses.replace(query, **fields)  # type: ignore[arg-type]
    return Check(query=query, lo=lo, hi=hi, truncate=truncate)


async def _one(check: Check, answer: Answer) -> tuple[Verdict, float | None, str]:
    (result,) = await analyze(StubSource([answer]), [check])
    return result.verdict, result.value, result.message


SR = CheckKind.SUCCESS_RATE
DUR = CheckKind.DURATION


@pytest.mark.parametrize(
    ("query", "answer", "expected"),
    [
        (_check(SR, lo=99.5), 99.95, (Verdict.PASS, 99.95, "")),
        (
            _check(SR, lo=99.5),
            99.123,
            (Verdict.FAIL, 99.123, "Halt podinfo.test advancement success rate 99.12% < 99.5%"),
        ),
        (
            _check(SR, lo=99.0),
            98.0,
            (Verdict.FAIL, 98.0, "Halt podinfo.test advancement success rate 98.00% < 99%"),
        ),
        (
            _check(SR, lo=90.0, hi=99.0),
            99.5,
            (Verdict.FAIL, 99.5, "Halt podinfo.test advancement success rate 99.50% > 99%"),
        ),
        (
            _check(DUR, hi=500.0, truncate=True),
            612.9,
            (Verdict.FAIL, 612.0, "Halt podinfo.test advancement request duration 612ms > 500ms"),
        ),
        (
            _check(DUR, hi=1000.0, truncate=True, scale=1000.0),
            1500.9,  # sources answer in ms already; scale is for the querying source
            (Verdict.FAIL, 1500.0, "Halt podinfo.test advancement request duration 1.5s > 1s"),
        ),
        (
            _check(DUR, lo=100.0, truncate=True),
            99.99,
            (Verdict.FAIL, 99.0, "Halt podinfo.test advancement request duration 99ms < 100ms"),
        ),
        # truncation happens before the comparison, as Flagger's int64 conversion
        (_check(DUR, hi=500.0, truncate=True), 500.9, (Verdict.PASS, 500.0, "")),
        (
            _check(CheckKind.TEMPLATE, "error-rate", hi=1.0),
            1.234,
            (Verdict.FAIL, 1.234, "Halt podinfo.test advancement error-rate 1.23 > 1"),
        ),
        (
            _check(CheckKind.QUERY, "p99", lo=0.25),
            0.1,
            (Verdict.FAIL, 0.1, "Halt podinfo.test advancement p99 0.10 < 0.25"),
        ),
        (
            _check(CheckKind.TEMPLATE, "big", hi=1e6),
            2e6,
            (Verdict.FAIL, 2e6, "Halt podinfo.test advancement big 2000000.00 > 1e+06"),
        ),
        # a non-finite answer is never a pass: ±Inf is an error naming the value
        (
            _check(CheckKind.TEMPLATE, "inf", hi=5.0),
            math.inf,
            (
                Verdict.ERROR,
                None,
                "Metric query failed for inf: query returned a non-finite value +Inf",
            ),
        ),
        (
            _check(CheckKind.TEMPLATE, "inf", lo=0.0),
            math.inf,
            (
                Verdict.ERROR,
                None,
                "Metric query failed for inf: query returned a non-finite value +Inf",
            ),
        ),
    ],
)
async def test_threshold_outcomes_and_messages(
    query: MetricQuery, answer: Answer, expected: tuple[Verdict, float | None, str]
) -> None:
    assert await _one(query, answer) == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            _check(SR, lo=99.0),
            "Halt advancement no values found for istio metric request-success-rate probably "
            "podinfo-target.test is not receiving traffic: running query failed: no values found",
        ),
        (
            # the generic HTTP observer returns the provider error unwrapped
            _check(SR, lo=99.0, observer="kubernetes"),
            "Halt advancement no values found for kubernetes metric request-success-rate "
            "probably podinfo-target.test is not receiving traffic: no values found",
        ),
        (
            _check(DUR, hi=500.0),
            "Halt advancement no values found for istio metric request-duration probably "
            "podinfo-target.test is not receiving traffic",
        ),
        (_check(CheckKind.QUERY, "errors"), "Halt advancement no values found for metric: errors"),
        (
            _check(CheckKind.TEMPLATE, "latency"),
            "Halt advancement no values found for custom metric: latency: no values found",
        ),
    ],
)
@pytest.mark.parametrize("answer", [math.nan, QueryFailure(FailureKind.NO_DATA, "empty vector")])
async def test_no_data_messages(query: MetricQuery, message: str, answer: Answer) -> None:
    assert await _one(query, answer) == (Verdict.NO_DATA, None, message)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (_check(SR), "Prometheus query failed: running query failed: error response: bad_data"),
        (
            _check(DUR, observer="kubernetes"),
            "Prometheus query failed: running query failed: error response: bad_data",
        ),
        (
            _check(CheckKind.QUERY, "errors"),
            "Prometheus query failed for errors: error response: bad_data",
        ),
        (
            _check(CheckKind.TEMPLATE, "latency"),
            "Metric query failed for latency: error response: bad_data",
        ),
    ],
)
async def test_query_error_messages(query: MetricQuery, message: str) -> None:
    failure = QueryRejected("error response: bad_data").to_failure()
    assert await _one(query, failure) == (Verdict.ERROR, None, message)


async def test_ambiguous_result_names_the_label_sets() -> None:
    failure = AmbiguousResult([{"pod": "a", "job": "x"}, {"pod": "b", "job": "x"}]).to_failure()
    verdict, value, message = await _one(_check(CheckKind.TEMPLATE, "latency"), failure)
    assert (verdict, value) == (Verdict.ERROR, None)
    assert message.startswith("Metric query failed for latency: query returned 2 series")
    assert '{job="x", pod="a"}' in message and '{job="x", pod="b"}' in message


async def test_render_errors_fail_with_the_planned_message(
    make_canary: CanaryFactory, make_template: TemplateFactory
) -> None:
    canary = make_canary(
        [
            {"name": "lat", "templateRef": {"name": "lat"}},
            {"name": "gone", "templateRef": {"name": "gone"}},
        ]
    )
    templates = {("test", "lat"): make_template("lat", 'x{a="{{ variables.nope }}"}')}
    queries = plan_checks(canary, templates, provider="istio", default_server="")
    source = RecordedMetricSource(
        parse_csv("time,target,metric,value\n0,canary,lat,1\n"), lambda: 0
    )
    results = await analyze(source, queries)
    assert [r.verdict for r in results] == [Verdict.ERROR, Verdict.ERROR]
    assert all(r.is_error and r.value is None for r in results)
    assert results[0].message.startswith("Metric template lat.test query render error: ")
    assert '"nope"' in results[0].message
    assert results[1].message == (
        'Metric template gone.test error: metrictemplate.flagger.app "gone" not found'
    )
    assert results[0].failure is not None and results[0].failure.kind is FailureKind.RENDER


async def test_render_failure_reported_by_a_source_without_a_planned_message() -> None:
    query = _check(CheckKind.TEMPLATE, "lat", template="ops/lat")
    failure = QueryFailure(FailureKind.RENDER, "bad template")
    assert await _one(query, failure) == (
        Verdict.ERROR,
        None,
        "Metric template lat.ops query render error: bad template",
    )


async def test_plan_and_recording_end_to_end_recordings_hold_milliseconds(
    make_canary: CanaryFactory,
) -> None:
    canary = make_canary(
        [
            {"name": "request-success-rate", "thresholdRange": {"min": 99}},
            {"name": "request-duration", "thresholdRange": {"max": 500}},
        ],
        provider="kubernetes",
    )
    queries = plan_checks(canary, {}, provider="kubernetes", default_server="")
    recording = parse_csv(
        "time,target,metric,value\n"
        "0,canary,request-success-rate,99.5\n"
        # recordings hold the compared unit (ms) whatever the provider's query returns
        "0,canary,request-duration,212.7\n"
        "60,canary,request-duration,730\n"
    )
    now = [0.0]
    source = RecordedMetricSource(recording, lambda: now[0])
    first = await analyze(source, queries)
    assert [(r.verdict, r.value) for r in first] == [(Verdict.PASS, 99.5), (Verdict.PASS, 212.0)]
    now[0] = 60.0
    second = await analyze(source, queries)
    assert second[1].verdict is Verdict.FAIL
    assert second[1].message == "Halt podinfo.test advancement request duration 730ms > 500ms"
    assert second[1].to_json() == {
        "metric": "request-duration",
        "target": "canary",
        "value": 730.0,
        "min": None,
        "max": 500.0,
        "passed": False,
        "verdict": "fail",
    }
    now[0] = 400.0  # past the 5-minute lookback of every sample
    third = await analyze(source, queries)
    assert [r.verdict for r in third] == [Verdict.NO_DATA, Verdict.NO_DATA]


async def test_batches_are_fetched_and_scored_together_then_split_back() -> None:
    a = [_check(SR, lo=99.0), _check(CheckKind.TEMPLATE, "x", hi=1.0)]
    b: list[MetricQuery] = []
    c = [_check(DUR, hi=500.0, canary="prod/api")]
    source = StubSource([99.5, 2.0, 700.0])
    results = await analyze_batches(source, [a, b, c])
    assert len(source.fetches) == 1 and len(source.fetches[0]) == 3
    assert [[r.verdict for r in batch] for batch in results] == [
        [Verdict.PASS, Verdict.FAIL],
        [],
        [Verdict.FAIL],
    ]
    assert results[2][0].message == "Halt api.prod advancement request duration 700ms > 500ms"


async def test_first_failure_is_the_check_flagger_would_stop_at() -> None:
    queries = [_check(SR, lo=99.0), _check(DUR, hi=500.0), _check(CheckKind.QUERY, "q")]
    results = await analyze(StubSource([99.9, 900.0, math.nan]), queries)
    failed = first_failure(results)
    assert failed is results[1]
    assert first_failure(results[:1]) is None


async def test_a_source_answering_the_wrong_count_is_an_error() -> None:
    with pytest.raises(AnalysisError, match="answered 1 values for 2 queries"):
        await analyze(StubSource([1.0]), [_check(SR), _check(DUR)])


async def test_recorded_webhooks_answer_and_log_every_call() -> None:
    recording = Recording({}, {"load-test": [(60.0, False)]})
    now = [0.0]
    hooks = RecordedWebhooks(recording, lambda: now[0])
    load = config.Webhook(name="load-test", url="http://lt/", type="rollout")
    rollback = config.Webhook(name="abort", url="http://lt/rollback", type="rollback")
    assert (await hooks.call(load, {"phase": "Progressing"})).ok
    now[0] = 60.0
    failed = await hooks.call(load, {"phase": "Progressing"})
    assert not failed.ok and "since t=60s" in failed.message
    no_rollback = await hooks.call(rollback, {"phase": "Progressing"})
    assert not no_rollback.ok and "rollback webhook without rows" in no_rollback.message
    assert [c.to_json() for c in hooks.calls] == [
        {"hook": "load-test", "type": "rollout", "t": 0.0, "ok": True, "phase": "Progressing"},
        {"hook": "load-test", "type": "rollout", "t": 60.0, "ok": False, "phase": "Progressing"},
        {"hook": "abort", "type": "rollback", "t": 60.0, "ok": False, "phase": "Progressing"},
    ]
