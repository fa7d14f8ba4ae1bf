"""MeshSplitCluster: what a router writes goes to the mesh cluster or the main one by its Kind,
as Flagger's router factory hands its ``meshClient`` or its ``kubeClient`` to each router."""

from __future__ import annotations

import json

import pytest
from traffic_testkit import NS, UID, deployment, make_canary

from traffic import DeploymentWorkload, Routes, Weights, router_for
from traffic._istio import ORIGINAL_CONFIGURATION_ANNOTATION
from traffic._registry import _modules
from traffic._scaled_object import SCALED_OBJECT
from traffic.cluster import (
    DEPLOYMENT,
    DESTINATION_RULE,
    HTTP_ROUTE,
    INGRESS,
    KNOWN_KINDS,
    SERVICE,
    VIRTUAL_SERVICE,
    InMemoryCluster,
    Kind,
    MeshSplitCluster,
    ObjectRef,
    is_mesh_kind,
)
from traffic.cluster._mesh import OWNERS_ANNOTATION

VS = ObjectRef(VIRTUAL_SERVICE, NS, "podinfo")
RULES = [ObjectRef(DESTINATION_RULE, NS, f"podinfo-{role}") for role in ("primary", "canary")]
SERVICES = [ObjectRef(SERVICE, NS, n) for n in ("podinfo", "podinfo-primary", "podinfo-canary")]

#: The routers of Flagger's router factory (pkg/router/factory.go) that get ``meshClient``, by
#: the API groups of what they write through it; nginx and skipper (Ingress) and knative (its own
#: client, from the main kubeconfig) keep ``kubeClient``.
FLAGGER_MESH_GROUPS = {
    "networking.istio.io",  # istio
    "appmesh.k8s.aws",  # appmesh, appmesh:v1beta2
    "split.smi-spec.io",  # smi:*, linkerd, osm
    "projectcontour.io",  # contour
    "gateway.solo.io",  # gloo
    "gloo.solo.io",  # gloo
    "traefik.io",  # traefik
    "apisix.apache.org",  # apisix
    "kuma.io",  # kuma
    "gateway.networking.k8s.io",  # gatewayapi:v1, gatewayapi:v1beta1
}


def router_kinds() -> set[Kind]:
    return {kind for module in _modules().values() for kind in module.kinds}


def test_the_kinds_flagger_writes_through_its_mesh_client_are_the_mesh_kinds() -> None:
    kinds = router_kinds() | set(KNOWN_KINDS) | {SCALED_OBJECT}
    assert {k.group for k in kinds if is_mesh_kind(k)} == FLAGGER_MESH_GROUPS
    # what stays on the main cluster, as Flagger's kubeClient and flaggerClient
    assert not any(is_mesh_kind(k) for k in (SERVICE, DEPLOYMENT, INGRESS))
    assert {k.group for k in kinds if not is_mesh_kind(k)} == {
        "",
        "apps",
        "autoscaling",
        "networking.k8s.io",
        "coordination.k8s.io",
        "flagger.app",
        "serving.knative.dev",
        "keda.sh",
    }


async def split(*, keep_owners: bool = False) -> tuple[InMemoryCluster, InMemoryCluster]:
    """The Istio router driven through a MeshSplitCluster: initialised, reconciled, stepped to
    30 % and reconciled again (as the next tick does)."""
    main, mesh = InMemoryCluster(), InMemoryCluster()
    main.seed(deployment())
    cluster = MeshSplitCluster(main, mesh, keep_owners=keep_owners)
    canary = make_canary(provider="istio", service={"port": 9898})
    router = router_for("istio", cluster)
    await router.initialize(canary)
    await DeploymentWorkload(main).initialize(canary)
    await router.reconcile(canary)
    await router.set_routes(canary, Weights(70, 30))
    await router.reconcile(canary)
    assert await router.get_routes(canary) == Routes(Weights(70, 30))
    return main, mesh


async def test_istio_objects_go_to_the_mesh_cluster_and_services_stay_on_the_main_one() -> None:
    main, mesh = await split()
    for ref in (VS, *RULES):
        assert mesh.peek(ref) is not None, ref
        assert main.peek(ref) is None, ref
    for ref in SERVICES:
        assert main.peek(ref) is not None, ref
        assert mesh.peek(ref) is None, ref
    assert mesh.calls["create"] == 3  # the VirtualService and two DestinationRules, nothing else


async def test_owner_references_the_mesh_cluster_cannot_hold_travel_in_an_annotation() -> None:
    main, mesh = await split()
    vs = mesh.peek(VS)
    assert vs is not None
    meta = vs["metadata"]
    # No owner reference on the mesh cluster: its garbage collector would find no Canary with
    # that uid there and delete the object (Flagger sets none either when the hosts differ).
    assert "ownerReferences" not in meta
    [owner] = json.loads(meta["annotations"][OWNERS_ANNOTATION])
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Canary", "podinfo", UID)
    # The router still knows the VirtualService as its own: it did not keep a copy of its spec to
    # restore, as it does for a user's VirtualService.
    assert ORIGINAL_CONFIGURATION_ANNOTATION not in meta["annotations"]
    # read through the split cluster: the owner reference is back, the annotation gone
    shown = await MeshSplitCluster(main, mesh).get(VS)
    assert shown is not None
    assert shown["metadata"]["ownerReferences"] == [owner]
    assert OWNERS_ANNOTATION not in (shown["metadata"].get("annotations") or {})
    # objects of the main cluster keep theirs
    service = main.peek(SERVICES[1])
    assert service is not None and service["metadata"]["ownerReferences"][0]["uid"] == UID


async def test_the_same_api_server_keeps_owner_references() -> None:
    _, mesh = await split(keep_owners=True)
    vs = mesh.peek(VS)
    assert vs is not None
    assert vs["metadata"]["ownerReferences"][0]["uid"] == UID
    assert OWNERS_ANNOTATION not in (vs["metadata"].get("annotations") or {})


async def test_list_watch_and_patch_answer_with_the_owner_references() -> None:
    main, mesh = InMemoryCluster(), InMemoryCluster()
    cluster = MeshSplitCluster(main, mesh)
    owner = {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "name": "a", "uid": "u"}
    route = {
        "apiVersion": HTTP_ROUTE.api_version,
        "kind": HTTP_ROUTE.kind,
        "metadata": {"name": "a", "namespace": NS, "ownerReferences": [owner]},
        "spec": {},
    }
    created = await cluster.create(route)
    assert created["metadata"]["ownerReferences"] == [owner]
    created["metadata"]["labels"] = {"changed": "by the caller"}  # the caller's own copy
    [listed] = await cluster.list(HTTP_ROUTE, NS)
    assert listed["metadata"]["ownerReferences"] == [owner]
    assert "annotations" not in listed["metadata"]
    with pytest.raises(TypeError):
        listed["metadata"]["name"] = "b"  # read-only, as every read body
    events = cluster.watch(HTTP_ROUTE, NS)
    first = await anext(events)
    assert first.body["metadata"]["ownerReferences"] == [owner]
    await events.aclose()
    ref = ObjectRef(HTTP_ROUTE, NS, "a")
    patched = await cluster.patch(ref, {"metadata": {"ownerReferences": None}})
    assert "ownerReferences" not in patched["metadata"]
    stored = mesh.peek(ref)
    assert stored is not None and OWNERS_ANNOTATION not in (
        stored["metadata"].get("annotations") or {}
    )
    await cluster.delete(ref)
    assert mesh.peek(ref) is None and main.calls["delete"] == 0


async def test_an_annotation_that_is_not_a_list_is_left_as_it_is() -> None:
    main, mesh = InMemoryCluster(), InMemoryCluster()
    mesh.seed(
        {
            "apiVersion": VIRTUAL_SERVICE.api_version,
            "kind": VIRTUAL_SERVICE.kind,
            "metadata": {
                "name": "podinfo",
                "namespace": NS,
                "annotations": {OWNERS_ANNOTATION: "x"},
            },
            "spec": {},
        }
    )
    body = await MeshSplitCluster(main, mesh).get(VS)
    assert body is not None and body["metadata"]["annotations"] == {OWNERS_ANNOTATION: "x"}
