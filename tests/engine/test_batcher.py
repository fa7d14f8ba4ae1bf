"""The batcher every canary's analysis goes through (engine.shell.controller.Batcher): calls within
its window share one run; a call never waits on another canary's slow run, nor for ever.

Found by a probe: a canary that asked while another canary's batch was still fetching (a
Prometheus query takes up to its 5 s timeout) was queued where no flusher would take it; if no
other canary asked afterwards, its tick never returned — no progress, no rollback, no operator
command handled, traffic left split.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from analysis import Endpoint, MetricQuery, QueryFailure, Verdict
from engine import VirtualClock
from engine.shell.clock import RealClock
from engine.shell.controller import Batcher, BatchingAnalyzer
from tests.analysis.conftest import raw_check

pytestmark = pytest.mark.timeout(10)


class SlowRun:
    """Runs a batch; a batch holding ``"slow"`` waits until ``release`` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.batches: list[list[str]] = []

    async def __call__(self, items: list[str]) -> list[str]:
        self.batches.append(list(items))
        self.started.set()
        if "slow" in items:
            await self.release.wait()
        return [f"done {item}" for item in items]


async def test_calls_within_the_window_share_one_run() -> None:
    run, clock = SlowRun(), VirtualClock()
    batcher = Batcher(run, clock, window=0.05)
    answers = await asyncio.gather(batcher("a"), batcher("b"), batcher("c"))
    assert answers == ["done a", "done b", "done c"]
    assert run.batches == [["a", "b", "c"]]


async def test_a_call_during_another_canarys_slow_run_is_answered_without_waiting_for_it() -> None:
    # real time: a slow run is a network wait, which holds a virtual clock still
    run = SlowRun()
    batcher = Batcher(run, RealClock(), window=0.01)
    slow = asyncio.ensure_future(batcher("slow"))
    await asyncio.wait_for(run.started.wait(), 1)  # the slow batch is running
    # the other canary's tick: answered on its own, while the slow one still runs
    assert await asyncio.wait_for(batcher("fast"), 1) == "done fast"
    assert run.batches == [["slow"], ["fast"]]
    assert not slow.done()
    run.release.set()
    assert await slow == "done slow"


async def test_a_failed_run_fails_only_its_own_batch() -> None:
    # the two batches are in flight together: the good one is answered, the bad one fails
    fail, running = asyncio.Event(), asyncio.Event()

    async def run(items: list[str]) -> list[str]:
        if "bad" in items:
            running.set()
            await fail.wait()
            raise RuntimeError("query failed")
        return [f"done {item}" for item in items]

    batcher = Batcher(run, RealClock(), window=0.01)
    bad = asyncio.ensure_future(batcher("bad"))
    await asyncio.wait_for(running.wait(), 1)
    assert await asyncio.wait_for(batcher("good"), 1) == "done good"
    fail.set()
    with pytest.raises(RuntimeError, match="query failed"):
        await bad


class HangingEndpoint:
    """A MetricSource whose server ``hang`` never answers; every other answers 1.0 at once."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()

    async def fetch(self, queries: Sequence[MetricQuery]) -> list[float | QueryFailure]:
        if any(q.endpoint.server == "http://hang" for q in queries):
            self.asked.set()
            await asyncio.Event().wait()
        return [1.0] * len(queries)


async def test_a_canary_asking_a_hanging_server_never_holds_one_asking_another() -> None:
    # Both ask within one batch window: only the endpoints they ask decide who waits for whom
    # (found by a reviewer: a canary on Prometheus waited out another's Graphite timeout).
    source = HangingEndpoint()
    analyzer = BatchingAnalyzer(source, RealClock(), window=0.01)
    hanging = raw_check(endpoint=Endpoint(provider_type="graphite", server="http://hang"), hi=5)
    stuck = asyncio.ensure_future(analyzer([raw_check(hi=5.0), hanging]))
    [healthy] = await asyncio.wait_for(analyzer([raw_check(hi=5.0)]), 1)
    assert healthy.verdict is Verdict.PASS
    await asyncio.wait_for(source.asked.wait(), 1)
    assert not stuck.done()
    stuck.cancel()


async def test_canaries_asking_the_same_servers_share_one_fetch() -> None:
    fetched: list[int] = []

    class Counting:
        async def fetch(self, queries: Sequence[MetricQuery]) -> list[float | QueryFailure]:
            fetched.append(len(queries))
            return [1.0] * len(queries)

    analyzer = BatchingAnalyzer(Counting(), VirtualClock(), window=0.05)
    results = await asyncio.gather(*(analyzer([raw_check(hi=5.0)]) for _ in range(3)))
    assert [r.verdict for [r] in results] == [Verdict.PASS] * 3
    assert fetched == [3]
