"""Traefik: a TraefikService weighted round robin (Flagger's traefik.go)."""

from __future__ import annotations

from typing import Any

from router_world import World
from traffic_testkit import NS, deployment, make_canary

from traffic import DeploymentWorkload, Routes, Weights, router_for
from traffic.cluster import ObjectRef
from traffic.routers.traefik import TRAEFIK_SERVICE

TS = ObjectRef(TRAEFIK_SERVICE, NS, "podinfo")


async def setup(world: World, **spec: Any) -> Any:
    canary = make_canary(provider="traefik", **spec)
    world.seed(deployment())
    router = router_for("traefik", world.cluster)
    await router.initialize(canary)
    await DeploymentWorkload(world.cluster).initialize(canary)
    await router.reconcile(canary)
    return canary, router


async def test_the_service_starts_on_the_primary_only(world: World) -> None:
    service = {"port": 9898, "apex": {"labels": {"team": "a"}, "annotations": {"note": "x"}}}
    canary, router = await setup(world, service=service)
    body = await world.must_read(TS)
    assert body["apiVersion"] == "traefik.io/v1alpha1"
    assert body["metadata"]["labels"] == {"team": "a"}
    assert body["metadata"]["annotations"] == {"note": "x"}
    assert body["spec"] == {
        "weighted": {
            "services": [{"name": "podinfo-primary", "namespace": NS, "port": 9898, "weight": 100}]
        }
    }
    assert await router.get_routes(canary) == Routes(Weights(100, 0))


async def test_the_canary_joins_with_its_weight_and_leaves_at_zero(world: World) -> None:
    canary, router = await setup(world)
    await router.set_routes(canary, Weights(90, 10))
    services = (await world.must_read(TS))["spec"]["weighted"]["services"]
    assert [(s["name"], s["weight"]) for s in services] == [
        ("podinfo-primary", 90),
        ("podinfo-canary", 10),
    ]
    await router.reconcile(canary)
    assert await router.get_routes(canary) == Routes(Weights(90, 10))
    await router.set_routes(canary, Weights(100, 0))
    services = (await world.must_read(TS))["spec"]["weighted"]["services"]
    assert [s["name"] for s in services] == ["podinfo-primary"]
    assert await router.get_routes(canary) == Routes(Weights(100, 0))
