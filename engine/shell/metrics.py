"""Flagger's Prometheus metrics, with Flagger's names and labels (Grafana dashboard 7726).

| metric | labels |
|---|---|
| flagger_info | version, mesh_provider |
| flagger_canary_total | namespace |
| flagger_canary_status (0 Progressing, 2 Failed, 1 other) | name, namespace |
| flagger_canary_weight | workload (``<target>-primary`` / ``<target>``), namespace |
| flagger_canary_metric_analysis (durations in seconds) | name, namespace, metric |
| flagger_canary_duration_seconds (histogram) | name, namespace |
| flagger_canary_successes_total / _failures_total | name, namespace, deployment_strategy,
  analysis_status |

``name`` is the target's name, as Flagger records it. flagger_canary_metric_analysis is set
where Flagger's ``SetAnalysis`` sets it: in evaluation order, up to the check the tick stopped at
(``_recorded``). prometheus_client does the exposition, without its ``_created`` series
(Flagger's Go client has none).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from analysis import CheckKind, CheckResult, Verdict
from config import ACTIVE_PHASES, Canary, Phase, status_gauge
from engine.core.effects import CountOutcome
from engine.shell.loop import TickReport

#: prometheus/client_golang's DefBuckets, which Flagger's histogram uses.
GO_DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class MetricsRecorder:
    def __init__(self, *, version: str, mesh_provider: str) -> None:
        # process-wide; no metric of this process wants them (the function is untyped upstream)
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        r = self.registry
        Gauge(
            "flagger_info",
            "Flagger version and mesh provider information",
            ["version", "mesh_provider"],
            registry=r,
        ).labels(version=version, mesh_provider=mesh_provider).set(1)
        self._total = Gauge(
            "flagger_canary_total", "Total number of canary object", ["namespace"], registry=r
        )
        self._status = Gauge(
            "flagger_canary_status",
            "Last canary analysis result",
            ["name", "namespace"],
            registry=r,
        )
        self._weight = Gauge(
            "flagger_canary_weight",
            "The virtual service destination weight current value",
            ["workload", "namespace"],
            registry=r,
        )
        self._analysis = Gauge(
            "flagger_canary_metric_analysis",
            "Last canary analysis result per metric",
            ["name", "namespace", "metric"],
            registry=r,
        )
        self._duration = Histogram(
            "flagger_canary_duration_seconds",
            "Seconds spent performing canary analysis.",
            ["name", "namespace"],
            buckets=GO_DEFAULT_BUCKETS,
            registry=r,
        )
        labels = ["name", "namespace", "deployment_strategy", "analysis_status"]
        self._successes = Counter(
            "flagger_canary_successes", "Total number of canary successes", labels, registry=r
        )
        self._failures = Counter(
            "flagger_canary_failures", "Total number of canary failures", labels, registry=r
        )

    def set_total(self, namespace: str, count: int) -> None:
        """flagger_canary_total of one namespace (0 once its last Canary is gone: a stale count
        would keep a dashboard showing canaries that no longer exist)."""
        self._total.labels(namespace=namespace).set(count)

    def on_tick(self, canary: Canary, report: TickReport) -> None:
        target, ns = canary.spec.target_ref.name, canary.metadata.namespace
        if report.status is not None and report.status.phase not in _NOT_YET:
            # (Flagger sets it from initialisation on: a Canary still initialising, its primary
            # not ready, has no status series yet.)
            self._status.labels(name=target, namespace=ns).set(status_gauge(report.status.phase))
        if report.routes is not None and _reached_the_routes(report):
            # The weight really routed (for the replica-split router, what it achieves).
            weights = report.routes.effective
            self._weight.labels(workload=f"{target}-primary", namespace=ns).set(weights.primary)
            self._weight.labels(workload=target, namespace=ns).set(weights.canary)
        for check, read in _recorded(report.checks):
            value = read / 1000 if check.query.kind is CheckKind.DURATION else read
            self._analysis.labels(name=target, namespace=ns, metric=check.query.metric).set(value)
        if report.analysed:  # every tick past the rollback check, as Flagger times them
            self._duration.labels(name=target, namespace=ns).observe(report.duration)

    def on_outcome(self, canary: Canary, outcome: CountOutcome) -> None:
        counter = self._successes if outcome.outcome == "success" else self._failures
        counter.labels(
            name=canary.spec.target_ref.name,
            namespace=canary.metadata.namespace,
            deployment_strategy=canary.spec.effective_analysis.strategy.value,
            analysis_status=outcome.analysis_status,
        ).inc()

    def exposition(self) -> bytes:
        # Bucket bounds as Go's client writes them (le="1", le="10"; Python's writes "1.0"): on
        # Prometheus 2 they are label values, so a query or alert written against Flagger's
        # (flagger_canary_duration_seconds_bucket{le="10"}) would match nothing.
        return _GO_BOUND.sub(rb'le="\1"', generate_latest(self.registry))


#: Phases before Flagger first sets flagger_canary_status (§2.4 step 14).
_NOT_YET = frozenset({Phase.NONE, Phase.INITIALIZING})


def _reached_the_routes(report: TickReport) -> bool:
    """Whether Flagger would have set flagger_canary_weight on this tick. It sets it where it
    reads the routes back (flagger-behaviour.md §2.4 step 18), which only a tick that advances
    reaches: a run in progress (Progressing, Waiting, WaitingPromotion, Promoting, Finalising), or
    a resting Canary's tick that found a new revision, ended a run or rolled one back (a tick that
    told of something: one that only warns, say of a primary not ready, counts too, where Flagger
    stops a step earlier; the weights it records are those the last run left). So the series
    appear at the first rollout, not at initialisation, and a Canary at rest leaves them where
    its last run put them."""
    phase = report.status.phase if report.status is not None else None
    if phase is None or phase in _NOT_YET or phase is Phase.INITIALIZED:
        return False
    return phase in ACTIVE_PHASES or bool(report.events)


_GO_BOUND = re.compile(rb'le="(-?[0-9]+)\.0"')


def _recorded(checks: Sequence[CheckResult]) -> Iterator[tuple[CheckResult, float]]:
    """The checks of a tick (with their values) that Flagger records in
    flagger_canary_metric_analysis.

    Flagger's ``runBuiltinMetricChecks`` then ``runMetricChecks`` (the order of ``checks``) call
    ``SetAnalysis`` once a metric's value is read, before its threshold is compared, and return
    at the first failing metric: the metrics after it are neither queried nor recorded on that
    tick (their gauges keep their last values), and a metric that failed without a value (query
    error, no data) is not recorded either. The tick stops where the engine stops
    (``engine.core.machine``): at the first check that counts as a failure; a dry-run, passing
    or inconclusive check lets the analysis go on.
    """
    for check in checks:
        if check.value is not None:
            yield check, check.value
        if check.counted is Verdict.FAIL:
            return
