"""What the routers write to the API server: nothing when nothing changed, and the metadata
patches of the routing objects they share with users (apex labels and annotations, Istio's
original configuration). The routers' create-or-patch helpers live in ``traffic._objects``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from router_world import World
from traffic_testkit import NOW, NS, deployment, make_canary

from config import Canary
from traffic import Body, Cluster, ObjectRef, TargetWorkload, Weights, router_for
from traffic.cluster import HTTP_ROUTE
from traffic.routers.appmesh import VIRTUAL_SERVICE_V1BETA2

GATEWAY = [{"name": "public", "namespace": "istio-ingress"}]


class Recorder:
    """A Cluster that records the writes going through it (reads pass straight through)."""

    def __init__(self, inner: Cluster) -> None:
        self._inner = inner
        self.writes: list[tuple[str, str, Body]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def create(self, body: Body) -> Body:
        meta = body["metadata"]
        self.writes.append(("create", f"{body['kind']}/{meta['name']}", body))
        return await self._inner.create(body)

    async def patch(self, ref: ObjectRef, patch: Body, **kwargs: Any) -> Body:
        self.writes.append(("patch", f"{ref.kind.kind}/{ref.name}", patch))
        return await self._inner.patch(ref, patch, **kwargs)

    async def delete(self, ref: ObjectRef) -> None:
        self.writes.append(("delete", f"{ref.kind.kind}/{ref.name}", {}))
        await self._inner.delete(ref)


def canary_for(provider: str, **service: Any) -> Canary:
    base: dict[str, Any] = {"port": 9898}
    if provider.startswith("gatewayapi"):
        base["gatewayRefs"] = GATEWAY
    if provider == "appmesh":
        base["meshName"] = "global"
    return make_canary(provider=provider, service={**base, **service})


async def reconciled(world: World, canary: Canary, *objects: Body) -> tuple[Recorder, Any]:
    world.seed(deployment(), *objects)
    cluster = Recorder(world.cluster)
    router = router_for(canary.spec.provider or "", cluster)  # type: ignore[arg-type]
    workload = TargetWorkload(cluster)  # type: ignore[arg-type]
    await router.initialize(canary)
    await workload.initialize(canary)
    await workload.readiness(canary, primary=True, now=NOW)
    await router.reconcile(canary)
    return cluster, router


@pytest.mark.parametrize(
    "provider",
    ["gatewayapi:v1", "istio", "appmesh", "appmesh:v1beta2", "contour", "linkerd", "kuma"],
)
async def test_nothing_is_written_when_nothing_changed(world: World, provider: str) -> None:
    canary = canary_for(provider, apex={"labels": {"team": "a"}, "annotations": {"note": "n"}})
    cluster, router = await reconciled(world, canary)
    assert any(verb == "create" for verb, _, _ in cluster.writes)
    cluster.writes.clear()
    await router.reconcile(canary)
    await router.set_routes(canary, Weights(100, 0))
    assert cluster.writes == []
    await router.set_routes(canary, Weights(90, 10))
    assert [verb for verb, _, _ in cluster.writes] != []
    cluster.writes.clear()
    await router.set_routes(canary, Weights(90, 10))
    await router.reconcile(canary)
    assert cluster.writes == []


@pytest.mark.parametrize(
    ("provider", "kind"), [("gatewayapi:v1", "HTTPRoute"), ("istio", "VirtualService")]
)
async def test_apex_metadata_changes_are_patched_key_by_key(
    world: World, provider: str, kind: str
) -> None:
    first = {"labels": {"team": "a", "tier": "web"}, "annotations": {"note": "n"}}
    cluster, router = await reconciled(world, canary_for(provider, apex=first))
    cluster.writes.clear()
    second = {
        "labels": {"team": "b", "tier": "web"},
        "annotations": {"note": "n", "new": "y", "kustomize.toolkit.fluxcd.io/name": "flux"},
    }
    await router.reconcile(canary_for(provider, apex=second))
    ours = [patch for verb, what, patch in cluster.writes if what == f"{kind}/podinfo"]
    # only what differs, never a spec, never a delete of a key the apex no longer names
    assert ours == [{"metadata": {"labels": {"team": "b"}, "annotations": {"new": "y"}}}]


async def test_istio_keeps_a_users_spec_once_with_the_first_change(world: World) -> None:
    users_spec = {"hosts": ["podinfo"], "http": [{"route": [{"destination": {"host": "podinfo"}}]}]}
    users = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "podinfo", "namespace": NS, "annotations": {"note": "old"}},
        "spec": users_spec,
    }
    canary = canary_for("istio", apex={"annotations": {"note": "new"}})
    cluster, router = await reconciled(world, canary, users)
    ours = [patch for verb, what, patch in cluster.writes if what == "VirtualService/podinfo"]
    assert len(ours) == 1
    assert set(ours[0]) == {"spec", "metadata"}
    annotations = ours[0]["metadata"]["annotations"]
    assert annotations["note"] == "new"
    assert json.loads(annotations["flagger.kubernetes.io/original-configuration"]) == users_spec
    cluster.writes.clear()
    await router.set_routes(canary, Weights(90, 10))
    await router.reconcile(canary_for("istio", hosts=["app.example.com"]))
    ours = [patch for verb, what, patch in cluster.writes if what == "VirtualService/podinfo"]
    assert len(ours) == 2 and all(set(patch) == {"spec"} for patch in ours)


async def test_istio_does_not_keep_the_spec_of_a_virtual_service_it_owns(world: World) -> None:
    canary = canary_for("istio")
    cluster, router = await reconciled(world, canary)
    cluster.writes.clear()
    await router.reconcile(canary_for("istio", hosts=["app.example.com"]))
    ours = [patch for verb, what, patch in cluster.writes if what == "VirtualService/podinfo"]
    assert len(ours) == 1 and set(ours[0]) == {"spec"}


async def test_app_mesh_writes_the_gateway_annotations_only_when_creating(world: World) -> None:
    # Unlike the Gateway API and Istio routers, App Mesh patches an existing object's spec only.
    canary = canary_for("appmesh:v1beta2")
    cluster, router = await reconciled(world, canary)
    cluster.writes.clear()
    await router.reconcile(canary_for("appmesh:v1beta2", hosts=["app.example.com"]))
    assert cluster.writes == []
    body = await world.must_read(ObjectRef(VIRTUAL_SERVICE_V1BETA2, NS, "podinfo"))
    assert "gateway.appmesh.k8s.aws/expose" not in (body["metadata"].get("annotations") or {})


async def test_routing_objects_are_created_owned_by_the_canary(world: World) -> None:
    canary = canary_for("gatewayapi:v1", apex={"labels": {"team": "a"}})
    cluster, _ = await reconciled(world, canary)
    created = {what: body for verb, what, body in cluster.writes if verb == "create"}
    route = created["HTTPRoute/podinfo"]
    assert route["apiVersion"] == HTTP_ROUTE.api_version
    assert route["metadata"]["labels"] == {"team": "a"}
    assert "annotations" not in route["metadata"]
    assert route["metadata"]["ownerReferences"][0]["kind"] == "Canary"
