"""Kuma: a cluster-scoped TrafficRoute splitting the service (Flagger's kuma.go)."""

from __future__ import annotations

from typing import Any

from router_world import World
from traffic_testkit import canary_body, deployment

from config import parse_canary
from traffic import DeploymentWorkload, Routes, Weights, router_for
from traffic.cluster import ObjectRef
from traffic.routers.kuma import TRAFFIC_ROUTE

ROUTE = ObjectRef(TRAFFIC_ROUTE, "", "podinfo")


async def setup(world: World, mesh: str | None = None) -> Any:
    body = canary_body(provider="kuma")
    if mesh:
        body["metadata"]["annotations"] = {"kuma.io/mesh": mesh}
    canary = parse_canary(body)
    world.seed(deployment())
    router = router_for("kuma", world.cluster)
    await router.initialize(canary)
    await DeploymentWorkload(world.cluster).initialize(canary)
    await router.reconcile(canary)
    return canary, router


async def test_the_traffic_route_is_flaggers(world: World) -> None:
    canary, router = await setup(world, mesh="prod")
    route = await world.must_read(ROUTE)
    assert route["mesh"] == "prod"
    assert route["metadata"]["annotations"] == {
        "9898.service.kuma.io": "http",
        # cluster-scoped: no owner reference can hold it, so finalize knows it by this
        "canary-engine.io/canary": "test/podinfo",
    }
    assert route["spec"] == {
        "sources": [{"match": {"kuma.io/service": "*"}}],
        "destinations": [{"match": {"kuma.io/service": "podinfo_test_svc_9898"}}],
        "conf": {
            "split": [
                {
                    "weight": 100,
                    "destination": {"kuma.io/service": "podinfo-primary_test_svc_9898"},
                },
                {"weight": 0, "destination": {"kuma.io/service": "podinfo-canary_test_svc_9898"}},
            ]
        },
    }
    assert await router.get_routes(canary) == Routes(Weights(100, 0))


async def test_weights_round_trip_and_survive_reconcile(world: World) -> None:
    canary, router = await setup(world)
    assert (await world.must_read(ROUTE))["mesh"] == "default"
    await router.set_routes(canary, Weights(65, 35))
    assert [s["weight"] for s in (await world.must_read(ROUTE))["spec"]["conf"]["split"]] == [
        65,
        35,
    ]
    await router.reconcile(canary)
    assert await router.get_routes(canary) == Routes(Weights(65, 35))


async def test_the_cluster_scoped_route_is_deleted_with_the_canary(world: World) -> None:
    # A cluster-scoped TrafficRoute cannot name the namespaced Canary as its owner (the garbage
    # collector refuses the reference and never deletes it), so finalizing deletes it: left
    # behind it would split traffic to the -primary and -canary Services that go with the Canary.
    canary, router = await setup(world)
    assert "ownerReferences" not in (await world.must_read(ROUTE))["metadata"]
    await router.finalize(canary)
    assert await world.read(ROUTE) is None
    await router.finalize(canary)  # again, as a retried finalizing tick would: nothing to do


async def test_finalize_leaves_a_traffic_route_this_canary_did_not_make(world: World) -> None:
    # the name carries no namespace: a user's route, or another namespace's, is not ours
    theirs = {
        "apiVersion": "kuma.io/v1alpha1",
        "kind": "TrafficRoute",
        "metadata": {"name": "podinfo"},
        "mesh": "default",
        "spec": {"sources": [], "destinations": [], "conf": {"split": []}},
    }
    await world.cluster.create(theirs)
    canary, router = await setup(world)
    assert "canary-engine.io/canary" not in (await world.must_read(ROUTE))["metadata"].get(
        "annotations", {}
    )
    await router.finalize(canary)
    assert await world.read(ROUTE) is not None


async def test_finalize_keeps_flaggers_route_of_a_same_named_canary_elsewhere(world: World) -> None:
    # Flagger's owner reference names a Canary "podinfo", but of another namespace (its uid
    # differs): the route serves that Canary, not this one
    flaggers = {
        "apiVersion": "kuma.io/v1alpha1",
        "kind": "TrafficRoute",
        "metadata": {
            "name": "podinfo",
            "ownerReferences": [
                {
                    "apiVersion": "flagger.app/v1beta1",
                    "kind": "Canary",
                    "name": "podinfo",
                    "uid": "uid-of-podinfo-in-another-namespace",
                    "controller": True,
                }
            ],
        },
        "mesh": "default",
        "spec": {"sources": [], "destinations": [], "conf": {"split": []}},
    }
    await world.cluster.create(flaggers)
    canary, router = await setup(world)
    await router.finalize(canary)
    assert await world.read(ROUTE) is not None
