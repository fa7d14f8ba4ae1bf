"""Judged checks: fetch the canary's and the primary's series and let the comparative judge decide.

``judge_checks`` runs after the static checks of a tick (``analyze``). For every metric with a
``judge`` it asks the source for two series in one batch — the canary query since the analysis
started, the same query for the primary since ``history`` before that — judges all of them in one
``judge_batch`` pass, and merges each outcome with the metric's static check (its
``thresholdRange``, if any): the check fails when either fails (interfaces §2). Then every
result gets its metric's policy (``dryRun``, ``onNoData``; ``CheckResult.counted`` applies them).
Pure apart from the one fetch; no Kubernetes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from analysis._judge import JudgeInput, JudgeOutcome, judge_batch
from analysis._types import (
    CheckResult,
    FailureKind,
    MetricQuery,
    MetricSource,
    QueryFailure,
    Series,
    SeriesRequest,
    SeriesSource,
    Verdict,
)
from config import Canary, Judge, Metric, Strategy, parse_duration

#: Static verdicts that decide a judged check whatever the judge says.
_STATIC_WINS = (Verdict.ERROR, Verdict.FAIL)


async def judge_checks(
    source: MetricSource | SeriesSource,
    canary: Canary,
    results: Sequence[CheckResult],
    primary_queries: Sequence[MetricQuery],
    *,
    now: float,
    start: float,
) -> list[CheckResult]:
    """The tick's results with every judged metric's verdict and explanation merged in.

    ``results`` are the static results of ``analyze`` in Flagger's order; ``primary_queries``
    the same plan rendered for the primary (``plan_checks(..., target="primary")``); ``start``
    the clock time the analysis started (canary samples before it belong to an earlier run).
    """
    analysis = canary.spec.effective_analysis
    metrics = {m.name: m for m in analysis.metrics}
    primaries = {q.metric: q for q in primary_queries}
    step_default = analysis.interval_seconds
    judged: list[tuple[int, Metric, Judge]] = []
    requests: list[SeriesRequest] = []
    seen: set[str] = set()
    for index, result in enumerate(results):
        metric = metrics.get(result.query.metric)
        if metric is None or metric.judge is None or metric.name in seen:
            continue
        seen.add(metric.name)  # one judged check per metric (its first query)
        judge = metric.judge
        step = parse_duration(judge.step) if judge.step else step_default
        primary = primaries.get(metric.name) or dataclasses.replace(result.query, target="primary")
        judged.append((index, metric, judge))
        requests.append(SeriesRequest(query=result.query, start=start, end=now, step=step))
        reference_start = min(start, now - step) - judge.window_seconds
        requests.append(SeriesRequest(query=primary, start=reference_start, end=now, step=step))

    out = [_with_policy(r, metrics.get(r.query.metric)) for r in results]
    looks = _looks(canary)
    if not judged:
        return out
    answers = await _fetch(source, requests)
    inputs: list[JudgeInput] = []
    failures: dict[int, QueryFailure] = {}
    for n, (_, _, judge) in enumerate(judged):
        canary_series, primary_series = answers[2 * n], answers[2 * n + 1]
        failure = next(
            (a for a in (canary_series, primary_series) if isinstance(a, QueryFailure)), None
        )
        if failure is not None:
            failures[n] = failure
            canary_series = primary_series = Series.empty()
        assert isinstance(canary_series, Series) and isinstance(primary_series, Series)
        inputs.append(
            JudgeInput(
                canary_times=canary_series.times,
                canary_values=canary_series.values,
                primary_times=primary_series.times,
                primary_values=primary_series.values,
                now=now,
                start=start,
                step=requests[2 * n].step,
                window=judge.window_seconds,
                harmful=judge.harmful,
                confidence=judge.confidence,
                tolerance=judge.tolerance,
                min_history=judge.min_history,
                looks=looks,
            )
        )
    outcomes = judge_batch(inputs)
    for n, (index, _, _) in enumerate(judged):
        out[index] = _merge(out[index], outcomes[n], failures.get(n))
    return out


async def _fetch(
    source: MetricSource | SeriesSource, requests: list[SeriesRequest]
) -> list[Series | QueryFailure]:
    fetch_series = getattr(source, "fetch_series", None)
    if fetch_series is None:
        failure = QueryFailure(
            FailureKind.REJECTED, "this metric source cannot answer series for a judge"
        )
        return [failure for _ in requests]
    answers: list[Series | QueryFailure] = await fetch_series(requests)
    return answers


def _merge(static: CheckResult, outcome: JudgeOutcome, failure: QueryFailure | None) -> CheckResult:
    query = static.query
    namespace, _, name = query.canary.partition("/")
    halt = f"Halt {name}.{namespace} advancement {query.metric}"
    if failure is not None:
        return dataclasses.replace(
            static,
            verdict=Verdict.ERROR,
            message=f"{halt}: the judge could not read its series: {failure.message}",
            failure=failure,
            explanation=f"series query failed: {failure.message}",
        )
    explanation = outcome.explanation
    has_bounds = query.lo is not None or query.hi is not None
    if static.verdict in _STATIC_WINS or (has_bounds and static.verdict is Verdict.NO_DATA):
        return dataclasses.replace(static, explanation=explanation)
    verdict = outcome.verdict
    message = "" if verdict is Verdict.PASS else f"{halt}: {explanation}"
    return dataclasses.replace(static, verdict=verdict, message=message, explanation=explanation)


def _looks(canary: Canary) -> int:
    """How many ticks the analysis judges: the steps to the maximum weight for the canary
    strategy, the iterations for blue/green and A/B testing."""
    analysis = canary.spec.effective_analysis
    if analysis.strategy is not Strategy.CANARY:
        return max(1, analysis.effective_iterations)
    if analysis.step_weights:
        return len(analysis.step_weights)
    step = analysis.step_weight or 0
    if step <= 0:
        return 1
    return max(1, math.ceil(analysis.effective_max_weight / step))


def _with_policy(result: CheckResult, metric: Metric | None) -> CheckResult:
    if metric is None or (not metric.dry_run and metric.on_no_data == "fail"):
        return result
    return dataclasses.replace(result, dry_run=metric.dry_run, on_no_data=metric.on_no_data)
