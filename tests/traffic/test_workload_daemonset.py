"""DaemonSet targets: blue/green only, scaled to zero by a node selector, promoted like a
Deployment (Flagger's daemonset_controller.go)."""

from __future__ import annotations

from typing import Any

import pytest
from router_world import World
from traffic_testkit import NOW, NS, canary_body, deployment

from config import SpecError, parse_canary
from traffic import (
    DAEMONSET,
    Readiness,
    Routes,
    RoutingError,
    TargetWorkload,
    Weights,
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
    assert "observed daemonset generation less than desired" in str(daemonset_not_ready(body, 100))
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


def test_a_daemonset_canary_must_be_blue_green() -> None:
    body = canary_body()  # stepWeight
    body["spec"]["targetRef"]["kind"] = "DaemonSet"
    with pytest.raises(SpecError, match="DaemonSet targets are blue/green only"):
        parse_canary(body)


def test_the_blue_green_problem_names_the_analysis_field_the_canary_uses() -> None:
    body = canary_body()  # stepWeight
    body["spec"]["targetRef"]["kind"] = "DaemonSet"
    body["spec"]["canaryAnalysis"] = body["spec"].pop("analysis")
    with pytest.raises(SpecError) as raised:
        parse_canary(body)
    fields = [p.path for p in raised.value.problems]
    assert "spec.canaryAnalysis.iterations" in fields
    assert "spec.analysis.iterations" not in fields


async def test_readiness_messages_name_the_daemonset(world: World) -> None:
    canary = ds_canary()
    workload = TargetWorkload(world.cluster)
    missing = await workload.readiness(canary, primary=False, now=NOW)
    assert missing == Readiness(
        ready=False,
        message=f"canary daemonset podinfo.{NS} not ready: daemonset podinfo.{NS} not found",
    )
    body = daemonset()
    body["metadata"]["generation"] = 2
    body["status"] = {"observedGeneration": 1}
    world.seed(body)
    waiting = await workload.readiness(canary, primary=False, now=NOW)
    assert waiting == Readiness(
        ready=False,
        message=f"canary daemonset podinfo.{NS} not ready: waiting for rollout to finish: "
        "observed daemonset generation less than desired generation",
    )
    primary = await workload.readiness(canary, primary=True, now=NOW)
    assert primary.message == (
        f"podinfo-primary.{NS} not ready: daemonset podinfo-primary.{NS} not found"
    )


async def test_rbac_allows_exactly_the_daemonset_calls(tmp_path: Any) -> None:
    """Every request a DaemonSet Canary's rollout sends is allowed by rbac.yaml, and every verb
    granted on daemonsets is one it sends (tests/e2e/test_rbac.py leaves this resource here)."""
    from router_world import open_world

    from tests.e2e.test_rbac import Call, rbac_grants

    canary = ds_canary()
    async with open_world("kube", tmp_path) as world:
        world.seed(daemonset())
        workload = TargetWorkload(world.cluster)
        router = router_for("kubernetes", world.cluster)
        await router.initialize(canary)
        await workload.initialize(canary)
        await router.reconcile(canary)
        await workload.scale_to_zero(canary)
        await workload.scale_from_zero(canary)
        await workload.readiness(canary, primary=False, now=NOW)
        await world.cluster.patch(
            TARGET, {"spec": {"template": {"metadata": {"labels": {"v": "2"}}}}}
        )
        await workload.promote(canary)
        calls = [
            Call(c.verb, c.group, c.resource, c.namespace, c.name)
            for c in world.calls()
            if c.resource == "daemonsets"
        ]
    grants = [g for g in rbac_grants() if (g.group, g.resource) == ("apps", "daemonsets")]
    assert [str(c) for c in calls if not any(g.allows(c) for g in grants)] == []
    assert [str(g) for g in grants if not any(g.allows(c) for c in calls)] == []
