"""The mesh-free kubernetes router (Q16) and the ClusterIP services every router creates."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from traffic_testkit import NS, UID, dep_ref, deployment, make_canary, svc_ref

from config import Canary
from traffic import (
    APEX_LABEL,
    WEIGHTS_ANNOTATION,
    DeploymentWorkload,
    Router,
    Routes,
    RoutingError,
    Weights,
    achieved_weights,
    canary_replicas,
    router_for,
)
from traffic.cluster import Body, InMemoryCluster

PRIMARY = dep_ref("podinfo-primary")


async def bootstrapped(
    replicas: int = 10, canary: Canary | None = None
) -> tuple[InMemoryCluster, Router, DeploymentWorkload, Canary]:
    """The engine's first tick: services, primary, apex, target scaled to zero."""
    cluster = InMemoryCluster()
    cluster.seed(deployment(replicas=replicas))
    canary = canary or make_canary()
    router = router_for("kubernetes", cluster)
    workload = DeploymentWorkload(cluster)
    await router.initialize(canary)
    await workload.initialize(canary)
    await router.reconcile(canary)
    await workload.scale_to_zero(canary)
    return cluster, router, workload, canary


def replicas(cluster: InMemoryCluster, name: str = "podinfo") -> int:
    body = cluster.peek(dep_ref(name))
    assert body is not None
    return int(body["spec"]["replicas"])


def apex(cluster: InMemoryCluster) -> Body:
    body = cluster.peek(svc_ref())
    assert body is not None
    return body


def writes(cluster: InMemoryCluster) -> int:
    return sum(cluster.calls[v] for v in ("create", "patch", "patch_status", "delete"))


# --------------------------------------------------------------------------- the replica math


@pytest.mark.parametrize(
    ("primary", "weight", "expected"),
    [
        (10, 5, 1),  # 0.53 -> 1
        (10, 10, 1),  # 1.11 -> 1
        (10, 20, 3),  # 2.5 rounds half up
        (10, 30, 4),  # 4.29
        (10, 50, 10),
        (10, 60, 10),  # 15 clamped: never more than the primary
        (4, 10, 1),  # 0.44 clamped up: a split needs one canary pod
        (3, 25, 1),
        (1, 1, 1),
        (1, 50, 1),
        (5, 100, 5),
        (5, 0, 0),
    ],
)
def test_canary_replicas_for_a_split(primary: int, weight: int, expected: int) -> None:
    assert canary_replicas(primary, weight) == expected


@settings(database=None)
@given(primary=st.integers(1, 500), weight=st.integers(1, 99))
def test_split_replicas_stay_within_one_and_the_primary(primary: int, weight: int) -> None:
    count = canary_replicas(primary, weight)
    assert 1 <= count <= primary
    assert canary_replicas(primary, min(weight + 1, 99)) >= count  # more weight, never fewer pods


@pytest.mark.parametrize(
    ("primary", "canary", "expected"),
    [
        (10, 1, Weights(91, 9)),
        (10, 3, Weights(77, 23)),
        (2, 2, Weights(50, 50)),
        (3, 0, Weights(100, 0)),
        (0, 4, Weights(0, 100)),
    ],
)
def test_achieved_weights_follow_endpoint_counts(
    primary: int, canary: int, expected: Weights
) -> None:
    assert achieved_weights(primary, canary) == expected


# --------------------------------------------------------------------------- services


async def test_initialize_creates_the_canary_and_primary_services() -> None:
    cluster, _, _, _ = await bootstrapped()
    for name, selector in (
        ("podinfo-canary", {"app": "podinfo"}),
        ("podinfo-primary", {"app": "podinfo-primary"}),
    ):
        svc = cluster.peek(svc_ref(name))
        assert svc is not None
        assert svc["spec"]["selector"] == selector
        assert svc["spec"]["type"] == "ClusterIP"
        assert svc["spec"]["ports"] == [
            {"name": "http", "protocol": "TCP", "port": 9898, "targetPort": 9898}
        ]
        assert svc["metadata"]["labels"] == {"app": name}
        assert svc["metadata"]["ownerReferences"][0]["uid"] == UID


async def test_service_options_ports_headless_and_discovery() -> None:
    canary = make_canary(
        service={
            "port": 80,
            "targetPort": 9898,
            "portName": "web",
            "appProtocol": "http",
            "headless": True,
            "portDiscovery": True,
            "canary": {"labels": {"tier": "canary"}, "annotations": {"a": "b"}},
        }
    )
    cluster, _, _, _ = await bootstrapped(canary=canary)
    svc = cluster.peek(svc_ref("podinfo-canary"))
    assert svc is not None
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["ports"] == [
        {"name": "web", "protocol": "TCP", "port": 80, "targetPort": 9898, "appProtocol": "http"},
        {"name": "http-metrics", "protocol": "TCP", "port": 9797, "targetPort": 9797},
    ]
    assert svc["metadata"]["labels"] == {"tier": "canary", "app": "podinfo-canary"}
    assert svc["metadata"]["annotations"] == {"a": "b"}


async def test_a_users_apex_service_is_adopted_and_handed_back() -> None:
    cluster = InMemoryCluster()
    original: Body = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": NS, "labels": {"team": "web"}},
        "spec": {"selector": {"app": "podinfo"}, "ports": [{"port": 9898}]},
    }
    original["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(original)
    }
    cluster.seed(deployment(), original)
    canary = make_canary()
    router = router_for("kubernetes", cluster)
    await router.initialize(canary)
    await DeploymentWorkload(cluster).initialize(canary)
    await router.reconcile(canary)
    taken = apex(cluster)
    assert taken["spec"]["selector"] == {"app": "podinfo-primary"}
    assert taken["metadata"]["labels"] == {"team": "web"}  # the user's metadata is kept
    assert "ownerReferences" not in taken["metadata"]  # never garbage-collected with the Canary
    await router.set_routes(canary, Weights(80, 20))
    await router.finalize(canary)
    handed_back = apex(cluster)
    assert handed_back["spec"]["selector"] == {"app": "podinfo"}
    assert WEIGHTS_ANNOTATION not in handed_back["metadata"]["annotations"]


# --------------------------------------------------------------------------- routing


async def test_initial_routes_are_all_primary() -> None:
    cluster, router, _, canary = await bootstrapped()
    assert apex(cluster)["spec"]["selector"] == {"app": "podinfo-primary"}
    assert await router.get_routes(canary) == Routes(Weights(100, 0), Weights(100, 0))


async def test_before_reconcile_there_are_no_routes_to_read() -> None:
    cluster = InMemoryCluster()
    cluster.seed(deployment())
    assert await router_for("kubernetes", cluster).get_routes(make_canary()) == Routes(
        Weights(100, 0)
    )


async def test_initialize_labels_the_target_template_without_making_a_new_revision() -> None:
    cluster = InMemoryCluster()
    cluster.seed(deployment())
    workload = DeploymentWorkload(cluster)
    before = await workload.revision(make_canary())
    await router_for("kubernetes", cluster).initialize(make_canary())
    target = cluster.peek(dep_ref())
    assert target is not None
    assert target["spec"]["template"]["metadata"]["labels"][APEX_LABEL] == "podinfo"
    assert await workload.revision(make_canary()) == before
    await workload.initialize(make_canary())
    primary = cluster.peek(PRIMARY)
    assert primary is not None  # the primary inherits the label with the template
    assert primary["spec"]["template"]["metadata"]["labels"][APEX_LABEL] == "podinfo"


async def test_initialize_labels_a_primary_created_without_the_apex_label() -> None:
    cluster = InMemoryCluster()
    cluster.seed(deployment())
    await DeploymentWorkload(cluster).initialize(make_canary())  # e.g. created by Flagger
    await router_for("kubernetes", cluster).initialize(make_canary())
    primary = cluster.peek(PRIMARY)
    assert primary is not None
    assert primary["spec"]["template"]["metadata"]["labels"][APEX_LABEL] == "podinfo"


async def test_a_split_scales_the_canary_and_selects_both_sets_of_pods() -> None:
    cluster, router, workload, canary = await bootstrapped(replicas=10)
    await workload.scale_from_zero(canary)
    await router.set_routes(canary, Weights(90, 10))
    assert replicas(cluster, "podinfo") == 1
    assert replicas(cluster, "podinfo-primary") == 10  # the primary's capacity is never touched
    assert apex(cluster)["spec"]["selector"] == {APEX_LABEL: "podinfo"}
    assert json.loads(apex(cluster)["metadata"]["annotations"][WEIGHTS_ANNOTATION]) == {
        "primary": 90,
        "canary": 10,
    }
    assert await router.get_routes(canary) == Routes(Weights(90, 10), Weights(91, 9))
    await router.set_routes(canary, Weights(70, 30))
    assert replicas(cluster, "podinfo") == 4
    assert await router.get_routes(canary) == Routes(Weights(70, 30), Weights(71, 29))


async def test_full_canary_weight_selects_only_the_canary_at_primary_capacity() -> None:
    cluster, router, workload, canary = await bootstrapped(replicas=3)
    await workload.scale_from_zero(canary)
    await cluster.patch(dep_ref(), {"spec": {"replicas": 1}})
    await router.set_routes(canary, Weights(0, 100))  # blue/green switch
    assert apex(cluster)["spec"]["selector"] == {"app": "podinfo"}
    assert replicas(cluster, "podinfo") == 3
    assert await router.get_routes(canary) == Routes(Weights(0, 100), Weights(0, 100))
    await router.set_routes(canary, Weights(100, 0))
    assert apex(cluster)["spec"]["selector"] == {"app": "podinfo-primary"}
    assert await router.get_routes(canary) == Routes(Weights(100, 0), Weights(100, 0))


async def test_weights_survive_a_fresh_router_and_reconcile() -> None:
    cluster, router, workload, canary = await bootstrapped(replicas=4)
    await workload.scale_from_zero(canary)
    await router.set_routes(canary, Weights(80, 20))
    restarted = router_for("kubernetes", cluster)
    await restarted.initialize(canary)
    await restarted.reconcile(canary)
    assert apex(cluster)["spec"]["selector"] == {APEX_LABEL: "podinfo"}
    assert (await restarted.get_routes(canary)).weights == Weights(80, 20)


async def test_a_steady_state_tick_writes_nothing() -> None:
    cluster, router, workload, canary = await bootstrapped(replicas=4)
    await workload.scale_from_zero(canary)
    await router.set_routes(canary, Weights(80, 20))
    before = writes(cluster)
    await router.initialize(canary)
    await workload.initialize(canary)
    await router.reconcile(canary)
    await router.set_routes(canary, Weights(80, 20))
    await router.get_routes(canary)
    assert writes(cluster) == before


async def test_a_split_needs_primary_pods() -> None:
    cluster, router, _, canary = await bootstrapped()
    await cluster.patch(PRIMARY, {"spec": {"replicas": 0}})
    with pytest.raises(RoutingError, match=r"cannot split traffic 95/5.*podinfo-primary\.test"):
        await router.set_routes(canary, Weights(95, 5))


async def test_promotion_after_a_split_keeps_the_primarys_capacity() -> None:
    cluster, router, workload, canary = await bootstrapped(replicas=6)
    await workload.scale_from_zero(canary)
    assert replicas(cluster, "podinfo") == 6
    await router.set_routes(canary, Weights(90, 10))
    assert replicas(cluster, "podinfo") == 1
    await cluster.patch(
        dep_ref(), {"spec": {"template": {"metadata": {"annotations": {"v": "2"}}}}}
    )
    await workload.promote(canary)
    assert replicas(cluster, "podinfo-primary") == 6
    await router.set_routes(canary, Weights(100, 0))
    await workload.scale_to_zero(canary)
    target = cluster.peek(dep_ref())
    assert target is not None and target["spec"]["replicas"] == 0
    assert "canary-engine.io/declared-replicas" not in target["metadata"].get("annotations", {})


async def test_achieved_weights_reflect_pods_missing_the_apex_label() -> None:
    cluster, router, workload, canary = await bootstrapped(replicas=4)
    await workload.scale_from_zero(canary)
    await router.set_routes(canary, Weights(80, 20))
    await cluster.patch(
        PRIMARY, {"spec": {"template": {"metadata": {"labels": {APEX_LABEL: None}}}}}
    )
    assert (await router.get_routes(canary)).achieved == Weights(0, 100)


async def test_a_broken_weights_annotation_is_reported() -> None:
    cluster, router, _, canary = await bootstrapped()
    await cluster.patch(svc_ref(), {"metadata": {"annotations": {WEIGHTS_ANNOTATION: "oops"}}})
    with pytest.raises(RoutingError, match="delete it"):
        await router.get_routes(canary)


async def test_a_users_apex_is_handed_back_whatever_its_labels_length() -> None:
    # A selector label value of 56 characters is valid; only the primary's "<value>-primary"
    # would be too long, which initialization refuses. Finalizing (revertOnDeletion) never builds
    # it and hands the user's Service back (found by a reviewer: it was refused too, and the
    # Canary stayed Terminating).
    value = "p" * 56
    cluster = InMemoryCluster()
    users_apex: Body = {  # created by Helm / kubectl create: no last-applied annotation
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {"selector": {"app": value}, "ports": [{"port": 9898}]},
    }
    cluster.seed(deployment(selector={"app": value}), users_apex)
    await router_for("kubernetes", cluster).finalize(make_canary())
    after = cluster.peek(svc_ref())
    assert after is not None and after["spec"]["selector"] == {"app": value}
