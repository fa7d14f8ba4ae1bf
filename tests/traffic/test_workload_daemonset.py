"""DaemonSet targets: blue/green on the kubernetes provider (weighted behind a mesh), scaled to
zero by a node selector, promoted like a Deployment (Flagger's daemonset_controller.go)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from router_world import World
from traffic_testkit import NOW, NS, canary_body, deployment

from config import NotSupportedError, SpecError, parse_canary
from traffic import (
    DAEMONSET,
    Readiness,
    Routes,
    RoutingError,
    TargetWorkload,
    Weights,
    WorkloadError,
    router_for,
)
from traffic._daemonset import SCALE_TO_ZERO_SELECTOR, daemonset_not_ready
from traffic.cluster import InMemoryCluster, ObjectRef

TARGET = ObjectRef(DAEMONSET, NS, "podinfo")
PRIMARY = ObjectRef(DAEMONSET, NS, "podinfo-primary")
BLUE_GREEN = {"interval": "1m", "threshold": 5, "iterations": 3}


def daemonset(image: str = "ghcr.io/stefanprodan/podinfo:6.0.0") -> dict[str, Any]:
    body = deployment(replicas=None, image=image)
    body["kind"] = "DaemonSet"
    body["spec"].pop("strategy")
    body["spec"]["updateStrategy"] = {"type": "RollingUpdate"}
    return body


def ds_canary(**analysis: Any) -> Any:
    body = canary_body(analysis={**BLUE_GREEN, **analysis})
    body["spec"]["targetRef"]["kind"] = "DaemonSet"
    return parse_canary(body)


def node_selector(body: dict[str, Any]) -> dict[str, str]:
    return dict(body["spec"]["template"]["spec"].get("nodeSelector") or {})


async def test_bootstrap_creates_a_primary_daemonset_and_parks_the_target(world: World) -> None:
    canary = ds_canary()
    world.seed(daemonset())
    workload = TargetWorkload(world.cluster)
    router = router_for("kubernetes", world.cluster)
    await router.initialize(canary)
    await workload.initialize(canary)
    await router.reconcile(canary)
    before = await workload.revision(canary)
    await workload.scale_to_zero(canary)
    primary = await world.must_read(PRIMARY)
    assert primary["kind"] == "DaemonSet"
    assert "replicas" not in primary["spec"]
    assert primary["spec"]["updateStrategy"] == {"type": "RollingUpdate"}
    assert primary["spec"]["selector"] == {"matchLabels": {"app": "podinfo-primary"}}
    assert node_selector(await world.must_read(TARGET)) == {SCALE_TO_ZERO_SELECTOR: "true"}
    # parking the target is not a new revision, and the primary never gets the selector
    assert await workload.revision(canary) == before
    await workload.promote(canary)
    assert SCALE_TO_ZERO_SELECTOR not in node_selector(await world.must_read(PRIMARY))
    await workload.scale_from_zero(canary)
    assert node_selector(await world.must_read(TARGET)) == {}


async def test_an_ondelete_daemonset_gets_no_primary(world: World) -> None:
    """Flagger's createPrimaryDaemonSet refuses it: a promotion rewrites the primary's pod
    template, which an OnDelete DaemonSet never rolls out."""
    target = daemonset()
    target["spec"]["updateStrategy"] = {"type": "OnDelete"}
    world.seed(target)
    with pytest.raises(
        WorkloadError,
        match=r"daemonset podinfo\.test must have RollingUpdate strategy but have OnDelete",
    ):
        await TargetWorkload(world.cluster).initialize(ds_canary())
    assert await world.cluster.get(PRIMARY) is None


async def test_a_target_switched_to_ondelete_is_promoted_without_it(world: World) -> None:
    """Once the primary exists a target may switch to OnDelete: the promotion still copies the
    template, and the primary keeps rolling it out (found by a reviewer)."""
    canary = ds_canary()
    world.seed(daemonset())
    workload = TargetWorkload(world.cluster)
    await workload.initialize(canary)
    await world.cluster.patch(
        TARGET,
        {
            "spec": {
                "updateStrategy": {"type": "OnDelete", "rollingUpdate": None},
                "template": {"spec": {"containers": [{"name": "podinfo", "image": "podinfo:2"}]}},
            }
        },
    )
    await workload.initialize(canary)  # the primary exists: nothing to refuse
    await workload.promote(canary)
    primary = await world.must_read(PRIMARY)
    assert primary["spec"]["updateStrategy"] == {"type": "RollingUpdate"}
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == "podinfo:2"


async def test_the_kubernetes_router_switches_but_never_splits(world: World) -> None:
    canary = ds_canary()
    world.seed(daemonset())
    workload = TargetWorkload(world.cluster)
    router = router_for("kubernetes", world.cluster)
    await router.initialize(canary)
    await workload.initialize(canary)
    await router.reconcile(canary)
    await router.set_routes(canary, Weights(0, 100))
    routes = await router.get_routes(canary)
    assert routes.weights == Weights(0, 100)
    with pytest.raises(RoutingError, match="DaemonSet targets are blue/green only"):
        await router.set_routes(canary, Weights(90, 10))
    await router.set_routes(canary, Weights(100, 0))
    assert await router.get_routes(canary) == Routes(Weights(100, 0), achieved=Weights(100, 0))


async def test_readiness_follows_the_daemonset_status() -> None:
    body = daemonset()
    body["metadata"]["generation"] = 2
    body["status"] = {"observedGeneration": 1}
    assert "observed daemonset generation less then desired" in str(daemonset_not_ready(body, 100))
    body["status"] = {
        "observedGeneration": 2,
        "desiredNumberScheduled": 4,
        "updatedNumberScheduled": 3,
        "numberAvailable": 3,
    }
    assert daemonset_not_ready(body, 100) == (
        "waiting for rollout to finish: 3 out of 4 new pods have been updated"
    )
    body["status"]["updatedNumberScheduled"] = 4
    assert daemonset_not_ready(body, 100) == (
        "waiting for rollout to finish: 3 of 4 (readyThreshold 100%) updated pods are available"
    )
    assert daemonset_not_ready(body, 75) is None


async def test_the_in_memory_cluster_runs_a_daemonset_rollout() -> None:
    # (the fake API server runs no controllers; InMemoryCluster simulates them for simulate)
    cluster = InMemoryCluster()
    canary = ds_canary()
    cluster.seed(daemonset())
    workload = TargetWorkload(cluster)
    await workload.initialize(canary)
    assert (await workload.readiness(canary, primary=True, now=NOW)).ready
    await workload.scale_to_zero(canary)
    target = cluster.peek(TARGET)
    assert target is not None
    assert target["status"]["desiredNumberScheduled"] == 0
    assert (await workload.readiness(canary, primary=False, now=NOW)).ready


def test_a_daemonset_canary_on_the_kubernetes_provider_must_be_blue_green() -> None:
    body = canary_body()  # stepWeight, provider kubernetes
    body["spec"]["targetRef"]["kind"] = "DaemonSet"
    with pytest.raises(SpecError, match="with the kubernetes provider it is blue/green only"):
        parse_canary(body)


def test_a_mesh_weighs_a_daemonset_canary() -> None:
    # Flagger's scheduler_daemonset_test.go steps a DaemonSet canary's weight through Istio.
    body = canary_body(provider="istio")  # stepWeight
    body["spec"]["targetRef"]["kind"] = "DaemonSet"
    assert parse_canary(body).spec.effective_analysis.step_weight is not None


async def test_the_default_kubernetes_router_refuses_a_stepping_daemonset(world: World) -> None:
    # spec.provider unset: the loader cannot know the controller's default, the router can
    body = canary_body()
    body["spec"].pop("provider", None)
    body["spec"]["targetRef"]["kind"] = "DaemonSet"
    canary = parse_canary(body)
    world.seed(daemonset())
    with pytest.raises(NotSupportedError, match="blue/green only"):
        await router_for("kubernetes", world.cluster).initialize(canary)


def _stuck(generation: int = 2, observed: int = 2) -> dict[str, Any]:
    body = daemonset()
    body["metadata"]["generation"] = generation
    body["status"] = {
        "observedGeneration": observed,
        "desiredNumberScheduled": 3,
        "updatedNumberScheduled": 1,
        "numberAvailable": 1,
    }
    return body


async def _readiness(world: World, body: dict[str, Any], *, since: timedelta | None) -> Readiness:
    """The canary DaemonSet's readiness as the workload reads it from the API server (which runs
    no DaemonSet controller, so the status seeded stays)."""
    canary_doc = canary_body(analysis=BLUE_GREEN)
    canary_doc["spec"]["targetRef"]["kind"] = "DaemonSet"
    canary_doc["spec"]["progressDeadlineSeconds"] = 600
    if since is not None:
        moment = (NOW - since).isoformat().replace("+00:00", "Z")
        canary_doc["status"] = {"phase": "Progressing", "lastTransitionTime": moment}
    world.seed(body)
    workload = TargetWorkload(world.cluster)
    return await workload.readiness(parse_canary(canary_doc), primary=False, now=NOW)


async def test_a_daemonset_short_of_pods_past_the_progress_deadline_is_final(world: World) -> None:
    # Flagger's isDaemonSetReady: lastTransitionTime + progressDeadlineSeconds before now is
    # not retriable, so the run rolls back instead of waiting for ever.
    waiting = await _readiness(world, _stuck(), since=timedelta(seconds=599))
    assert not waiting.ready and waiting.retriable
    assert waiting.message.endswith("1 out of 3 new pods have been updated")
    late = await _readiness(world, _stuck(), since=timedelta(seconds=601))
    assert not late.ready and not late.retriable
    assert late.message == (
        f"canary damonset podinfo.{NS} not ready with retryable false: exceeded its "
        "progressDeadlineSeconds: 600"
    )


async def test_readiness_messages_are_flaggers(world: World) -> None:
    # Flagger's daemonset_ready.go words its messages unlike the Deployment's (typos included):
    # IsPrimaryReady "primary daemonset <name>-primary.<ns> not ready: ...", IsCanaryReady
    # "canary damonset <name>.<ns> not ready with retryable true: ...", and isDaemonSetReady's
    # "observed daemonset generation less then desired generation". They reach users as the
    # Warning events of a waiting canary.
    waiting = await _readiness(world, _stuck(), since=timedelta(seconds=1))
    assert waiting.message == (
        f"canary damonset podinfo.{NS} not ready with retryable true: waiting for rollout to "
        "finish: 1 out of 3 new pods have been updated"
    )
    canary = ds_canary()
    primary = daemonset()
    primary["metadata"]["name"] = "podinfo-primary"
    primary["metadata"]["generation"] = 2
    primary["status"] = {"observedGeneration": 1}
    world.seed(primary)
    readiness = await TargetWorkload(world.cluster).readiness(canary, primary=True, now=NOW)
    assert (readiness.ready, readiness.retriable) == (False, True)
    assert readiness.message == (
        f"primary daemonset podinfo-primary.{NS} not ready: waiting for rollout to finish: "
        "observed daemonset generation less then desired generation"
    )


@pytest.mark.parametrize(("desired", "threshold", "needed"), [(100, 53, 52), (4, 75, 3)])
def test_the_ready_threshold_counts_pods_in_float32_as_flagger(
    desired: int, threshold: int, needed: int
) -> None:
    # int32(float32(desired) * float32(threshold)/100): 53 % of 100 pods asks 52 available
    body = daemonset()
    body["status"] = {
        "observedGeneration": 1,
        "desiredNumberScheduled": desired,
        "updatedNumberScheduled": desired,
        "numberAvailable": needed,
    }
    assert daemonset_not_ready(body, threshold) is None
    body["status"]["numberAvailable"] = needed - 1
    assert daemonset_not_ready(body, threshold) == (
        f"waiting for rollout to finish: {needed - 1} of {needed} (readyThreshold "
        f"{threshold}%) updated pods are available"
    )


async def test_the_deadline_waits_for_the_controller(world: World) -> None:
    # the DaemonSet controller has not seen the new generation yet: retriable (as Flagger)
    pending = await _readiness(world, _stuck(generation=3, observed=2), since=timedelta(hours=1))
    assert not pending.ready and pending.retriable


async def test_the_deadline_needs_a_transition_time(world: World) -> None:
    # no lastTransitionTime: nothing says how long it has been, so keep waiting
    unknown = await _readiness(world, _stuck(), since=None)
    assert not unknown.ready and unknown.retriable


def test_the_blue_green_problem_names_the_analysis_field_the_canary_uses() -> None:
    body = canary_body()  # stepWeight
    body["spec"]["targetRef"]["kind"] = "DaemonSet"
    body["spec"]["canaryAnalysis"] = body["spec"].pop("analysis")
    with pytest.raises(SpecError) as raised:
        parse_canary(body)
    fields = [p.path for p in raised.value.problems]
    assert "spec.canaryAnalysis.iterations" in fields
    assert "spec.analysis.iterations" not in fields
