"""The judge's canary window: from just after the analysis started to the tick, never empty and
never invalid, whatever the clocks say."""

from __future__ import annotations

from typing import Any

from analysis import RecordedMetricSource, Recording, Verdict, analyze, plan_checks, plan_queries
from analysis._judged import JudgeTick, judge_ticks
from config import parse_canary

HISTORY = [(float(t), 100.0) for t in range(-3600, 1, 60)]


def _canary() -> Any:
    metric = {
        "name": "latency",
        "interval": "1m",
        "query": "latency",
        "judge": {"baseline": "primary", "harmful": "increase", "window": "1h"},
    }
    return parse_canary(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "app", "namespace": "test"},
            "spec": {
                "provider": "kubernetes",
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"},
                "service": {"port": 80},
                "analysis": {
                    "interval": "1m",
                    "threshold": 2,
                    "maxWeight": 50,
                    "stepWeight": 10,
                    "metrics": [metric],
                },
            },
        }
    )


async def _judge(now: float, start: float) -> Any:
    canary = _canary()
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


async def test_a_tick_at_the_start_of_its_analysis_is_not_an_error() -> None:
    # A tick at the very moment its analysis started, or one whose analysisStartTime is a little
    # ahead of this process's clock (a new leader on another node): nothing to judge yet, which
    # is not an invalid window ("the end is before the start" counted as a failed check).
    for start in (0.0, 0.0005, 2.0):
        result = await _judge(now=0.0, start=start)
        assert result.verdict is not Verdict.ERROR, (start, result.explanation)
        assert "invalid series window" not in (result.explanation or "")
