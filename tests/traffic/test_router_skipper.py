"""Skipper: a -canary Ingress whose backend-weights annotation splits traffic (Flagger's
skipper.go)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from router_world import World
from traffic_testkit import NS, deployment, make_canary

from traffic import DeploymentWorkload, Routes, RoutingError, Weights, router_for
from traffic.cluster import INGRESS, ObjectRef
from traffic.routers.skipper import PREDICATE_ANNOTATION, WEIGHTS_ANNOTATION

USER = ObjectRef(INGRESS, NS, "podinfo")
COPY = ObjectRef(INGRESS, NS, "podinfo-canary")


def ingress(backend: str = "podinfo") -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "podinfo",
            "namespace": NS,
            "annotations": {
                "kubernetes.io/ingress.class": "skipper",
                PREDICATE_ANNOTATION: 'Method("GET")',
            },
        },
        "spec": {
            "rules": [
                {
                    "host": "app.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": backend, "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ]
        },
    }


async def setup(world: World, user: dict[str, Any] | None = None) -> Any:
    canary = make_canary(
        provider="skipper",
        ingressRef={"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "podinfo"},
    )
    world.seed(deployment(), user or ingress())
    router = router_for("skipper", world.cluster)
    await router.initialize(canary)
    await DeploymentWorkload(world.cluster).initialize(canary)
    await router.reconcile(canary)
    return canary, router


def annotations_of(body: dict[str, Any]) -> dict[str, str]:
    return dict(body["metadata"]["annotations"])


async def test_the_canary_ingress_routes_to_both_services(world: World) -> None:
    canary, router = await setup(world)
    copy = await world.must_read(COPY)
    paths = copy["spec"]["rules"][0]["http"]["paths"]
    assert [p["backend"]["service"]["name"] for p in paths] == ["podinfo-primary", "podinfo-canary"]
    found = annotations_of(copy)
    assert json.loads(found[WEIGHTS_ANNOTATION]) == {"podinfo-canary": 0, "podinfo-primary": 100}
    assert found[WEIGHTS_ANNOTATION] == '{"podinfo-canary":0,"podinfo-primary":100}'  # Go's order
    assert found[PREDICATE_ANNOTATION] == 'Weight(100) && Method("GET")'
    assert found["kubernetes.io/ingress.class"] == "skipper"
    assert (await world.must_read(USER))["spec"] == ingress()["spec"]
    assert await router.get_routes(canary) == Routes(Weights(100, 0))


async def test_the_canary_copies_follow_all_the_users_paths(world: World) -> None:
    """Flagger appends each canary copy after the user's paths (``rule.HTTP.Paths =
    append(rule.HTTP.Paths, *canaryBackend)`` inside a loop over the original paths)."""
    user = ingress()
    paths = user["spec"]["rules"][0]["http"]["paths"]
    paths.append(
        {
            "path": "/other",
            "pathType": "Prefix",
            "backend": {"service": {"name": "other", "port": {"number": 80}}},
        }
    )
    await setup(world, user)
    copy = await world.must_read(COPY)
    found = [p["backend"]["service"]["name"] for p in copy["spec"]["rules"][0]["http"]["paths"]]
    assert found == ["podinfo-primary", "other", "podinfo-canary"]


async def test_a_spec_change_copies_the_users_annotations_again(world: World) -> None:
    """Flagger's skipper.go: when the user's Ingress changes its spec, the canary Ingress takes
    its spec and its annotations again (the routing annotations here keep their weights)."""
    canary, router = await setup(world)
    await router.set_routes(canary, Weights(70, 30))
    spec = ingress()["spec"]
    spec["rules"][0]["host"] = "shop.example.com"
    annotations = {"team": "payments", PREDICATE_ANNOTATION: 'Method("POST")'}
    await world.cluster.patch(
        USER,
        {
            "metadata": {"annotations": {**annotations, "kubernetes.io/ingress.class": None}},
            "spec": spec,
        },
    )
    await router.reconcile(canary)
    found = annotations_of(await world.must_read(COPY))
    assert "kubernetes.io/ingress.class" not in found and found["team"] == "payments"
    assert found[PREDICATE_ANNOTATION] == 'Weight(100) && Method("POST")'
    assert await router.get_routes(canary) == Routes(Weights(70, 30))


async def test_weights_and_the_switch_off_at_zero(world: World) -> None:
    canary, router = await setup(world)
    await router.set_routes(canary, Weights(70, 30))
    found = annotations_of(await world.must_read(COPY))
    assert json.loads(found[WEIGHTS_ANNOTATION]) == {"podinfo-canary": 30, "podinfo-primary": 70}
    assert found[PREDICATE_ANNOTATION] == 'Weight(100) && Method("GET")'
    assert await router.get_routes(canary) == Routes(Weights(70, 30))
    await router.reconcile(canary)
    assert await router.get_routes(canary) == Routes(Weights(70, 30))
    await router.set_routes(canary, Weights(100, 0))
    found = annotations_of(await world.must_read(COPY))
    assert found[PREDICATE_ANNOTATION] == 'False() && Method("GET")'  # the user's Ingress serves
    await router.set_routes(canary, Weights(90, 10))
    assert annotations_of(await world.must_read(COPY))[PREDICATE_ANNOTATION].startswith(
        "Weight(100)"
    )
    await router.finalize(canary)
    predicate = annotations_of(await world.must_read(COPY))[PREDICATE_ANNOTATION]
    assert predicate.startswith("False()")


async def test_an_ingress_without_the_apex_backend_is_an_error(world: World) -> None:
    with pytest.raises(RoutingError, match="backend podinfo not found in ingress podinfo"):
        await setup(world, ingress(backend="other"))
