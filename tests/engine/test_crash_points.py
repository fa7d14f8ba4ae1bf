"""A controller killed between two writes of a tick loses no progress: the next one, started on
the same cluster with nothing of the old one's memory, ends the run as an uninterrupted one
would, or where Flagger (whose state also lives only in the Canary status) would end it.

``crash_world`` runs a rollout on an InMemoryCluster and kills the controller right after a
chosen write: the write is applied, nothing after it in that process happens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from crash_world import CANARY_REF, PRIMARY, TARGET, Scenario, World, Write, release, run
from driver_world import web_driver

METRICS = [{"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}]
HOOKS = [
    {"name": "pre", "type": "pre-rollout", "url": "http://hooks/pre"},
    {"name": "post", "type": "post-rollout", "url": "http://hooks/post"},
]


def analysis(**fields: Any) -> dict[str, Any]:
    return {"interval": "1m", "threshold": 2, "metrics": METRICS, "webhooks": HOOKS, **fields}


def status_write(phase: str) -> Any:
    """The write that stores ``phase``."""

    def picks(write: Write) -> bool:
        status = (write.body or {}).get("status") if write.verb == "patch_status" else None
        return isinstance(status, Mapping) and status.get("phase") == phase

    return picks


def bad_release(version: str) -> Any:
    """While the controller is down, the user pushes ``web:<version>``, whose metrics fail."""

    async def push(w: World) -> None:
        w.metrics.value = 50.0
        containers = [{"name": "web", "image": f"web:{version}"}]
        await w.cluster.patch(TARGET, {"spec": {"template": {"spec": {"containers": containers}}}})

    return push


@pytest.mark.parametrize("provider", ["kubernetes", "istio"])
async def test_a_release_pushed_while_the_promotion_was_never_copied_gets_its_own_run(
    provider: str,
) -> None:
    """Killed after the Promoting status and before the copy (the copy comes once the status
    is written), and web:3 pushed before the next controller starts: web:2 can no longer reach
    the primary. It used to finish the promotion anyway: Succeeded, "Promotion completed!",
    lastPromotedSpec web:2's, the primary still on web:1 (and a later revert of the target to
    web:2 started no run). Now the run restarts for web:3, as Flagger's (which copies before it
    writes Promoting) would after a stop before its copy; web:3 fails and the primary, web:1,
    is the promoted revision."""
    scenario = Scenario(
        "promoting-lost",
        {"provider": provider, "analysis": analysis(stepWeight=50)},
        (release("2"),),
    )
    out = await run(scenario, status_write("Promoting"), while_down=bad_release("3"))
    assert out.crashed_at is not None
    assert out.status["phase"] == "Failed"
    assert out.workloads["web-primary"] == (3, "web:1")
    assert out.images[out.status["lastPromotedSpec"]] == "web:1"
    assert out.images[out.status["lastAppliedSpec"]] == "web:3"
    assert out.routes == (100, 0, False) and out.workloads["web"] == (0, "web:3")
    assert not any(m.startswith("Promotion completed!") for m in out.events)
    assert ("post", "Succeeded") not in out.hooks and out.outcomes == {"failure": 1}
    assert (
        out.events[
            "Promotion of web.staging not made: web-primary.staging never received the promoted "
            "revision, and web.staging no longer runs it"
        ]
        == 1
    )
    assert out.events["New revision detected! Restarting analysis for web.staging"] == 1


def primary_created(write: Write) -> bool:
    return write.verb == "create" and write.ref == "Deployment/staging/web-primary"


@pytest.mark.parametrize("healthy", [False, True])
async def test_a_release_pushed_before_the_initialized_write_is_analysed(healthy: bool) -> None:
    """Killed after the primary was created from web:1 and before Initialized, and web:2
    pushed meanwhile: the Initialized write recorded web:2 as the promoted revision (so does
    Flagger), which was then never analysed nor copied: the primary ran web:1 for good while the
    status said web:2, and reverting to web:2 started no run. Now the revision the primary does
    not run is left unrecorded, and analysed as a new one."""
    scenario = Scenario("init", {"provider": "istio", "analysis": analysis(stepWeight=50)}, ())

    async def push(w: World) -> None:
        await bad_release("2")(w)
        w.metrics.value = 99.9 if healthy else 50.0

    out = await run(scenario, primary_created, while_down=push)
    assert out.crashed_at is not None and primary_created(out.crashed_at)
    warning = (
        "web-primary.staging does not run the current template of web.staging (it changed "
        "after the primary was created): it is analysed as a new revision"
    )
    assert out.events[warning] == 1
    assert out.events["New revision detected! Scaling up web.staging"] == 1
    assert out.images[out.status["lastAppliedSpec"]] == "web:2"
    assert out.routes == (100, 0, False) and out.workloads["web"] == (0, "web:2")
    if healthy:
        assert out.status["phase"] == "Succeeded"
        assert out.workloads["web-primary"] == (3, "web:2")
        assert out.status["lastPromotedSpec"] == out.status["lastAppliedSpec"]
    else:
        assert out.status["phase"] == "Failed"
        assert out.workloads["web-primary"] == (3, "web:1")
        # web:1's hash was never recorded (the primary's copy names it by flagger-id only)
        assert out.status["lastPromotedSpec"] == ""


async def test_a_release_pushed_while_the_first_primary_rolls_out_is_analysed() -> None:
    """The same without a crash: the Initializing ticks wait for the new primary to be ready,
    and a release pushed meanwhile is not in it."""
    cluster, driver = web_driver()

    def phase() -> str:
        return str(((cluster.peek(CANARY_REF) or {}).get("status") or {}).get("phase"))

    cluster.hold_readiness(PRIMARY, {"observedGeneration": 0})
    await driver.tick()
    assert phase() == "Initializing"
    containers = [{"name": "web", "image": "web:2"}]
    await cluster.patch(TARGET, {"spec": {"template": {"spec": {"containers": containers}}}})
    cluster.release(PRIMARY)
    await driver.tick()
    assert phase() == "Initialized"
    await driver.tick()
    assert phase() == "Progressing"
    for _ in range(8):
        await driver.tick()
    assert phase() == "Succeeded"
    primary = cluster.peek(PRIMARY) or {}
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == "web:2"
