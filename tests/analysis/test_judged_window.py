"""The judge's canary window: from just after the analysis started to the tick, never empty and
never invalid, whatever the clocks say."""

from __future__ import annotations

from typing import Any

from analysis import RecordedMetricSource, Recording, Verdict, analyze, plan_checks, plan_queries
from analysis._judged import JudgeTick, judge_ticks
from tests.analysis.conftest import CanaryFactory

HISTORY = [(float(t), 100.0) for t in range(-3600, 1, 60)]


async def _judge(make_canary: CanaryFactory, now: float, start: float) -> Any:
    metric = {
        "name": "latency",
        "interval": "1m",
        "query": "latency",
        "judge": {"baseline": "primary", "harmful": "increase", "window": "1h"},
    }
    canary = make_canary([metric], provider="kubernetes")
    recording = Recording({("primary", "latency"): HISTORY, ("canary", "latency"): HISTORY})
    source = RecordedMetricSource(recording, lambda: now)
    server = "http://prometheus:9090"
    plan = plan_checks(canary, {}, provider="kubernetes", default_server=server)
    primary = plan_queries(
        canary, {}, provider="kubernetes", default_server=server, target="primary"
    )
    static = await analyze(source, plan)
    tick = JudgeTick(canary=canary, results=static, primary_queries=primary, now=now, start=start)
    [[result]] = await judge_ticks(source, [tick])
    return result


async def test_a_tick_at_the_start_of_its_analysis_is_not_an_error(
    make_canary: CanaryFactory,
) -> None:
    # A tick at the very moment its analysis started, or one whose analysisStartTime is a little
    # ahead of this process's clock (a new leader on another node): nothing to judge yet, which
    # is not an invalid window ("the end is before the start" counted as a failed check).
    for start in (0.0, 0.0005, 2.0):
        result = await _judge(make_canary, now=0.0, start=start)
        assert result.verdict is not Verdict.ERROR, (start, result.explanation)
        assert "invalid series window" not in (result.explanation or "")
