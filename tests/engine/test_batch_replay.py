"""The batch replay decides exactly as ``simulate`` does, tick for tick (issue 8, item 2).

Hypothesis draws random Canaries within what the batch models (canary steps, stepWeights,
blue/green iterations, thresholds, bounds, onNoData, dryRun, inconclusive budgets, pre-rollout,
rollout and rollback webhooks, stepWeightPromotion) and random recordings (gaps, stale samples,
values either side of the bounds, webhook answers changing over time), replays each pair both
ways, and compares every tick's phase, weights, failed checks and iterations, the result and the
decision time.
"""

from __future__ import annotations

import asyncio
import math
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from analysis import Recording
from analysis._replay import (
    PHASES,
    PROMOTED,
    ROLLED_BACK,
    UNDECIDED,
    ReplayLimits,
    batch_unsupported,
    compile_plan,
    replay_batch,
)
from config import Manifests, parse_canary
from engine.cli.simulate import MAX_TICKS, MAX_VIRTUAL_SECONDS, simulate, tick_json

LIMITS = ReplayLimits(MAX_TICKS, MAX_VIRTUAL_SECONDS)
RESULT_CODES = {"promoted": PROMOTED, "rolled_back": ROLLED_BACK, "undecided": UNDECIDED}
METRICS = ("request-success-rate", "request-duration", "error-rate")


def _canary_body(analysis: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "web", "namespace": "prod"},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "service": {"port": 80},
            "analysis": analysis,
        },
    }


@st.composite
def analyses(draw: st.DrawFn) -> dict[str, Any]:
    analysis: dict[str, Any] = {
        "interval": draw(st.sampled_from(["10s", "30s", "1m", "90s", "2m"])),
        "threshold": draw(st.integers(0, 5)),
        "inconclusiveLimit": draw(st.integers(0, 3)),
    }
    strategy = draw(st.sampled_from(["step", "weights", "blue-green"]))
    if strategy == "step":
        analysis["stepWeight"] = draw(st.integers(1, 60))
        analysis["maxWeight"] = draw(st.integers(1, 100))
    elif strategy == "weights":
        analysis["stepWeights"] = sorted(
            draw(st.lists(st.integers(1, 100), min_size=1, max_size=5, unique=True))
        )
    else:
        analysis["iterations"] = draw(st.integers(1, 5))
    if strategy != "blue-green" and draw(st.booleans()):
        analysis["stepWeightPromotion"] = draw(st.integers(1, 70))
    metrics = []
    if draw(st.booleans()):
        metrics.append({"name": "request-success-rate", "thresholdRange": {"min": 95}})
    if draw(st.booleans()):
        metrics.append({"name": "request-duration", "thresholdRange": {"max": 500}})
    if draw(st.booleans()):
        metrics.append(
            {"name": "error-rate", "query": "sum(rate(errors[1m]))", "thresholdRange": {"max": 5}}
        )
    for metric in metrics:
        metric["onNoData"] = draw(st.sampled_from(["fail", "fail", "inconclusive", "pass"]))
        metric["dryRun"] = draw(st.booleans()) and draw(st.booleans())
    analysis["metrics"] = metrics
    hooks = []
    for name, kind in (("acceptance", "pre-rollout"), ("load", "rollout"), ("abort", "rollback")):
        if draw(st.booleans()):
            hooks.append({"name": name, "type": kind, "url": "http://tester.test/"})
    analysis["webhooks"] = hooks
    return analysis


@st.composite
def recordings(draw: st.DrawFn) -> Recording:
    span = draw(st.integers(0, 1500))
    series: dict[tuple[str, str], list[tuple[float, float | None]]] = {}
    centre = {"request-success-rate": 95.0, "request-duration": 500.0, "error-rate": 5.0}
    for metric in METRICS:
        if not draw(st.booleans()) and draw(st.booleans()):
            continue  # a metric the recording never mentions: every check of it has no data
        samples: list[tuple[float, float | None]] = []
        t = float(draw(st.integers(-300, 60)))
        while t <= span:
            value: float | None
            if draw(st.integers(0, 9)) == 0:
                value = None
            else:
                value = centre[metric] * draw(st.sampled_from([0.5, 0.9, 0.999, 1.0, 1.001, 1.3]))
            samples.append((t, value))
            t += draw(st.sampled_from([10, 30, 60, 61, 200, 400]))
        series[("canary", metric)] = samples
    hooks: dict[str, list[tuple[float, bool]]] = {}
    for name in ("acceptance", "load", "abort"):
        rows = draw(st.lists(st.tuples(st.integers(-60, span), st.booleans()), max_size=3))
        if rows:
            hooks[name] = [(float(t), ok) for t, ok in rows]
    return Recording(series, hooks, source="generated")


def _simulate(body: dict[str, Any], recording: Recording) -> dict[str, Any]:
    canary = parse_canary(body)
    result = asyncio.run(simulate(Manifests(canaries=[canary]), canary, recording))
    return {
        "result": result.result,
        "decidedAt": result.decided_at,
        "ticks": [tick_json(t) for t in result.ticks],
    }


def _batch_ticks(body: dict[str, Any], recording: Recording) -> tuple[int, float, list[tuple]]:
    canary = parse_canary(body)
    assert batch_unsupported(canary, "kubernetes") is None
    out = replay_batch([compile_plan(canary, {}, "kubernetes")], [recording], LIMITS, trace=True)
    assert out.times is not None and out.phase is not None and out.weight is not None
    assert out.failed is not None and out.iterations is not None
    assert out.primary_weight is not None
    ticks = [
        (
            float(out.times[0][k]),
            PHASES[out.phase[0][0, k]].value,
            int(out.weight[0][0, k]),
            int(out.primary_weight[0][0, k]),
            int(out.failed[0][0, k]),
            int(out.iterations[0][0, k]),
        )
        for k in range(int(out.ticks[0, 0]))
    ]
    return int(out.result[0, 0]), float(out.decided_at[0, 0]), ticks


@settings(
    max_examples=int(os.environ.get("BATCH_REPLAY_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(analysis=analyses(), recording=recordings())
def test_batch_decides_as_simulate_tick_for_tick(
    analysis: dict[str, Any], recording: Recording
) -> None:
    body = _canary_body(analysis)
    expected = _simulate(body, recording)
    event(expected["result"])
    result, decided_at, ticks = _batch_ticks(body, recording)
    simulated = [
        (
            float(t["t"]),
            t["phase"],
            t["canaryWeight"],
            t["primaryWeight"],
            t["failedChecks"],
            t["iterations"],
        )
        for t in expected["ticks"]
    ]
    assert ticks == simulated
    assert result == RESULT_CODES[expected["result"]]
    if expected["decidedAt"] is None:
        assert math.isnan(decided_at)
    else:
        assert decided_at == expected["decidedAt"]


def test_many_settings_and_recordings_in_one_batch_match_one_at_a_time() -> None:
    """Plans of different intervals and recordings of different lengths share one call without
    leaking into each other: each pair decides as when replayed alone."""
    bodies = [
        _canary_body(
            {
                "interval": interval,
                "threshold": threshold,
                "stepWeight": 20,
                "maxWeight": 60,
                "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 95}}],
            }
        )
        for interval in ("30s", "1m")
        for threshold in (1, 3)
    ]
    good = Recording({("canary", "request-success-rate"): [(t, 99.0) for t in range(0, 900, 30)]})
    bad = Recording(
        {
            ("canary", "request-success-rate"): [
                (t, 99.0 if t < 90 else 90.0) for t in range(0, 600, 30)
            ]
        }
    )
    short = Recording({("canary", "request-success-rate"): [(0, 99.0)]})
    recs = [good, bad, short]
    canaries = [parse_canary(b) for b in bodies]
    together = replay_batch([compile_plan(c, {}, "kubernetes") for c in canaries], recs, LIMITS)
    for i, body in enumerate(bodies):
        for j, recording in enumerate(recs):
            expected = _simulate(body, recording)
            assert together.result[i, j] == RESULT_CODES[expected["result"]], (i, j)
            decided = expected["decidedAt"]
            assert (math.isnan(together.decided_at[i, j]) and decided is None) or (
                together.decided_at[i, j] == decided
            )
    assert (together.result[:, 0] == PROMOTED).all()
    assert (together.result[:, 1] == ROLLED_BACK).all()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"skipAnalysis": True}, "skipAnalysis"),
        ({"provider": "istio"}, "provider 'istio'"),
        (
            {"analysis": {"interval": "1m", "stepWeight": 10, "mirror": True, "metrics": []}},
            "mirroring",
        ),
        (
            {
                "analysis": {
                    "interval": "1m",
                    "stepWeight": 10,
                    "webhooks": [
                        {"name": "gate", "type": "confirm-promotion", "url": "http://g.test/"}
                    ],
                }
            },
            "gate webhooks (gate)",
        ),
        (
            {
                "analysis": {
                    "interval": "1m",
                    "stepWeight": 10,
                    "metrics": [
                        {
                            "name": "latency",
                            "query": "q",
                            "judge": {"baseline": "primary", "harmful": "increase"},
                        }
                    ],
                }
            },
            "a comparative judge on latency",
        ),
    ],
)
def test_what_the_batch_does_not_model_is_named(change: dict[str, Any], reason: str) -> None:
    body = _canary_body({"interval": "1m", "stepWeight": 10, "metrics": []})
    body["spec"].update(change)
    canary = parse_canary(body)
    provider = canary.spec.provider or "kubernetes"
    found = batch_unsupported(canary, provider)
    assert found is not None and reason in found
