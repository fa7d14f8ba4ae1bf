"""A non-finite or non-numeric answer is never a pass (issue 10, "Values").

NaN and an empty vector are no data (Flagger's "no values found"); +Inf / -Inf (and numbers too
large for a float) are an ERROR naming the value; a sample that is not a number (true, null,
"abc", objects, wrong-shaped samples or series) is an ERROR naming what came back, never a crash.
Answers come from a respx-mocked Prometheus through ``PrometheusSource.fetch`` and are judged by
``score_checks``. Bounds: validation rejects non-finite ``thresholdRange`` and ``threshold``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import respx
import yaml

import config
from analysis import (
    Check,
    CheckKind,
    CheckResult,
    FailureKind,
    MetricQuery,
    PrometheusSource,
    QueryFailure,
    Verdict,
    evaluate,
    evaluate_reference,
    plan_checks,
    score_checks,
)
from analysis._grouping import GROUP_TARGET_LABEL
from engine.cli import main
from tests.analysis.conftest import PROM, canary_body, raw, raw_check

CanaryFactory = Callable[..., config.Canary]

QUERY_URL = f"{PROM}/api/v1/query"
T = 1767225600.0
INF = math.inf
NAN = math.nan


def answer(*items: Any, result_type: str = "vector") -> dict[str, Any]:
    """A Prometheus answer whose result holds ``items`` exactly as given (garbage included)."""
    return {"status": "success", "data": {"resultType": result_type, "result": list(items)}}


def scalar(sample: Any) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "scalar", "result": sample}}


def series(sample: Any, **labels: str) -> dict[str, Any]:
    return {"metric": labels, "value": sample}


async def judged(source: PrometheusSource, checks: list[Check]) -> list[CheckResult]:
    return score_checks(checks, await source.fetch([c.query for c in checks]))


async def judged_one(source: PrometheusSource, body: Any, check: Check) -> CheckResult:
    respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=body))
    [result] = await judged(source, [check])
    return result


# ---------------------------------------------------------------------------------------------
# Infinities: an error naming the value
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [("+Inf", "+Inf"), ("-Inf", "-Inf"), ("1e400", "+Inf"), ("-1e400", "-Inf"), ("Inf", "+Inf")],
)
@pytest.mark.parametrize(("lo", "hi"), [(0.0, None), (None, 5.0), (None, None), (-1.0, 1.0)])
@respx.mock
async def test_an_infinite_value_is_an_error_whatever_the_bounds(
    source: PrometheusSource, value: str, shown: str, lo: float | None, hi: float | None
) -> None:
    result = await judged_one(source, answer(series([T, value])), raw_check(lo=lo, hi=hi))
    assert result.verdict is Verdict.ERROR
    assert not result.passed and result.is_error
    assert result.value is None
    assert result.counted is Verdict.FAIL
    assert result.failure == QueryFailure(
        FailureKind.REJECTED, f"query returned a non-finite value {shown}"
    )
    assert result.message == (
        f"Prometheus query failed for custom: query returned a non-finite value {shown}"
    )


@pytest.mark.parametrize("number", ["1e400", "1" + "0" * 400, "-1e400"])
@respx.mock
async def test_a_json_number_too_large_for_a_float_is_infinite(
    source: PrometheusSource, number: str
) -> None:
    # Prometheus sends strings, but a proxy might not: a bare JSON number beyond float range
    # (a float that parses to inf, an integer that overflows) is infinite too.
    text = (
        '{"status": "success", "data": {"resultType": "vector", "result": '
        f'[{{"metric": {{}}, "value": [{T}, {number}]}}]}}}}'
    )
    respx.get(QUERY_URL).mock(return_value=httpx.Response(200, text=text))
    [result] = await judged(source, [raw_check(lo=0.0)])
    assert result.verdict is Verdict.ERROR
    sign = "-" if number.startswith("-") else "+"
    assert result.message.endswith(f"query returned a non-finite value {sign}Inf")


@respx.mock
async def test_a_success_rate_with_only_a_lower_bound_never_passes_on_inf(
    source: PrometheusSource, make_canary: CanaryFactory
) -> None:
    # The probe's finding: a canary whose only metric is the success rate was promoted on +Inf.
    canary = make_canary(
        [{"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}]
    )
    [check] = plan_checks(canary, {}, provider="istio", default_server=PROM)
    assert (check.lo, check.hi) == (99.0, None)
    result = await judged_one(source, answer(series([T, "+Inf"])), check)
    assert result.verdict is Verdict.ERROR
    assert result.message == (
        "Prometheus query failed: running query failed: query returned a non-finite value +Inf"
    )


@respx.mock
async def test_a_duration_that_overflows_when_scaled_is_an_error(
    source: PrometheusSource, make_canary: CanaryFactory
) -> None:
    canary = make_canary(
        [{"name": "request-duration", "thresholdRange": {"min": 1}, "interval": "1m"}],
        provider="kubernetes",
    )
    [check] = plan_checks(canary, {}, provider="kubernetes", default_server=PROM)
    assert check.query.scale == 1000.0  # seconds -> ms: 1e306 s is no float in ms
    result = await judged_one(source, answer(series([T, "1e306"])), check)
    assert result.verdict is Verdict.ERROR
    assert result.message == (
        "Prometheus query failed: running query failed: query returned a non-finite value +Inf"
    )


async def test_a_template_check_words_the_error_as_a_failed_metric_query() -> None:
    query = MetricQuery(canary="test/podinfo", metric="errors", kind=CheckKind.TEMPLATE)
    [result] = score_checks([Check(query=query, lo=0.0)], [-INF])
    assert result.verdict is Verdict.ERROR
    assert (
        result.message == "Metric query failed for errors: query returned a non-finite value -Inf"
    )


# ---------------------------------------------------------------------------------------------
# NaN and empty: no data, as in Flagger
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (answer(series([T, "NaN"])), "no values found (the query returned NaN)"),
        (answer(), "no values found (empty result)"),
        (scalar([T, "NaN"]), "no values found (the query returned NaN)"),
    ],
)
@respx.mock
async def test_nan_and_empty_are_no_data(
    source: PrometheusSource, body: dict[str, Any], detail: str
) -> None:
    result = await judged_one(source, body, raw_check(lo=0.0))
    assert result.verdict is Verdict.NO_DATA
    assert result.failure == QueryFailure(FailureKind.NO_DATA, detail)
    assert result.message == "Halt advancement no values found for metric: custom"


# ---------------------------------------------------------------------------------------------
# Not a number: an error naming what came back, never a crash
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            answer(series([T, True])),
            "query returned a sample value that is not a number: true",
        ),
        (
            answer(series([T, False])),
            "query returned a sample value that is not a number: false",
        ),
        (
            answer(series([T, None])),
            "query returned a sample value that is not a number: null",
        ),
        (
            answer(series([T, "abc"])),
            'query returned a sample value that is not a number: "abc"',
        ),
        (answer(series([T, ""])), 'query returned a sample value that is not a number: ""'),
        (
            answer(series([T, {"v": 1}])),
            'query returned a sample value that is not a number: {"v": 1}',
        ),
        (
            answer(series([T, [1]])),
            "query returned a sample value that is not a number: [1]",
        ),
        (
            answer(series([1, 2, 3])),
            'query returned a malformed sample [1, 2, 3] where [<time>, "<value>"] is expected',
        ),
        (
            answer(series([T])),
            f'query returned a malformed sample [{T}] where [<time>, "<value>"] is expected',
        ),
        (
            answer(series("12")),
            'query returned a malformed sample "12" where [<time>, "<value>"] is expected',
        ),
        (
            answer({"metric": {}}),
            'query returned a malformed sample null where [<time>, "<value>"] is expected',
        ),
        (
            answer("abc"),
            'query returned a malformed series "abc" where an object with "metric" and '
            '"value" is expected',
        ),
        (
            answer([T, "1"]),
            f'query returned a malformed series [{T}, "1"] where an object with "metric" and '
            '"value" is expected',
        ),
        (
            answer({"metric": "pod", "value": [T, "1"]}),
            'query returned series labels "pod" that are not an object',
        ),
        (scalar([T, True]), "query returned a sample value that is not a number: true"),
        (scalar([T, None]), "query returned a sample value that is not a number: null"),
        (
            scalar("abc"),
            'query returned a malformed sample "abc" where [<time>, "<value>"] is expected',
        ),
        (
            {"status": "success", "data": {"resultType": "string", "result": [T, "abc"]}},
            "query returned a string where an instant vector or scalar is expected",
        ),
        (
            {"status": "success", "data": {"resultType": "vector", "result": "abc"}},
            'query returned a malformed vector "abc" where a list of series is expected',
        ),
    ],
)
@respx.mock
async def test_a_sample_that_is_not_a_number_is_an_error_naming_it(
    source: PrometheusSource, body: dict[str, Any], detail: str
) -> None:
    result = await judged_one(source, body, raw_check(lo=0.0))
    assert result.verdict is Verdict.ERROR
    assert result.value is None
    assert result.failure == QueryFailure(FailureKind.REJECTED, detail)
    assert result.message == f"Prometheus query failed for custom: {detail}"


@respx.mock
async def test_a_long_garbage_value_is_clipped_in_the_message(source: PrometheusSource) -> None:
    result = await judged_one(source, answer(series([T, "x" * 500])), raw_check(lo=0.0))
    assert result.verdict is Verdict.ERROR
    assert result.failure is not None
    assert len(result.failure.message) < 160
    assert result.failure.message.endswith("…")


@respx.mock
async def test_grouped_answers_keep_each_targets_own_outcome(
    source: PrometheusSource, make_canary: CanaryFactory
) -> None:
    metric = {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}
    names = ("alpha", "bravo", "charlie", "delta", "echo")
    queries = [
        q
        for name in names
        for q in plan_checks(
            make_canary([metric], name=name), {}, provider="istio", default_server=PROM
        )
    ]
    labels = {"destination_workload_namespace": "test"}
    body = answer(
        series([T, "99.5"], destination_workload="alpha", **labels),
        series([T, "+Inf"], destination_workload="bravo", **labels),
        series([T, True], destination_workload="charlie", **labels),
        series([T, "NaN"], destination_workload="delta", **labels),
        # echo is missing: no data
    )
    route = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=body))
    results = await judged(source, queries)
    assert route.call_count == 1  # one grouped query for the five canaries
    assert [r.verdict for r in results] == [
        Verdict.PASS,
        Verdict.ERROR,
        Verdict.ERROR,
        Verdict.NO_DATA,
        Verdict.NO_DATA,
    ]
    assert results[1].message.endswith("query returned a non-finite value +Inf")
    assert results[2].message.endswith("query returned a sample value that is not a number: true")


@respx.mock
async def test_a_grouped_series_that_is_not_an_object_fails_every_member(
    source: PrometheusSource, make_canary: CanaryFactory
) -> None:
    metric = {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}
    queries = [
        q
        for name in ("alpha", "bravo")
        for q in plan_checks(
            make_canary([metric], name=name), {}, provider="istio", default_server=PROM
        )
    ]
    body = answer(series([T, "100"], destination_workload="alpha"), "garbage")
    respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=body))
    results = await judged(source, queries)
    assert [r.verdict for r in results] == [Verdict.ERROR, Verdict.ERROR]
    assert all('malformed series "garbage"' in r.message for r in results)
    assert GROUP_TARGET_LABEL not in results[0].message


@respx.mock
async def test_a_range_sample_that_is_true_or_null_is_not_a_number(
    source: PrometheusSource,
) -> None:
    from analysis import SeriesRequest

    range_url = f"{PROM}/api/v1/query_range"
    for value in (True, None, "abc"):
        body = answer({"metric": {}, "values": [[T, "1"], [T + 60, value]]}, result_type="matrix")
        respx.get(range_url).mock(return_value=httpx.Response(200, json=body))
        [got] = await source.fetch_series(
            [SeriesRequest(query=raw(), start=T, end=T + 60, step=60.0)]
        )
        assert got == QueryFailure(
            FailureKind.REJECTED, "the answer holds a sample that is not a number"
        )


async def test_score_checks_never_reads_a_non_number_from_a_source_as_a_value() -> None:
    queries = [raw_check(lo=0.0), raw_check(lo=0.0), raw_check(lo=0.0), raw_check(lo=0.0)]
    answers: list[Any] = [True, "abc", None, np.float32(1.5)]
    results = score_checks(queries, answers)
    assert [r.verdict for r in results] == [Verdict.ERROR] * 3 + [Verdict.PASS]
    assert results[0].message == (
        "Prometheus query failed for custom: the metric source answered a value that is not a "
        "number: True"
    )
    assert results[1].message.endswith("not a number: 'abc'")


# ---------------------------------------------------------------------------------------------
# The evaluator and its reference agree on infinities
# ---------------------------------------------------------------------------------------------


def test_evaluate_and_its_reference_agree_on_infinities() -> None:
    specials = [INF, -INF, NAN, 0.0, -0.0, 1.0, 1e308, -1e308, 5e-324]
    bounds = [-INF, INF, NAN, 0.0, 1.0, 1e308]
    rows = [
        (v, lo, hi, err)
        for v in specials
        for lo in bounds
        for hi in bounds
        for err in (False, True)
    ]
    values, lo, hi, failed = (list(column) for column in zip(*rows, strict=True))
    codes = evaluate(np.array(values), np.array(lo), np.array(hi), np.array(failed, dtype=np.bool_))
    reference = evaluate_reference(values, lo, hi, failed)
    assert codes.tolist() == reference
    for (value, _, _, err), code in zip(rows, reference, strict=True):
        if err or math.isinf(value):
            assert code == Verdict.ERROR
        elif math.isnan(value):
            assert code == Verdict.NO_DATA
        else:
            assert code in (Verdict.PASS, Verdict.FAIL)


# ---------------------------------------------------------------------------------------------
# Bounds: validation rejects non-finite ones
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "path", "got"),
    [
        ({"thresholdRange": {"min": NAN}}, "thresholdRange.min", "nan"),
        ({"thresholdRange": {"min": INF}}, "thresholdRange.min", "inf"),
        ({"thresholdRange": {"max": -INF}}, "thresholdRange.max", "-inf"),
        ({"thresholdRange": {"min": 90, "max": NAN}}, "thresholdRange.max", "nan"),
        ({"threshold": NAN}, "threshold", "nan"),
        ({"threshold": -INF}, "threshold", "-inf"),
    ],
)
def test_validation_rejects_non_finite_bounds(metric: dict[str, Any], path: str, got: str) -> None:
    body = canary_body([{"name": "request-success-rate", **metric}])
    with pytest.raises(config.SpecError) as caught:
        config.parse_canary(body)
    assert f"spec.analysis.metrics[0].{path}: must be a finite number, got {got}" in (
        caught.value.render()
    )


@pytest.mark.parametrize(
    ("written", "message"),
    [
        # Kubernetes' YAML reads 1e400 as a number (infinite); PyYAML alone would leave a string.
        ("1e400", "must be a finite number, got inf"),
        ("-1e400", "must be a finite number, got -inf"),
        # Unquoted `nan` is a string in YAML (only `.nan` is a float): refused as one.
        ("nan", "must be a number, got 'nan'"),
        ("'99'", "must be a number, got '99' (a quoted string; write it without quotes)"),
    ],
)
def test_bounds_written_in_yaml_are_read_as_the_api_server_reads_them(
    tmp_path: Path, written: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "canary.yaml"
    body = canary_body([{"name": "request-success-rate", "thresholdRange": {"min": 99}}])
    path.write_text(yaml.safe_dump(body).replace("min: 99", f"min: {written}"))
    assert main(["validate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert f"spec.analysis.metrics[0].thresholdRange.min: {message}" in out + err


def test_exponent_notation_is_a_number_as_kubectl_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "canary.yaml"
    body = canary_body([{"name": "request-success-rate", "thresholdRange": {"min": 99}}])
    path.write_text(yaml.safe_dump(body).replace("min: 99", "min: 9.9e1"))
    manifests = config.load_manifests([path])
    (canary,) = manifests.canaries
    metric = canary.spec.effective_analysis.metrics[0]
    assert metric.threshold_range is not None and metric.threshold_range.min == 99.0
    path.write_text(yaml.safe_dump(body).replace("min: 99", "min: 99e0"))
    (canary,) = config.load_manifests([path]).canaries
    assert canary.spec.effective_analysis.metrics[0].threshold_range.min == 99.0  # type: ignore[union-attr]


@pytest.mark.parametrize("metric", [{"thresholdRange": {"min": True}}, {"threshold": False}])
def test_validation_rejects_booleans_as_bounds(metric: dict[str, Any]) -> None:
    with pytest.raises(config.SpecError, match="must be a number, got"):
        config.parse_canary(canary_body([{"name": "request-success-rate", **metric}]))


def test_finite_bounds_still_validate() -> None:
    canary = config.parse_canary(
        canary_body(
            [
                {"name": "request-success-rate", "thresholdRange": {"min": 99, "max": 100}},
                {"name": "request-duration", "threshold": 500},
                {"name": "big", "query": "up", "thresholdRange": {"min": -1e308, "max": 1e308}},
            ]
        )
    )
    assert len(canary.spec.effective_analysis.metrics) == 3


def test_validate_exits_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "canary.yaml"
    body = canary_body([{"name": "request-success-rate", "thresholdRange": {"min": 99}}])
    text = yaml.safe_dump(body).replace("min: 99", "min: .nan")
    assert "min: .nan" in text
    path.write_text(text)
    assert main(["validate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert (
        "spec.analysis.metrics[0].thresholdRange.min: must be a finite number, got nan" in out + err
    )
