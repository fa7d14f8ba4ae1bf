"""What must happen once per run happens once, whatever happens to the status write that ends
it; and the events of a run's start and end carry the phase Flagger sends them with.

Flagger writes the status (``SetStatusPhase(Succeeded)``, ``SyncStatus(Failed)``), returns if
that fails, and only then runs the post-rollout hooks, counts the outcome and announces the end
(scheduler.go). canary-engine ran them before the write: a lost write (a 500, three conflicts, a
controller killed in between) left the Canary Finalising or Progressing, and the next tick ran
the post-rollout hooks, the final event and the count again (found by a restart probe).
"""

from __future__ import annotations

from typing import Any

from driver_world import NS, Recorder, web_driver

from config import CanaryStatus, Phase
from engine import CanaryDriver, VirtualClock
from traffic import CANARY, DEPLOYMENT, ClusterUnavailable, InMemoryCluster, ObjectRef

POST_ROLLOUT = {"name": "notify", "type": "post-rollout", "url": "http://hooks/notify"}
EVENTS = {"name": "audit", "type": "event", "url": "http://hooks/audit"}


class Failing:
    async def fetch(self, queries: Any) -> list[float]:
        return [50.0 for _ in queries]


def world(
    *, healthy: bool = True, clock: VirtualClock | None = None
) -> tuple[InMemoryCluster, CanaryDriver, Recorder]:
    recorder = Recorder()
    analysis = {
        "interval": "1m",
        "threshold": 1,
        "stepWeight": 50,
        "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}],
        "webhooks": [POST_ROLLOUT, EVENTS],
    }
    cluster, driver = web_driver(
        clock=clock,
        caller=recorder,
        metrics=None if healthy else (lambda _clock: Failing()),
        analysis=analysis,
    )
    return cluster, driver, recorder


def lose_the_status_write_of(cluster: InMemoryCluster, phase: str) -> None:
    """The first status write that would store ``phase`` fails with a 500."""
    patch = cluster.patch
    lost = []

    async def failing(ref: ObjectRef, body: Any, **kwargs: Any) -> Any:
        if kwargs.get("status") and (body.get("status") or {}).get("phase") == phase and not lost:
            lost.append(phase)
            raise ClusterUnavailable("500 Internal Server Error")
        return await patch(ref, body, **kwargs)

    cluster.patch = failing  # type: ignore[method-assign]


def phase_of(cluster: InMemoryCluster) -> str:
    body = cluster.peek(ObjectRef(CANARY, NS, "web")) or {}
    return str((body.get("status") or {}).get("phase", ""))


async def release(cluster: InMemoryCluster, driver: CanaryDriver, until: str) -> None:
    """Initialise, roll out web:2, tick until the Canary is ``until`` (and one tick more)."""
    await driver.tick()
    assert phase_of(cluster) == "Initialized"
    await cluster.patch(
        ObjectRef(DEPLOYMENT, NS, "web"),
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:2"}]}}}},
    )
    for _ in range(12):
        await driver.tick()
        if phase_of(cluster) == until:
            break
    assert phase_of(cluster) == until
    await driver.tick()  # at rest: nothing more happens


def calls(recorder: Recorder, hook: str) -> list[str]:
    return [payload["phase"] for h, payload in recorder.calls if h.name == hook]


def events(recorder: Recorder) -> list[tuple[str, str]]:
    return [
        (payload["metadata"]["eventMessage"], payload["phase"])
        for h, payload in recorder.calls
        if h.name == "audit"
    ]


async def test_a_lost_succeeded_write_does_not_run_the_post_rollout_hooks_twice() -> None:
    cluster, driver, recorder = world()
    lose_the_status_write_of(cluster, "Succeeded")
    await release(cluster, driver, "Succeeded")
    assert calls(recorder, "notify") == ["Succeeded"]
    done = [m for m, _ in events(recorder) if m.startswith("Promotion completed!")]
    assert done == ["Promotion completed! Scaling down web.staging"]


async def test_a_lost_failed_write_does_not_run_the_post_rollout_hooks_twice() -> None:
    cluster, driver, recorder = world(healthy=False)
    lose_the_status_write_of(cluster, "Failed")
    await release(cluster, driver, "Failed")
    assert calls(recorder, "notify") == ["Failed"]


async def test_the_post_rollout_answer_is_in_the_last_analysis() -> None:
    cluster, driver, _ = world()
    await release(cluster, driver, "Succeeded")
    body = cluster.peek(ObjectRef(CANARY, NS, "web")) or {}
    status = CanaryStatus.from_body(body.get("status"))
    assert status.phase is Phase.SUCCEEDED
    assert status.last_analysis is not None
    hooks = {(w.name, w.type, w.ok) for w in status.last_analysis.webhooks}
    assert ("notify", "post-rollout", True) in hooks


async def test_a_runs_start_and_failure_events_carry_flaggers_phases() -> None:
    # Flagger's events_test.go: "New revision detected! Scaling up" is sent Progressing, and
    # rollback() records "Canary failed! Scaling down" on a copy already Failed
    cluster, driver, recorder = world(healthy=False)
    await release(cluster, driver, "Failed")
    phases = dict(events(recorder))
    assert phases["New revision detected! Scaling up web.staging"] == "Progressing"
    assert phases["Canary failed! Scaling down web.staging"] == "Failed"


async def test_each_releases_post_rollout_answer_is_recorded_with_its_time() -> None:
    # the answer of a later release's post-rollout hook replaces the earlier one's, time and
    # all (an answer equal but for its time used to be kept as it was)
    clock = VirtualClock()
    cluster, driver, _ = world(clock=clock)

    def post_rollout_time() -> str:
        body = cluster.peek(ObjectRef(CANARY, NS, "web")) or {}
        analysis = CanaryStatus.from_body(body.get("status")).last_analysis
        assert analysis is not None
        (hook,) = [w for w in analysis.webhooks if w.type == "post-rollout"]
        return hook.time

    times = []
    await driver.tick()  # initialised
    for image in ("web:2", "web:3"):
        await cluster.patch(
            ObjectRef(DEPLOYMENT, NS, "web"),
            {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}},
        )
        for _ in range(12):
            await driver.tick()
            clock.advance(60)
            if phase_of(cluster) == "Succeeded":
                break
        times.append(post_rollout_time())
    assert times[0] != times[1]


async def test_a_lost_last_analysis_write_after_the_run_ended_is_not_a_failed_tick() -> None:
    # the run's end is written; the small write of the post-rollout answers that follows it
    # fails: the tick reports the written status, no "could not be written" event
    cluster, driver, recorder = world()
    patch = cluster.patch
    phases: list[str | None] = []

    async def flaky(ref: ObjectRef, body: Any, **kwargs: Any) -> Any:
        if kwargs.get("status"):
            phases.append((body.get("status") or {}).get("phase"))
            if len(phases) >= 2 and phases[-2] == "Succeeded":
                raise ClusterUnavailable("500 Internal Server Error")
        return await patch(ref, body, **kwargs)

    cluster.patch = flaky  # type: ignore[method-assign]
    await driver.tick()
    await cluster.patch(
        ObjectRef(DEPLOYMENT, NS, "web"),
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:2"}]}}}},
    )
    for _ in range(12):
        report = await driver.tick()
        if phase_of(cluster) == "Succeeded":
            break
    assert report.status is not None and report.status.phase is Phase.SUCCEEDED
    assert report.error is None
    assert not [m for m, _ in events(recorder) if "could not be written" in m]
