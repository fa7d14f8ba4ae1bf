"""Judged checks: fetch the canary's and the primary's series and let the comparative judge decide.

``judge_ticks`` runs after the static checks of a tick (``analyze``), for one or many canaries at
once: for every metric with a ``judge`` it asks the source for two series — the canary query since
the analysis started, the same query for the primary from ``window`` before that — in one
``fetch_series`` call for all of them (a grouping source sends one range query per query shape),
judges all of them in one ``judge_batch`` pass (the envelope is the primary's ``window`` before
the analysis started; its samples since are the comparison guard), and merges each outcome with
the metric's static check (its ``thresholdRange``, if any): the check fails when either fails
(interfaces §2), and the thresholdRange alone decides while the judge has too little history.
Then every result gets its metric's policy (``dryRun``, ``onNoData``; ``CheckResult.counted``
applies them). Pure apart from the one fetch; no Kubernetes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from analysis._judge import JudgeInput, JudgeOutcome, judge_batch, number_text
from analysis._range_grid import CANARY_WINDOW_OFFSET
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
from config import Canary, Judge, Metric

#: Static verdicts that decide a judged check whatever the judge says.
_STATIC_WINS = (Verdict.ERROR, Verdict.FAIL)


@dataclass(frozen=True, slots=True, kw_only=True)
class JudgeTick:
    """One canary's tick to judge: its static ``results`` (``analyze``, Flagger's order), the same
    plan rendered for the primary (``plan_checks(..., target="primary")``), the tick's time and
    the clock time its analysis started (canary samples before it belong to an earlier run)."""

    canary: Canary
    results: Sequence[CheckResult]
    primary_queries: Sequence[MetricQuery]
    now: float
    start: float


@dataclass(frozen=True, slots=True)
class _Judged:
    tick: int  # index into the ticks
    index: int  # index into the tick's results
    judge: Judge
    canary_request: SeriesRequest
    primary_request: SeriesRequest
    when_silent: Verdict  # the verdict when neither version answered lately


async def judge_checks(
    source: MetricSource | SeriesSource,
    canary: Canary,
    results: Sequence[CheckResult],
    primary_queries: Sequence[MetricQuery],
    *,
    now: float,
    start: float,
) -> list[CheckResult]:
    """One canary's tick: ``judge_ticks`` for a single ``JudgeTick``."""
    tick = JudgeTick(
        canary=canary, results=results, primary_queries=primary_queries, now=now, start=start
    )
    return (await judge_ticks(source, [tick]))[0]


async def judge_ticks(
    source: MetricSource | SeriesSource, ticks: Sequence[JudgeTick]
) -> list[list[CheckResult]]:
    """Every tick's results with its judged metrics' verdicts and explanations merged in: one
    series fetch and one judge pass for all of them."""
    out: list[list[CheckResult]] = []
    judged: list[_Judged] = []
    for n, tick in enumerate(ticks):
        # (the results carry their own metric's dryRun / onNoData since planning; the judge is
        # looked up by name, which a judged metric has to itself: config refuses a namesake)
        metrics: dict[str, Metric] = {}
        for metric in tick.canary.spec.effective_analysis.metrics:
            metrics.setdefault(metric.name, metric)
        out.append(list(tick.results))
        judged.extend(_plan(n, tick, metrics))
    if not judged:
        return out
    requests = [r for j in judged for r in (j.canary_request, j.primary_request)]
    answers = await _fetch(source, requests)
    inputs: list[JudgeInput] = []
    failures: dict[int, QueryFailure] = {}
    for n, item in enumerate(judged):
        canary_series, primary_series = answers[2 * n], answers[2 * n + 1]
        pair = (canary_series, primary_series)
        failure = next((a for a in pair if isinstance(a, QueryFailure)), None)
        if failure is not None:
            failures[n] = failure
            canary_series = primary_series = Series.empty()
        assert isinstance(canary_series, Series) and isinstance(primary_series, Series)
        tick = ticks[item.tick]
        judge = item.judge
        inputs.append(
            JudgeInput(
                canary_times=canary_series.times,
                canary_values=canary_series.values,
                primary_times=primary_series.times,
                primary_values=primary_series.values,
                now=tick.now,
                start=tick.start,
                step=item.canary_request.step,
                window=judge.window_seconds,
                harmful=judge.harmful,
                confidence=judge.confidence,
                tolerance=judge.tolerance,
                min_history=judge.min_history,
                looks=_samples_judged(tick.canary, item.canary_request.step),
                when_silent=item.when_silent,
            )
        )
    for n, (item, outcome) in enumerate(zip(judged, judge_batch(inputs), strict=True)):
        results = out[item.tick]
        results[item.index] = _merge(results[item.index], outcome, failures.get(n))
    return out


def _plan(n: int, tick: JudgeTick, metrics: dict[str, Metric]) -> list[_Judged]:
    """The two series requests of every judged metric of one tick (its first query each)."""
    analysis = tick.canary.spec.effective_analysis
    primaries = {q.metric: q for q in tick.primary_queries}
    planned: list[_Judged] = []
    seen: set[str] = set()
    for index, result in enumerate(tick.results):
        metric = metrics.get(result.query.metric)
        if metric is None or metric.judge is None or metric.name in seen:
            continue
        seen.add(metric.name)
        judge = metric.judge
        step = judge.step_seconds(analysis.interval_seconds)
        primary = primaries.get(metric.name) or dataclasses.replace(result.query, target="primary")
        reference_start = min(tick.start, tick.now - step) - judge.window_seconds
        planned.append(
            _Judged(
                tick=n,
                index=index,
                judge=judge,
                # From just after the start: a point at the start reads the samples before it.
                canary_request=SeriesRequest(
                    query=result.query,
                    start=min(tick.start + CANARY_WINDOW_OFFSET, tick.now),
                    end=tick.now,
                    step=step,
                ),
                primary_request=SeriesRequest(
                    query=primary, start=reference_start, end=tick.now, step=step
                ),
                # A metric that states its no-data policy gets it; by default a source that
                # answers for neither version holds the weight (analysis._judge).
                when_silent=Verdict.INCONCLUSIVE if metric.on_no_data is None else Verdict.NO_DATA,
            )
        )
    return planned


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
    has_bounds = static.lo is not None or static.hi is not None
    if static.verdict in _STATIC_WINS or (has_bounds and static.verdict is Verdict.NO_DATA):
        # The thresholdRange decides: the sentence says so first, then what the judge saw.
        reason = f"{_static_reason(static)}; the judge alone: {explanation}"
        return dataclasses.replace(static, explanation=reason)
    if has_bounds and outcome.too_little_history:
        # Too little history for the judge to say anything: the metric's own thresholdRange,
        # which passed, decides (a judge without a baseline must not hold a good release).
        reason = explanation.removesuffix(" → inconclusive")
        within = number_text(static.value) if static.value is not None else "the value"
        return dataclasses.replace(
            static, explanation=f"{reason}; its thresholdRange decides: {within} within it → pass"
        )
    verdict = outcome.verdict
    message = "" if verdict is Verdict.PASS else f"{halt}: {explanation}"
    return dataclasses.replace(static, verdict=verdict, message=message, explanation=explanation)


def _static_reason(static: CheckResult) -> str:
    """Why the metric's thresholdRange decided the check, in the judge's words."""
    if static.verdict is Verdict.ERROR:
        return "its query failed → error"
    if static.verdict is Verdict.NO_DATA:
        return "no data for its thresholdRange → no data"
    value = static.value
    if value is not None and static.hi is not None and value > static.hi:
        return f"{number_text(value)} above its thresholdRange max {number_text(static.hi)} → fail"
    if value is not None and static.lo is not None and value < static.lo:
        return f"{number_text(value)} below its thresholdRange min {number_text(static.lo)} → fail"
    return "outside its thresholdRange → fail"


def _samples_judged(canary: Canary, step: float) -> int:
    """How many canary samples the analysis judges, each once against the fixed reference: one
    a tick, or the tick's share of samples when they are closer together than the ticks. The
    false-alarm budget (1 - confidence) is split over them."""
    interval = canary.spec.effective_analysis.interval_seconds
    per_tick = max(1, math.ceil(interval / step - 1e-9)) if step > 0 else 1
    return canary.spec.effective_analysis.planned_ticks * per_tick
