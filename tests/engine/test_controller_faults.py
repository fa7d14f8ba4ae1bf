"""The controller when the Kubernetes API misbehaves at the worst moment (each a failure the soak,
benchmarks/soak.py, found): a dropped Canary watch, a status write whose conflict re-read fails,
a 500 on the status write of a promotion. In-memory cluster, virtual time."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from analysis import MetricQuery, QueryFailure
from engine.shell.controller import BatchingAnalyzer, Controller, ControllerOptions
from tests.engine.test_controller import NS, Harness, canary_body, deployment
from traffic import (
    CANARY,
    DEPLOYMENT,
    Body,
    ClusterUnavailable,
    Conflict,
    InMemoryCluster,
    Kind,
    ObjectRef,
    WatchEvent,
)


class Faulty:
    """Delegates to the harness' InMemoryCluster; the tests override the calls they break."""

    def __init__(self, inner: InMemoryCluster) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def rewire(h: Harness, cluster: Faulty, source: Any | None = None) -> None:
    """Point the harness' driver and controller at ``cluster`` (and ``source``)."""
    changes: dict[str, Any] = {"cluster": cluster}
    if source is not None:
        changes.update(metrics=source, analyzer=BatchingAnalyzer(source, h.clock))
    h.deps = dataclasses.replace(h.deps, **changes)
    h.controller = Controller(h.deps, ControllerOptions(jitter=0.0), metrics=h.metrics)


def warnings(h: Harness, name: str) -> list[str]:
    return [e["message"] for e in h.cluster.events_for(NS, name) if e["type"] == "Warning"]


def primary_image(h: Harness, name: str) -> str:
    body = h.cluster.peek(ObjectRef(DEPLOYMENT, NS, f"{name}-primary"))
    assert body is not None
    return str(body["spec"]["template"]["spec"]["containers"][0]["image"])


async def test_a_dropped_canary_watch_is_opened_again() -> None:
    class DropsOnce(Faulty):
        watches = 0

        async def watch(self, kind: Kind, namespace: str | None) -> AsyncIterator[WatchEvent]:
            self.watches += 1
            first = self.watches == 1
            async for event in self.inner.watch(kind, namespace):
                yield event
                if first:  # the connection resets after the first Canary
                    raise ClusterUnavailable("watch canaries: the connection was reset")

    h = Harness()
    cluster = DropsOnce(h.cluster)
    rewire(h, cluster)
    h.cluster.seed(deployment("first"), deployment("second"))
    h.cluster.seed(canary_body("first"), canary_body("second"))
    # "second" only reaches the controller through the reopened watch
    await h.run_until(lambda: h.phase("first") == h.phase("second") == "Initialized", limit=120)
    assert cluster.watches == 2


async def test_a_status_conflict_is_resolved_against_the_server_not_a_lagging_cache() -> None:
    """Someone annotates the Canary just before the controller writes its status: the write
    conflicts. The watch has not brought the new version yet, so the cache still answers the
    old one: re-reading from it, all three attempts conflict and the tick's progress is lost
    (Flagger re-reads from the API server, as the retry must)."""

    class LaggingCache(Faulty):
        stale: Body | None = None  # the cache's copy while the watch lags
        edited = False

        async def patch(
            self,
            ref: ObjectRef,
            patch: Body,
            *,
            status: bool = False,
            expect_version: str | None = None,
        ) -> Body:
            weight = (patch.get("status") or {}).get("canaryWeight")
            if status and weight == 25 and not self.edited:
                self.edited = True
                self.stale = await self.inner.get(ref)
                # kubectl annotate, between the tick's read and its write
                await self.inner.patch(ref, {"metadata": {"annotations": {"team": "payments"}}})
            return await self.inner.patch(ref, patch, status=status, expect_version=expect_version)

        async def get(self, ref: ObjectRef, *, fresh: bool = False) -> Body | None:
            if self.stale is not None and ref.kind == CANARY and not fresh:
                return copy.deepcopy(self.stale)
            self.stale = None if fresh else self.stale
            return await self.inner.get(ref, fresh=fresh)

    h = Harness()
    cluster = LaggingCache(h.cluster)
    rewire(h, cluster)
    h.cluster.seed(deployment("app"), canary_body("app", stepWeight=25, maxWeight=50))
    await h.run_until(lambda: h.phase("app") == "Initialized")
    await h.set_image("app", "v2")
    canary = ObjectRef(CANARY, NS, "app")
    await h.run_until(
        lambda: ((h.cluster.peek(canary) or {}).get("status") or {}).get("canaryWeight") == 25,
        limit=600,
    )
    assert cluster.edited
    assert not any("could not be written" in w for w in warnings(h, "app"))


async def test_a_failed_reread_after_a_status_conflict_ends_the_tick_until_the_next_interval() -> (
    None
):
    """The tick that moved the canary to 50 % cannot write its status (409, then the re-read
    answers 429). Retried a second later, it would analyse the 50 % step for one second and
    promote; it must wait for the next interval like any failed write."""

    class ConflictThenThrottled(Faulty):
        armed = True
        reread_fails = False

        async def patch(
            self,
            ref: ObjectRef,
            patch: Body,
            *,
            status: bool = False,
            expect_version: str | None = None,
        ) -> Body:
            if self.armed and status and (patch.get("status") or {}).get("canaryWeight") == 50:
                self.armed, self.reread_fails = False, True
                raise Conflict("the object has been modified")
            return await self.inner.patch(ref, patch, status=status, expect_version=expect_version)

        async def get(self, ref: ObjectRef, *, fresh: bool = False) -> Body | None:
            if self.reread_fails and ref.kind == CANARY:
                self.reread_fails = False
                raise ClusterUnavailable("get canary: the server is overloaded (HTTP 429)")
            return await self.inner.get(ref, fresh=fresh)

    h = Harness()
    analysed: list[float] = []
    source = TimedSource(h, analysed)
    cluster = ConflictThenThrottled(h.cluster)
    rewire(h, cluster, source)
    h.cluster.seed(deployment("app"), canary_body("app", stepWeight=25, maxWeight=50))
    await h.run_until(lambda: h.phase("app") == "Initialized")
    await h.set_image("app", "v2")
    await h.run_until(lambda: h.phase("app") == "Succeeded")
    assert not cluster.armed and not cluster.reread_fails  # the fault was met
    assert any("could not be written" in w for w in warnings(h, "app"))
    gaps = [b - a for a, b in itertools.pairwise(analysed)]
    assert len(analysed) >= 2 and min(gaps) >= 60, analysed


async def test_a_500_on_the_status_write_of_a_promotion_does_not_lose_it() -> None:
    """The tick that copies v2 to the primary cannot write "Promoting" at first. Lost, the next
    tick would analyse again and, the metrics now failing, roll back to a primary that already
    runs v2 (Failed, with v2 serving); retried, the promotion completes."""

    class PromotingWriteFails(Faulty):
        failures = 1

        async def patch(
            self,
            ref: ObjectRef,
            patch: Body,
            *,
            status: bool = False,
            expect_version: str | None = None,
        ) -> Body:
            phase = (patch.get("status") or {}).get("phase") if status else None
            if phase == "Promoting" and self.failures:
                self.failures -= 1
                raise ClusterUnavailable("patch canary status: internal error (HTTP 500)")
            return await self.inner.patch(ref, patch, status=status, expect_version=expect_version)

    h = Harness()
    # healthy until the primary runs v2, failing from then on
    source = TimedSource(h, [], failing=lambda: primary_image(h, "app") == "app:v2")
    cluster = PromotingWriteFails(h.cluster)
    rewire(h, cluster, source)
    h.cluster.seed(deployment("app"), canary_body("app", threshold=1))
    await h.run_until(lambda: h.phase("app") == "Initialized")
    await h.set_image("app", "v2")
    await h.run_until(lambda: h.phase("app") in ("Succeeded", "Failed"))
    assert cluster.failures == 0  # the fault was met
    assert (h.phase("app"), primary_image(h, "app")) == ("Succeeded", "app:v2")


class TimedSource:
    """Healthy answers (or failing ones while ``failing()``); records when it was asked."""

    def __init__(
        self, h: Harness, times: list[float], *, failing: Callable[[], bool] = lambda: False
    ) -> None:
        self._h = h
        self._times = times
        self._failing = failing

    async def fetch(self, queries: Sequence[MetricQuery]) -> list[float | QueryFailure]:
        self._times.append(self._h.clock.now())
        await asyncio.sleep(0)
        bad = self._failing()
        return [
            (50.0 if bad else 99.9) if q.metric == "request-success-rate" else 120.0
            for q in queries
        ]


async def test_a_busy_api_server_on_a_ticks_first_read_is_a_warning_not_a_crash(
    monkeypatch: Any,
) -> None:
    """A 429/500 when a tick reads its Canary is expected in a fleet: one warning line (with no
    traceback and no secret), the same backoff, and the canary goes on."""
    import logging

    import structlog
    from structlog.testing import LogCapture

    import engine.shell.controller

    class BusyOnce(Faulty):
        failed = 0

        async def get(self, ref: ObjectRef, *, fresh: bool = False) -> Body | None:
            if ref.kind == CANARY and not self.failed:
                self.failed += 1
                raise ClusterUnavailable("HTTP 429 from https://user:hunter2@api.example/")
            return await self.inner.get(ref, fresh=fresh)

    capture = LogCapture()
    monkeypatch.setattr(
        engine.shell.controller,
        "log",
        structlog.wrap_logger(
            None,
            processors=[capture],
            wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        ),
    )
    h = Harness()
    h.cluster.seed(deployment("app"), canary_body("app"))
    cluster = BusyOnce(h.cluster)
    rewire(h, cluster)
    await h.run_until(lambda: h.phase("app") == "Initialized")
    assert cluster.failed == 1
    events = [e["event"] for e in capture.entries]
    assert "canary_read_unavailable" in events and "canary_task_crashed" not in events
    line = next(e for e in capture.entries if e["event"] == "canary_read_unavailable")
    assert "hunter2" not in str(line) and line["retry_in"] == 1.0
