"""flagger_canary_metric_analysis is set where Flagger's SetAnalysis sets it.

Flagger's ``runBuiltinMetricChecks`` (request-success-rate, request-duration, inline queries, in
spec order) then ``runMetricChecks`` (templates, in spec order) record a metric's value once it is
read, before its threshold is compared, and return at the first failing metric: the later ones
are neither queried nor recorded on that tick, and a metric that failed without a value (query
error, no data) is not recorded. The checks here are planned and scored by the engine's own
``plan_checks`` / ``score_checks``, so they come in the engine's (Flagger's) order.
"""

from __future__ import annotations

from typing import Any

from analysis import FailureKind, QueryFailure, plan_checks, score_checks
from config import Canary, MetricTemplate, parse_canary, parse_metric_template
from engine.shell.loop import TickReport
from engine.shell.metrics import MetricsRecorder

NS = "staging"
GAUGE = "flagger_canary_metric_analysis"


def _canary(*extra: dict[str, Any]) -> Canary:
    # spec order: the template first; Flagger still reads it last (its second pass)
    metrics: list[dict[str, Any]] = [
        {"name": "errors", "templateRef": {"name": "errors"}, "thresholdRange": {"max": 5}},
        {"name": "request-success-rate", "thresholdRange": {"min": 99}},
        {"name": "request-duration", "thresholdRange": {"max": 500}},
        {"name": "latency-q", "query": "sum(up)", "thresholdRange": {"max": 10}},
        *extra,
    ]
    return parse_canary(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "app", "namespace": NS},
            "spec": {
                "provider": "kubernetes",
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"},
                "service": {"port": 80},
                "analysis": {
                    "interval": "1m",
                    "threshold": 2,
                    "stepWeight": 50,
                    "maxWeight": 50,
                    "metrics": metrics,
                },
            },
        }
    )


def _templates() -> dict[tuple[str, str], MetricTemplate]:
    template = parse_metric_template(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "MetricTemplate",
            "metadata": {"name": "errors", "namespace": NS},
            "spec": {"provider": {"type": "prometheus", "address": "http://p:9090"}, "query": "up"},
        }
    )
    return {(NS, "errors"): template}


def _gauges(canary: Canary, *ticks: dict[str, float | QueryFailure]) -> dict[str, float]:
    """Run ticks whose answers are given by metric name; the gauge's samples by metric."""
    recorder = MetricsRecorder(version="test", mesh_provider="kubernetes")
    checks = plan_checks(canary, _templates(), provider="kubernetes", default_server="http://p")
    for answers in ticks:
        results = score_checks(checks, [answers[c.query.metric] for c in checks])
        recorder.on_tick(canary, TickReport(t=0.0, checks=tuple(results)))
    found: dict[str, float] = {}
    for line in recorder.exposition().decode().splitlines():
        if line.startswith(GAUGE + "{"):
            labels, value = line.rsplit(" ", 1)
            found[labels.split('metric="')[1].split('"')[0]] = float(value)
    return found


HEALTHY: dict[str, float | QueryFailure] = {
    "request-success-rate": 99.5,
    "request-duration": 120.0,
    "latency-q": 3.0,
    "errors": 1.0,
}


def test_the_evaluation_order_is_builtin_and_inline_first_then_templates() -> None:
    checks = plan_checks(_canary(), _templates(), provider="kubernetes", default_server="x")
    assert [c.query.metric for c in checks] == [
        "request-success-rate",
        "request-duration",
        "latency-q",
        "errors",
    ]


def test_every_metric_is_recorded_when_every_check_passes() -> None:
    assert _gauges(_canary(), HEALTHY) == {
        "request-success-rate": 99.5,
        "request-duration": 0.12,  # seconds, as Flagger's val.Seconds()
        "latency-q": 3.0,
        "errors": 1.0,
    }


def test_a_threshold_failure_is_recorded_and_ends_the_tick() -> None:
    # request-duration breaches its max: Flagger sets it (the value was read), then returns;
    # the inline query and the template are never queried on that tick.
    gauges = _gauges(_canary(), HEALTHY | {"request-duration": 900.0})
    assert gauges == {"request-success-rate": 99.5, "request-duration": 0.9}


def test_the_first_failing_builtin_check_keeps_every_template_unrecorded() -> None:
    gauges = _gauges(_canary(), HEALTHY | {"request-success-rate": 50.0})
    assert gauges == {"request-success-rate": 50.0}


def test_no_data_or_an_error_records_nothing_for_it_and_ends_the_tick() -> None:
    no_data = QueryFailure(FailureKind.NO_DATA, "no values found")
    assert _gauges(_canary(), HEALTHY | {"request-duration": no_data}) == {
        "request-success-rate": 99.5
    }
    error = QueryFailure(FailureKind.TRANSPORT, "connection refused")
    assert _gauges(_canary(), HEALTHY | {"latency-q": error}) == {
        "request-success-rate": 99.5,
        "request-duration": 0.12,
    }


def test_later_metrics_keep_their_last_value_on_a_failing_tick() -> None:
    failing = HEALTHY | {"request-success-rate": 50.0, "latency-q": 7.0, "errors": 4.0}
    assert _gauges(_canary(), HEALTHY, failing) == {
        "request-success-rate": 50.0,
        "request-duration": 0.12,  # the first tick's values: not set again on the second
        "latency-q": 3.0,
        "errors": 1.0,
    }


def test_a_dry_run_failure_does_not_end_the_tick() -> None:
    # canary-engine's dryRun: the engine goes on past it, and so do the gauges
    dry = {"name": "dry", "query": "x", "thresholdRange": {"max": 1}, "dryRun": True}
    canary = _canary(dry)
    gauges = _gauges(canary, HEALTHY | {"dry": 2.0})
    assert gauges == {
        "request-success-rate": 99.5,
        "request-duration": 0.12,
        "latency-q": 3.0,
        "dry": 2.0,
        "errors": 1.0,
    }
