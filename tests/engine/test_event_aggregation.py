"""The Kubernetes Events a driver writes are correlated as client-go's EventRecorder (Flagger's)
correlates them (engine.shell.events): a repeat updates the Event first written (count,
lastTimestamp), a spam budget per Canary, similar events combined; while the tick's report (what
simulate shows, what webhooks and logs get) keeps every event."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from engine import CanaryDriver, VirtualClock
from engine.shell import events
from engine.shell.events import (
    LRU_CACHE_ENTRIES,
    SPAM_BURST,
    SPAM_QPS,
    EventCorrelator,
    event_name,
    write_event,
)
from tests.engine.driver_world import NS, web_driver
from traffic import CANARY, EVENT, ClusterUnavailable, InMemoryCluster, ObjectRef

CANARY_REF = ObjectRef(CANARY, NS, "web")


def broken(target: str = "gone") -> tuple[InMemoryCluster, CanaryDriver, VirtualClock]:
    """A Canary whose target does not exist: the same Warning on every tick."""
    clock = VirtualClock()
    cluster, driver = web_driver(
        clock=clock, targetRef={"apiVersion": "apps/v1", "kind": "Deployment", "name": target}
    )
    return cluster, driver, clock


async def ticks(
    driver: CanaryDriver, clock: VirtualClock, n: int, every: float = 10.0
) -> list[str]:
    """``n`` ticks ``every`` seconds apart (the first at once when the clock is at its start,
    else ``every`` seconds on); the messages of their reports."""
    messages: list[str] = []
    for i in range(n):
        if i or clock.now() > 0:
            clock.advance(every)
        report = await driver.tick()
        messages += [e.message for e in report.events]
    return messages


def warnings(cluster: InMemoryCluster) -> list[dict[str, Any]]:
    return [e for e in cluster.events_for(NS, "web") if e["type"] == "Warning"]


def stamp(clock: VirtualClock) -> str:
    return clock.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")


async def retarget(cluster: InMemoryCluster, target: str) -> None:
    ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": target}
    await cluster.patch(CANARY_REF, {"spec": {"targetRef": ref}})


def test_the_defaults_are_client_gos() -> None:
    # k8s.io/client-go/tools/record/events_cache.go: maxLruCacheEntries,
    # defaultAggregateMaxEvents, defaultAggregateIntervalInSeconds, defaultSpamBurst/QPS
    assert LRU_CACHE_ENTRIES == 4096
    assert (SPAM_BURST, SPAM_QPS) == (25, 1.0 / 300.0)


def test_the_same_warning_on_five_ticks_is_one_event_counted_five_times() -> None:
    cluster, driver, clock = broken()
    first = stamp(clock)
    messages = asyncio.run(ticks(driver, clock, 5))
    assert messages == ["deployment gone.staging not found"] * 5  # the report keeps each one
    [event] = warnings(cluster)
    assert event["message"] == messages[0]
    assert event["count"] == 5
    assert event["firstTimestamp"] == first == "2026-01-01T00:00:00Z"
    assert event["lastTimestamp"] == stamp(clock) == "2026-01-01T00:00:40Z"
    assert event["metadata"]["name"].startswith("web.")
    assert cluster.calls["patch"] == 4


def test_a_different_message_is_a_new_event_and_a_repeat_goes_back_to_its_own() -> None:
    cluster, driver, clock = broken()

    async def run() -> None:
        await ticks(driver, clock, 2)
        await retarget(cluster, "other")
        await ticks(driver, clock, 3)
        await retarget(cluster, "gone")
        await ticks(driver, clock, 1)

    asyncio.run(run())
    found = {e["message"]: e for e in warnings(cluster)}
    assert {m: e["count"] for m, e in found.items()} == {
        "deployment gone.staging not found": 3,
        "deployment other.staging not found": 3,
    }
    gone, other = found.values()
    assert gone["metadata"]["name"] != other["metadata"]["name"]
    assert gone["firstTimestamp"] == "2026-01-01T00:00:00Z"
    assert gone["lastTimestamp"] == stamp(clock) == "2026-01-01T00:00:50Z"


def test_the_spam_filter_lets_25_writes_through_then_one_every_5_minutes() -> None:
    # a token bucket per Canary: 25 tokens, refilled one per 300 s; ticks 10 s apart
    cluster, driver, clock = broken()

    async def run() -> list[str]:
        messages = await ticks(driver, clock, 30)  # t 0..290 s
        assert warnings(cluster)[0]["count"] == SPAM_BURST  # the last 5: not written
        assert cluster.calls["patch"] == SPAM_BURST - 1
        messages += await ticks(driver, clock, 1)  # t 300 s: 1 token refilled since t 0
        # counted before the filter (as client-go): the write carries the 5 dropped ones
        assert warnings(cluster)[0]["count"] == 31
        assert warnings(cluster)[0]["lastTimestamp"] == stamp(clock)
        messages += await ticks(driver, clock, 29)  # t 310..590 s: no token
        assert warnings(cluster)[0]["count"] == 31
        messages += await ticks(driver, clock, 1)  # t 600 s
        assert warnings(cluster)[0]["count"] == 61
        return messages

    messages = asyncio.run(run())
    assert len(messages) == 61  # what the engine reports is never filtered
    assert len(warnings(cluster)) == 1
    assert cluster.calls["patch"] == SPAM_BURST + 1


def test_the_spam_budget_is_per_canary() -> None:
    correlator = EventCorrelator()
    for name in ("a", "b"):
        written = [
            correlator.correlate(_event(name, f"message {i}"), now=float(i)) for i in range(30)
        ]
        assert sum(w is not None for w in written) == SPAM_BURST


def test_a_deleted_event_is_written_again_with_its_name_and_count() -> None:
    cluster, driver, clock = broken()

    async def run() -> None:
        await ticks(driver, clock, 3)
        [event] = warnings(cluster)
        await cluster.delete(ObjectRef.of(event))  # kubectl delete, or the API server's TTL
        assert warnings(cluster) == []
        clock.advance(10.0)
        await driver.tick()

    asyncio.run(run())
    [event] = warnings(cluster)
    assert event["count"] == 4  # client-go creates it again as it would have patched it
    assert event["firstTimestamp"] == "2026-01-01T00:00:00Z"
    assert event["lastTimestamp"] == stamp(clock)
    assert cluster.calls["create"] >= 2


def test_an_exact_repeat_after_the_aggregation_interval_still_updates_its_event() -> None:
    # client-go keeps an exact duplicate's Event in its LRU with no time limit (only similar
    # events have the 10-minute interval): an hour later the same message counts on the same
    # Event (or re-creates it under that name, when the API server has expired it).
    cluster, driver, clock = broken()

    async def run() -> None:
        await ticks(driver, clock, 2)
        clock.advance(3600.0)
        await driver.tick()

    asyncio.run(run())
    [event] = warnings(cluster)
    assert event["count"] == 3
    assert (event["firstTimestamp"], event["lastTimestamp"]) == (
        "2026-01-01T00:00:00Z",
        "2026-01-01T01:00:10Z",
    )


def _event(name: str, message: str, *, kind: str = "Warning") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": event_name(name), "namespace": NS},
        "involvedObject": {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
        },
        "reason": "Synced",
        "message": message,
        "type": kind,
        "source": {"component": "flagger"},
        "firstTimestamp": "2026-01-01T00:00:00Z",
        "lastTimestamp": "2026-01-01T00:00:00Z",
        "count": 1,
    }


def test_similar_events_are_not_combined_by_default() -> None:
    cluster = InMemoryCluster()

    async def run() -> None:
        for i in range(12):
            await write_event(cluster, _event("web", f"Advance web.staging weight {i}"), float(i))

    asyncio.run(run())
    found = [(e["message"], e["count"]) for e in cluster.events_for(NS, "web")]
    assert found == [(f"Advance web.staging weight {i}", 1) for i in range(12)]


def test_the_state_is_bounded() -> None:
    correlator = EventCorrelator(cache_size=8)
    for i in range(100):
        correlator.correlate(_event(f"c{i}", "m"), now=float(i))
    # the first Canary's entry is gone: its next event is a new Event, not a patch
    written = correlator.correlate(_event("c0", "m"), now=100.0)
    assert written is not None and written.patch is None


def test_a_failed_write_is_logged_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    class Down(InMemoryCluster):
        async def create(self, body: dict[str, Any]) -> dict[str, Any]:
            raise ClusterUnavailable("503")

    warned: list[tuple[str, dict[str, Any]]] = []

    class Log:  # the module's logger (a cached structlog logger escapes capture_logs)
        def warning(self, event: str, **fields: Any) -> None:
            warned.append((event, fields))

        def debug(self, event: str, **fields: Any) -> None:
            pass

    monkeypatch.setattr(events, "log", Log())
    cluster = Down()
    asyncio.run(write_event(cluster, _event("web", "m"), 0.0))
    assert asyncio.run(cluster.list(EVENT, NS)) == []
    assert [event for event, _ in warned] == ["event_not_recorded"]
    assert "503" in warned[0][1]["error"]
