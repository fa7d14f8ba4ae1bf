"""A controller killed between two writes of a tick loses no progress: the next one, started on
the same cluster with nothing of the old one's memory, ends the run as an uninterrupted one
would, or where Flagger (whose state also lives only in the Canary status) would end it.

``crash_world`` runs a rollout on an InMemoryCluster and kills the controller right after a
chosen write: the write is applied, nothing after it in that process happens. The scenarios
below are each run once per write (kubernetes, istio and Gateway API routers; canary, A/B and
blue/green; promotion steps, an HPA, a config-only release, a new revision mid-run, skipAnalysis,
every operator command, revertOnDeletion). Every kill ends in the same status, conditions,
workloads, routes and objects, with at most the interrupted tick's checks run again and no
weight or iteration going back. As in Flagger, a restart may:

* repeat what the interrupted tick did before its status write: its webhooks (pre-rollout,
  rollout, confirm-*, rollback), its checks, its events and alerts ("New revision detected",
  "Failed checks threshold reached", an operator command's), once;
* lose the events of a step the next tick passes (killed between the routes and the "Advance"
  event, the next tick takes the step after), and, killed after the status write that ends a
  run, that end's post-rollout hooks, outcome count, last event and alert, which come once the
  end is written so as never to run twice (``test_once_only_effects.py``);
* write a new Event object for a message the old process had counted on another one (the
  correlator of Event objects is the process's, as client-go's).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from crash_world import (
    CANARY_REF,
    PRIMARY,
    TARGET,
    Action,
    Run,
    Scenario,
    World,
    Write,
    command,
    release,
    run,
)
from driver_world import NS, web_driver

from traffic import CONFIGMAP, ObjectRef

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


def pushed(version: str, *, healthy: bool = False) -> Any:
    """While the controller is down, the user pushes ``web:<version>``, whose metrics fail
    (unless ``healthy``)."""

    async def push(w: World) -> None:
        w.metrics.value = 99.9 if healthy else 50.0
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
    out = await run(scenario, status_write("Promoting"), while_down=pushed("3"))
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

    out = await run(scenario, primary_created, while_down=pushed("2", healthy=healthy))
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


# -- every write of a scenario --------------------------------------------------------------------

GATEWAYS = {"port": 80, "gatewayRefs": [{"name": "public", "namespace": "istio-ingress"}]}
HPA = {
    "apiVersion": "autoscaling/v2",
    "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "web", "namespace": NS},
    "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 2,
        "maxReplicas": 4,
    },
}
CONFIG = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "web-env", "namespace": NS},
    "data": {"MODE": "a"},
}
GATE = {"name": "gate", "type": "confirm-promotion", "url": "http://hooks/gate"}


def weight_at_least(weight: int) -> Any:
    return lambda status: status.get("canaryWeight", 0) >= weight


def phase_is(phase: str) -> Any:
    return lambda status: status.get("phase") == phase


async def use_config(w: World) -> None:
    containers = [
        {"name": "web", "image": "web:1", "envFrom": [{"configMapRef": {"name": "web-env"}}]}
    ]
    await w.cluster.patch(TARGET, {"spec": {"template": {"spec": {"containers": containers}}}})


async def change_config(w: World) -> None:
    await w.cluster.patch(ObjectRef(CONFIGMAP, NS, "web-env"), {"data": {"MODE": "b"}})


async def heal(w: World) -> None:
    w.metrics.value = 99.9


async def delete(w: World) -> None:
    await w.cluster.delete(CANARY_REF)


SCENARIOS = [
    Scenario(
        "kubernetes",
        {"provider": "kubernetes", "analysis": analysis(stepWeight=50)},
        (release("2"),),
    ),
    Scenario(
        "kubernetes-rollback",
        {"provider": "kubernetes", "analysis": analysis(stepWeight=50)},
        (release("2"),),
        healthy=False,
    ),
    Scenario(
        "istio-promotion-steps",
        {
            "provider": "istio",
            "analysis": analysis(stepWeight=25, maxWeight=50, stepWeightPromotion=25),
        },
        (release("2"),),
    ),
    Scenario(
        "istio-ab",
        {
            "provider": "istio",
            "analysis": analysis(iterations=2, match=[{"headers": {"x-canary": {"exact": "1"}}}]),
        },
        (release("2"),),
    ),
    Scenario(
        "kubernetes-blue-green",
        {"provider": "kubernetes", "analysis": analysis(iterations=2)},
        (release("2"),),
    ),
    Scenario(
        "gatewayapi-blue-green-mirror",
        {
            "provider": "gatewayapi:v1",
            "service": GATEWAYS,
            "analysis": analysis(iterations=2, mirror=True),
        },
        (release("2"),),
    ),
    Scenario(
        "gatewayapi-session-affinity",
        {
            "provider": "gatewayapi:v1",
            "service": GATEWAYS,
            "analysis": analysis(stepWeight=50, sessionAffinity={"cookieName": "canary-cookie"}),
        },
        (release("2"),),
    ),
    Scenario(
        "istio-hpa",
        {
            "provider": "istio",
            "autoscalerRef": {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "name": "web",
            },
            "analysis": analysis(stepWeight=50),
        },
        (release("2"),),
        objects=(HPA,),
    ),
    Scenario(
        "kubernetes-config-release",
        {"provider": "kubernetes", "analysis": analysis(stepWeight=50)},
        (Action("change web-env", phase_is("Initialized"), change_config),),
        objects=(CONFIG,),
        setup=use_config,
    ),
    Scenario(
        "istio-new-revision-mid-run",
        {"provider": "istio", "analysis": analysis(stepWeight=25)},
        (release("2"), release("3", weight_at_least(50))),
    ),
    Scenario(
        "kubernetes-skip-analysis",
        {"provider": "kubernetes", "skipAnalysis": True, "analysis": analysis(stepWeight=50)},
        (release("2"),),
    ),
    Scenario(
        "istio-promote-full",
        {"provider": "istio", "analysis": analysis(stepWeight=10)},
        (release("2"), command("promote", weight_at_least(20), full=True)),
    ),
    Scenario(
        "istio-promote-step",
        {"provider": "istio", "analysis": analysis(stepWeight=25)},
        (release("2"), command("promote", weight_at_least(25))),
    ),
    Scenario(
        "istio-promote-past-the-gate",
        {"provider": "istio", "analysis": analysis(stepWeight=50, webhooks=[*HOOKS, GATE])},
        (release("2"), command("promote", phase_is("WaitingPromotion"))),
        failing_hooks=("gate",),
    ),
    Scenario(
        "istio-abort",
        {"provider": "istio", "analysis": analysis(stepWeight=10)},
        (release("2"), command("abort", weight_at_least(20))),
    ),
    Scenario(
        "istio-pause-resume",
        {"provider": "istio", "analysis": analysis(stepWeight=25)},
        (
            release("2"),
            command("pause", weight_at_least(25)),
            command("resume", lambda status: bool(status.get("pausedAt"))),
        ),
    ),
    Scenario(
        "istio-retry",
        {"provider": "istio", "analysis": analysis(stepWeight=50)},
        (
            release("2"),
            Action("heal", phase_is("Failed"), heal),
            command("retry", phase_is("Failed")),
        ),
        healthy=False,
    ),
    Scenario(
        "istio-revert-on-deletion",
        {"provider": "istio", "revertOnDeletion": True, "analysis": analysis(stepWeight=25)},
        (release("2"), Action("delete the Canary", weight_at_least(50), delete)),
    ),
]


def conditions(status: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    return [(c["type"], c["status"], c["reason"]) for c in status.get("conditions") or ()]


def run_ends(writes: list[Write]) -> list[int]:
    """The (1-based) numbers of the writes that end a run (its Succeeded or Failed status)."""
    return [
        i
        for i, w in enumerate(writes, 1)
        if status_write("Succeeded")(w) or status_write("Failed")(w)
    ]


def after_a_run_end(writes: list[Write], n: int) -> bool:
    """Write ``n`` is a run's end or comes after one, with nothing but Events and the Canary's
    status written in between: the window in which a process killed loses the end's once-only
    effects (post-rollout hooks, the outcome count, the last event and alert), which come once
    the end is written and are never repeated (tests/engine/test_once_only_effects.py). Flagger
    orders them so too, and loses them the same way."""
    for end in run_ends(writes):
        between = writes[end:n]
        if end <= n and all(
            w.ref.startswith("Event/") or w.verb == "patch_status" for w in between
        ):
            return True
    return False


def assert_same_end(base: Run, out: Run, n: int, where: str) -> None:
    """``out``, interrupted at write ``n``, ends as ``base``, the uninterrupted run, did."""
    assert [w.key for w in out.writes[:n]] == [w.key for w in base.writes[:n]], where
    # the same end, whole: status, conditions, workloads, routes, every object
    for key in ("phase", "lastAppliedSpec", "lastPromotedSpec", "canaryWeight", "iterations"):
        assert out.status.get(key) == base.status.get(key), (where, key)
    assert conditions(out.status) == conditions(base.status), where
    assert (out.workloads, out.routes) == (base.workloads, base.routes), where
    assert out.objects == base.objects, where
    # no progress lost: the analysis does not start over (at most the interrupted tick's checks
    # run again) and the weight or iteration of a run never goes back
    assert base.analyses <= out.analyses <= base.analyses + 1, where
    for (phase, weight, iterations, spec), later in zip(out.history, out.history[1:], strict=False):
        if later[0] == phase == "Progressing" and later[3] == spec:
            assert later[1] >= weight and later[2] >= iterations, (where, out.history)
    # what the interrupted tick did before its status write may happen once more (Flagger
    # repeats it too); what comes after a run's end may be lost, never repeated
    lossy = after_a_run_end(base.writes, n)
    for seen, had in ((out.hooks, base.hooks), (out.alerts, base.alerts)):
        for key in set(seen) | set(had):
            assert seen[key] <= had[key] + 1, (where, key, seen[key], had[key])
    for (hook, phase), count in base.hooks.items():
        if hook == "post":
            assert out.hooks[(hook, phase)] == count or (
                lossy and out.hooks[(hook, phase)] < count
            ), where
    assert out.outcomes == base.outcomes or (lossy and out.outcomes < base.outcomes), where
    for message, count in out.events.items():
        assert count <= base.events[message] + 1, (where, message)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
async def test_a_controller_killed_after_any_write_ends_as_an_uninterrupted_one(
    scenario: Scenario,
) -> None:
    base = await run(scenario)
    assert not base.unfired, base.unfired
    # the uninterrupted run every crashed one is held to got to an end (the Canary deleted, for
    # revertOnDeletion), so "ends as it" means something
    assert base.status.get("phase") in ("Succeeded", "Failed") or not base.status, base.status
    assert len(base.writes) >= 10, base.writes
    for n in range(1, len(base.writes) + 1):
        out = await run(scenario, n)
        assert out.crashed_at is not None
        assert_same_end(base, out, n, f"{scenario.name}, killed after write {n}: {out.crashed_at}")


LOST_ANSWERS = [
    s for s in SCENARIOS if s.name in ("kubernetes", "istio-promotion-steps", "istio-abort")
]


@pytest.mark.parametrize("scenario", LOST_ANSWERS, ids=lambda s: s.name)
async def test_a_write_whose_answer_is_lost_ends_as_an_uninterrupted_run(
    scenario: Scenario,
) -> None:
    """The write is applied, the controller gets a 503 for it and goes on: the tick ends there
    (a Warning event), the next one comes an interval later."""
    base = await run(scenario)
    for n in range(1, len(base.writes) + 1):
        out = await run(scenario, n, answer_lost=True)
        assert_same_end(
            base, out, n, f"{scenario.name}, answer to write {n} lost: {out.writes[n - 1]}"
        )


WHILE_DOWN = [
    s
    for s in SCENARIOS
    if s.name
    in (
        "kubernetes",
        "istio-promotion-steps",
        "istio-ab",
        "gatewayapi-session-affinity",
        "kubernetes-blue-green",
        "istio-abort",
    )
]


@pytest.mark.parametrize("scenario", WHILE_DOWN, ids=lambda s: s.name)
async def test_a_bad_release_pushed_while_the_controller_is_down_never_reaches_the_primary(
    scenario: Scenario,
) -> None:
    """Killed after any write, and web:3, whose checks fail, pushed before the next controller
    starts: the run ends Failed, the status never names as promoted a revision the primary does
    not run, and web:3 reaches the primary only if the primary did not exist yet (it is made
    from what the target runs then, as in Flagger; the scenario's web:2 then fails too)."""
    base = await run(scenario)
    created = next(i for i, w in enumerate(base.writes, 1) if w.key == ("create", str(PRIMARY)))
    for n in range(1, len(base.writes) + 1):
        out = await run(scenario, n, while_down=pushed("3"))
        where = f"{scenario.name}, killed after write {n}: {out.crashed_at}"
        status = out.status
        (_, primary), (replicas, target) = out.workloads["web-primary"], out.workloads["web"]
        assert status["phase"] == "Failed", where
        assert primary in (("web:1", "web:2") if n >= created else ("web:3",)), where
        promoted = status["lastPromotedSpec"]
        assert promoted == "" or out.images[promoted] == primary, where
        assert out.images[status["lastAppliedSpec"]] == target, where
        assert out.routes == (100, 0, False) and replicas == 0, where
        completed = sum(c for m, c in out.events.items() if m.startswith("Promotion completed!"))
        assert completed <= (1 if primary == "web:2" else 0), where
