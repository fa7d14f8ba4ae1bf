"""Service targets: -canary and -primary copies of the user's Service, promoted by copying the
spec, always ready (Flagger's service_controller.go)."""

from __future__ import annotations

from typing import Any

import pytest
from router_world import World
from traffic_testkit import NOW, NS, canary_body

from config import SpecError, parse_canary
from traffic import SERVICE, TargetWorkload, Weights, router_for
from traffic.cluster import ObjectRef
from traffic.routers.smi import TRAFFIC_SPLIT_V1ALPHA1

TARGET = ObjectRef(SERVICE, NS, "podinfo")
CANARY_COPY = ObjectRef(SERVICE, NS, "podinfo-canary")
PRIMARY_COPY = ObjectRef(SERVICE, NS, "podinfo-primary")


def user_service(port: int = 9898) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "podinfo",
            "namespace": NS,
            "labels": {"app": "podinfo"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "10.0.0.10",
            "selector": {"app": "podinfo-v2"},
            "ports": [{"name": "http", "port": port, "targetPort": port}],
        },
    }


def service_canary(provider: str = "linkerd") -> Any:
    body = canary_body(provider=provider)
    body["spec"]["targetRef"] = {"apiVersion": "v1", "kind": "Service", "name": "podinfo"}
    return parse_canary(body)


async def test_copies_are_made_and_the_primary_is_promoted(world: World) -> None:
    canary = service_canary()
    world.seed(user_service())
    workload = TargetWorkload(world.cluster)
    await workload.initialize(canary)
    copy = await world.must_read(CANARY_COPY)
    assert copy["spec"]["selector"] == {"app": "podinfo-v2"}
    # not the target's address: the API server assigns the copy its own (the in-memory cluster
    # assigns none)
    own = copy["spec"].get("clusterIP")
    assert own in (None, "") if world.name == "memory" else own not in (None, "", "10.0.0.10")
    assert "kubectl.kubernetes.io/last-applied-configuration" not in (
        copy["metadata"].get("annotations") or {}
    )
    assert copy["metadata"]["ownerReferences"][0]["kind"] == "Canary"
    before = await workload.revision(canary)
    # the user points the target at new backends: a new revision; the canary copy follows,
    # the primary only on promotion
    await world.cluster.patch(TARGET, {"spec": {"selector": {"app": "podinfo-v3"}}})
    assert await workload.revision(canary) != before
    await workload.initialize(canary)
    assert (await world.must_read(CANARY_COPY))["spec"]["selector"] == {"app": "podinfo-v3"}
    assert (await world.must_read(PRIMARY_COPY))["spec"]["selector"] == {"app": "podinfo-v2"}
    address = (await world.must_read(PRIMARY_COPY))["spec"].get("clusterIP")
    if world.name == "memory":  # no allocation there: give the copy an address of its own
        address = "10.0.0.99"
        await world.cluster.patch(PRIMARY_COPY, {"spec": {"clusterIP": address}})
    assert address not in (None, "", "10.0.0.10")
    await workload.promote(canary)
    primary = await world.must_read(PRIMARY_COPY)
    assert primary["spec"]["selector"] == {"app": "podinfo-v3"}
    assert primary["spec"]["clusterIP"] == address  # its own address is kept
    assert (await workload.readiness(canary, primary=True, now=NOW)).ready
    await workload.scale_to_zero(canary)  # nothing to scale
    assert (await world.must_read(TARGET))["spec"]["selector"] == {"app": "podinfo-v3"}


async def test_the_canary_copy_follows_the_targets_labels_and_annotations(world: World) -> None:
    """Flagger's reconcileCanaryService rebuilds the -canary copy from the target on every
    Initialize, metadata included (the -primary only on promotion, by -include-label-prefix)."""
    canary = service_canary()
    target = user_service()
    target["metadata"]["labels"]["monitoring"] = "on"
    target["metadata"]["annotations"]["note"] = "old"
    world.seed(target)
    workload = TargetWorkload(world.cluster)
    await workload.initialize(canary)
    await world.cluster.patch(
        TARGET,
        {"metadata": {"labels": {"monitoring": "off"}, "annotations": {"note": None, "new": "1"}}},
    )
    await workload.initialize(canary)
    meta = (await world.must_read(CANARY_COPY))["metadata"]
    assert meta["labels"] == {"app": "podinfo", "monitoring": "off"}
    assert meta["annotations"] == {"new": "1"}


async def test_node_ports_are_each_copy_s_own(world: World) -> None:
    # A real API server refuses a node port that is already allocated (the target's), so the
    # copies are created without them, and a sync keeps the ports the server gave each copy.
    canary = service_canary()
    target = user_service()
    target["spec"].update(type="LoadBalancer", healthCheckNodePort=32000)
    target["spec"]["externalTrafficPolicy"] = "Local"
    target["spec"]["ports"][0]["nodePort"] = 30080
    world.seed(target)
    workload = TargetWorkload(world.cluster)
    await workload.initialize(canary)
    for ref in (CANARY_COPY, PRIMARY_COPY):
        spec = (await world.must_read(ref))["spec"]
        assert spec["type"] == "LoadBalancer"
        assert "healthCheckNodePort" not in spec
        assert "nodePort" not in spec["ports"][0]
    # the server allocates the copies' own ports
    for ref, port in ((CANARY_COPY, 31001), (PRIMARY_COPY, 31002)):
        copy = await world.must_read(ref)
        ports = [{**copy["spec"]["ports"][0], "nodePort": port}]
        await world.cluster.patch(ref, {"spec": {"ports": ports, "healthCheckNodePort": port + 1}})
    await workload.promote(canary)
    before = await world.must_read(PRIMARY_COPY)
    await workload.initialize(canary)
    await workload.promote(canary)
    for ref, port in ((CANARY_COPY, 31001), (PRIMARY_COPY, 31002)):
        spec = (await world.must_read(ref))["spec"]
        assert spec["ports"][0]["nodePort"] == port
        assert spec["healthCheckNodePort"] == port + 1
    after = await world.must_read(PRIMARY_COPY)
    # nothing changed in the target, so promoting again wrote nothing to the primary
    assert after["metadata"].get("resourceVersion") == before["metadata"].get("resourceVersion")
    # a new port on the target reaches the copies without a node port of its own
    target_ports = [*target["spec"]["ports"], {"name": "grpc", "port": 9999, "nodePort": 30099}]
    await world.cluster.patch(TARGET, {"spec": {"ports": target_ports}})
    await workload.promote(canary)
    ports = (await world.must_read(PRIMARY_COPY))["spec"]["ports"]
    assert [p.get("nodePort") for p in ports] == [31002, None]


async def test_a_mesh_routes_between_the_copies_without_generating_services(world: World) -> None:
    canary = service_canary("linkerd")
    world.seed(user_service())
    workload = TargetWorkload(world.cluster)
    router = router_for("linkerd", world.cluster)
    await router.initialize(canary)
    await workload.initialize(canary)
    await router.reconcile(canary)
    await router.set_routes(canary, Weights(80, 20))
    split = await world.must_read(ObjectRef(TRAFFIC_SPLIT_V1ALPHA1, NS, "podinfo"))
    assert {b["service"] for b in split["spec"]["backends"]} == {
        "podinfo-primary",
        "podinfo-canary",
    }
    # the user's Service is the apex and is left exactly as it was
    target = await world.must_read(TARGET)
    assert target["spec"]["selector"] == {"app": "podinfo-v2"}
    assert "ownerReferences" not in target["metadata"]


def test_the_kubernetes_provider_cannot_drive_a_service_target() -> None:
    with pytest.raises(SpecError, match="a Service target needs a router that routes between"):
        service_canary("kubernetes")
