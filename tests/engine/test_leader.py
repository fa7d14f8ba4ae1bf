"""Leader election on a Lease: one holder acts, a standby takes over when the holder stops."""

from __future__ import annotations

import asyncio

import pytest

from engine import VirtualClock
from engine.shell.leader import LeaderElector, LeaseConfig, LostLeadership
from traffic import LEASE, InMemoryCluster, ObjectRef

CFG = {"namespace": "flux-system", "lease_duration": 15, "renew_deadline": 10, "retry_period": 2}


async def test_only_one_candidate_leads_and_the_other_takes_over_after_the_lease_expires() -> None:
    clock = VirtualClock()
    cluster = InMemoryCluster(now=clock.utcnow)
    a = LeaderElector(cluster, clock, LeaseConfig(identity="a", **CFG))
    b = LeaderElector(cluster, clock, LeaseConfig(identity="b", **CFG))
    worked: list[tuple[str, float]] = []
    stop_a = asyncio.Event()

    async def work(name: str, until: float | None) -> None:
        worked.append((name, clock.now()))
        while until is None or clock.now() < until:
            await clock.sleep(1)

    async def run_a() -> None:
        # a leads for 30 virtual seconds, then its process "dies" (stops renewing)
        task = clock.spawn(a.run(lambda: work("a", None)))
        await clock.sleep(30)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        stop_a.set()

    async def run_b() -> None:
        await clock.sleep(1)
        await b.run(lambda: work("b", clock.now() + 5))

    await asyncio.gather(clock.spawn(run_a()), clock.spawn(run_b()))
    assert worked[0][0] == "a" and worked[0][1] <= 2  # a elected on its first attempt
    assert worked[1][0] == "b"
    # b took over after a stopped renewing, within one lease duration (+ a retry period)
    assert 30 < worked[1][1] <= 30 + 15 + 2 + 2
    lease = cluster.peek(ObjectRef(LEASE, "flux-system", "canary-engine-leader-election"))
    assert lease is not None and lease["spec"]["holderIdentity"] == "b"
    assert lease["spec"]["leaseTransitions"] == 1


async def test_a_stale_write_loses_the_race() -> None:
    clock = VirtualClock()
    cluster = InMemoryCluster(now=clock.utcnow)
    a = LeaderElector(cluster, clock, LeaseConfig(identity="a", **CFG))
    assert await a.try_acquire_or_renew()
    b = LeaderElector(cluster, clock, LeaseConfig(identity="b", **CFG))
    assert not await b.try_acquire_or_renew()  # held and fresh


async def test_losing_the_lease_stops_the_work() -> None:
    clock = VirtualClock()
    cluster = InMemoryCluster(now=clock.utcnow)
    a = LeaderElector(cluster, clock, LeaseConfig(identity="a", **CFG))

    async def work() -> None:
        await clock.sleep(5)
        # someone else steals the lease (e.g. a network partition healed on their side)
        ref = ObjectRef(LEASE, "flux-system", "canary-engine-leader-election")
        await cluster.patch(ref, {"spec": {"holderIdentity": "intruder"}})
        while True:
            await clock.sleep(1)

    with pytest.raises(LostLeadership):
        await clock.run(a.run(work))


def test_timing_rules_are_checked() -> None:
    with pytest.raises(ValueError, match="lease_duration > renew_deadline"):
        LeaseConfig(identity="x", namespace="n", lease_duration=5, renew_deadline=10)


async def test_a_slow_renewal_never_lets_two_replicas_act_at_once() -> None:
    """The holder's renewal commits at once but its answer comes late, then its renewals fail.
    Counted from the answer, its renew deadline ran past the moment the standby (counting from
    the record it saw) took over, and both acted at once for a while."""
    from engine.shell.clock import RealClock
    from traffic.cluster import ClusterUnavailable

    clock = RealClock()
    inner = InMemoryCluster(now=clock.utcnow)
    delay = 0.8  # renew_deadline 1.0 + delay > lease_duration 1.5: the old overlap was 0.3 s

    class SlowThenFailing:
        renewals = 0

        def __getattr__(self, name: str) -> object:
            return getattr(inner, name)

        async def patch(self, ref: ObjectRef, patch: dict[str, object], **kw: object) -> object:
            spec = patch.get("spec")
            if ref.kind is LEASE and isinstance(spec, dict) and spec.get("holderIdentity") == "a":
                self.renewals += 1
                if self.renewals == 2:
                    done = await inner.patch(ref, patch, **kw)  # type: ignore[arg-type]
                    await clock.sleep(delay)
                    return done
                if self.renewals > 2:
                    raise ClusterUnavailable("500 Internal Server Error")
            return await inner.patch(ref, patch, **kw)  # type: ignore[arg-type]

    cluster = SlowThenFailing()
    acting: dict[str, list[float]] = {}

    def work(name: str) -> object:
        async def act() -> None:
            acting[name] = [clock.now(), float("inf")]
            try:
                await asyncio.Event().wait()
            finally:
                acting[name][1] = clock.now()

        return act

    timing = {
        "namespace": "flux-system",
        "lease_duration": 1.5,
        "renew_deadline": 1.0,
        "retry_period": 0.2,
    }

    async def candidate(name: str, start: float) -> None:
        await asyncio.sleep(start)
        elector = LeaderElector(cluster, clock, LeaseConfig(identity=name, **timing))  # type: ignore[arg-type]
        with pytest.raises((LostLeadership, asyncio.CancelledError)):
            await elector.run(work(name))  # type: ignore[arg-type]

    tasks = [asyncio.ensure_future(candidate("a", 0)), asyncio.ensure_future(candidate("b", 0.1))]
    await asyncio.sleep(4)
    for task in tasks:
        task.cancel()
    # each candidate ended as it should (a failed pytest.raises inside it is an error here)
    assert await asyncio.gather(*tasks, return_exceptions=True) == [None, None]
    assert cluster.renewals >= 2 and "b" in acting  # the slow renewal happened; b took over
    assert acting["a"][1] <= acting["b"][0], acting
