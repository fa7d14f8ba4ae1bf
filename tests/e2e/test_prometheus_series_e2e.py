"""Range queries end to end against a real Prometheus: ``PrometheusSource.fetch_series``.

Reuses ``test_prometheus_e2e``'s fixture (Debian's ``prometheus`` on 127.0.0.1 with a 1 s scrape
interval, scraping a prometheus-client exporter whose counters make the builtin queries' values
exact: success rate 99.5 % for ``good`` and the primaries, 50 % for ``bad``, P99 99.25 ms). After
a few seconds of scrapes, the builtin request-success-rate and request-duration queries are asked
as range queries for the canary and the primary targets: every step holds the value the exporter
implies, and the grouped range queries answer what the per-canary ones do: bit for bit for istio;
for kubernetes up to the last bit, as Prometheus' range evaluation sums the ``label_replace``-d
pods in no fixed order (``analysis._grouping``).
"""

from __future__ import annotations

import asyncio
import math
import time

import numpy as np
import pytest

from analysis import (
    QueryFailure,
    Verdict,
    analyze,
    judge_checks,
    open_metric_sources,
    plan_checks,
    plan_queries,
)
from analysis._prometheus import open_prometheus
from analysis._types import Series, SeriesRequest
from config import parse_canary
from tests.e2e.test_prometheus_e2e import (
    EXPECTED,
    P99_MS,
    LivePrometheus,
    canary_body,
    planned,
    prometheus,  # noqa: F401  (the module-scoped fixture: Prometheus and its exporter)
)

pytestmark = pytest.mark.slow

STEP = 1.0
SAMPLES = 5  # steps after the fixture saw the first value, so every one of them has data


async def _no_sleep(seconds: float) -> None:
    return None


async def _window_after(live: LivePrometheus, steps: int) -> tuple[float, float]:
    """A window of ``steps`` whole seconds, all with data, whose scrapes are stored by now."""
    start = math.ceil(live.ready_at)
    end = start + steps * STEP
    await asyncio.sleep(max(0.0, end + 1.5 - time.time()))
    return float(start), end


@pytest.mark.parametrize("provider", ["kubernetes", "istio"])
async def test_builtin_range_queries_return_what_the_exporter_implies(
    prometheus: LivePrometheus,  # noqa: F811
    provider: str,
) -> None:
    start, end = await _window_after(prometheus, SAMPLES)
    requests: list[SeriesRequest] = []
    workloads: list[str] = []
    for name in ("good", "bad"):
        for target in ("canary", "primary"):
            for query in planned(prometheus.url, name, provider, target):
                requests.append(SeriesRequest(query=query, start=start, end=end, step=STEP))
                workloads.append(name if target == "canary" else f"{name}-primary")
    async with open_prometheus(sleep=_no_sleep) as source:
        answers = await source.fetch_series(requests)
        assert source.requests_sent == 2  # one grouped range query per builtin shape
    expected_times = [start + k * STEP for k in range(SAMPLES + 1)]
    for request, workload, answer in zip(requests, workloads, answers, strict=True):
        assert isinstance(answer, Series), (workload, answer)
        assert answer.times.tolist() == expected_times, workload
        want = EXPECTED[workload] if request.query.metric == "request-success-rate" else P99_MS
        assert answer.values.tolist() == pytest.approx([want] * len(expected_times), rel=1e-9), (
            workload,
            request.query.metric,  # the duration already in ms, both providers
        )


@pytest.mark.parametrize("provider", ["kubernetes", "istio"])
async def test_grouped_and_per_canary_range_answers_are_identical(
    prometheus: LivePrometheus,  # noqa: F811
    provider: str,
) -> None:
    start, end = await _window_after(prometheus, SAMPLES)
    requests = [
        # the canary since "the analysis started", the primary with history before that
        # (before the fixture saw data: those steps are simply absent)
        SeriesRequest(
            query=query,
            start=start + 2 if target == "canary" else start - 10,
            end=end,
            step=STEP,
        )
        for name in ("good", "bad", "absent")
        for target in ("canary", "primary")
        for query in planned(prometheus.url, name, provider, target)
    ]
    async with (
        open_prometheus(sleep=_no_sleep) as grouped,
        open_prometheus(sleep=_no_sleep, group=False) as single,
    ):
        together = await grouped.fetch_series(requests)
        alone = await single.fetch_series(requests)
        assert (grouped.requests_sent, single.requests_sent) == (2, len(requests))
    for request, a, b in zip(requests, together, alone, strict=True):
        assert not isinstance(a, QueryFailure) and not isinstance(b, QueryFailure), (a, b)
        assert np.array_equal(a.times, b.times), request.query.canary
        if provider == "istio":  # sum by (...) over the selector: the per-canary sum exactly
            assert np.array_equal(a.values, b.values, equal_nan=True), request.query.canary
        else:  # sum over label_replace(...): Prometheus sums the pods in no fixed order
            assert np.allclose(a.values, b.values, rtol=1e-12, atol=0.0), request.query.canary
        if request.query.canary.endswith("/absent"):
            assert len(a) == 0
        else:
            assert len(a) >= SAMPLES - 1 and np.isfinite(a.values).all()
            assert a.times[0] >= request.start and a.times[-1] == end


@pytest.mark.parametrize("provider", ["kubernetes", "istio"])
async def test_the_judge_reads_its_series_from_prometheus(
    prometheus: LivePrometheus,  # noqa: F811
    provider: str,
) -> None:
    """``judge_checks`` through the real Prometheus: the canary answering 50 % (``bad``) is held
    to its primary's envelope (99.5 %) and fails with the numbers; ``good`` passes."""
    start, end = await _window_after(prometheus, SAMPLES)
    verdicts = {}
    async with open_prometheus(sleep=_no_sleep) as source:
        for name in ("good", "bad"):
            body = canary_body(name, provider)
            body["spec"]["analysis"]["metrics"][0] = {
                "name": "request-success-rate",
                "interval": "1m",
                "judge": {
                    "baseline": "primary",
                    "harmful": "decrease",
                    "window": "1m",
                    "step": "1s",
                    "minHistory": 3,
                },
            }
            canary = parse_canary(body)
            plan = plan_checks(canary, {}, provider=provider, default_server=prometheus.url)
            primary = plan_queries(
                canary, {}, provider=provider, default_server=prometheus.url, target="primary"
            )
            static = await analyze(source, plan)
            results = await judge_checks(
                source, canary, static, primary, now=end, start=start + 2 * STEP
            )
            verdicts[name] = results[0]
    assert verdicts["good"].verdict is Verdict.PASS, verdicts["good"].explanation
    bad = verdicts["bad"]
    assert bad.verdict is Verdict.FAIL
    assert bad.explanation.startswith(
        "canary 50 below the primary's 1m before the analysis (median 99.5"
    )
    assert bad.message.startswith("Halt bad.")


@pytest.mark.parametrize("provider", ["kubernetes", "istio"])
async def test_the_controllers_cached_series_match_a_fresh_range_query(
    prometheus: LivePrometheus,  # noqa: F811
    provider: str,
) -> None:
    """The controller's source keeps what it answered (``analysis._series_cache``) and asks only
    for the newest seconds on the next tick: what the judge gets is still exactly what a fresh
    range query over the whole window answers."""
    start, end = await _window_after(prometheus, SAMPLES)
    later = end + 3 * STEP
    await asyncio.sleep(max(0.0, later + 1.5 - time.time()))

    def requests(at: float) -> list[SeriesRequest]:
        return [
            SeriesRequest(query=query, start=start - 10 + (at - end), end=at, step=STEP)
            for name in ("good", "bad")
            for query in planned(prometheus.url, name, provider, "primary")
        ]

    async with (
        open_metric_sources(sleep=_no_sleep, now=time.time) as cached,
        open_prometheus(sleep=_no_sleep) as fresh,
    ):
        await cached.fetch_series(requests(end))
        kept = await cached.fetch_series(requests(later))
        whole = await fresh.fetch_series(requests(later))
    for request, a, b in zip(requests(later), kept, whole, strict=True):
        assert isinstance(a, Series) and isinstance(b, Series), (a, b)
        assert a.times.tolist() == b.times.tolist(), request.query.canary
        assert np.allclose(a.values, b.values, rtol=1e-12, atol=0.0), request.query.canary
        assert len(a) >= SAMPLES and a.times[-1] == later
