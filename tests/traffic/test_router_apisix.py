"""APISIX: a -canary copy of the user's ApisixRoute with weighted backends (Flagger's apisix.go)."""

from __future__ import annotations

from typing import Any

import pytest
from router_world import World
from traffic_testkit import NS, deployment, make_canary

from config import SpecError
from traffic import DeploymentWorkload, Routes, RoutingError, Weights, router_for
from traffic.cluster import ObjectRef
from traffic.routers.apisix import APISIX_ROUTE

USER = ObjectRef(APISIX_ROUTE, NS, "podinfo-route")
COPY = ObjectRef(
    APISIX_ROUTE, NS, "podinfo-route-podinfo-canary"
)  # <route>-<svc>-canary, as Flagger


def user_route(backends: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apisix.apache.org/v2",
        "kind": "ApisixRoute",
        "metadata": {"name": "podinfo-route", "namespace": NS, "labels": {"team": "a"}},
        "spec": {
            "http": [
                {
                    "name": "method",
                    "match": {"hosts": ["app.example.com"], "paths": ["/*"]},
                    "backends": [
                        {
                            "serviceName": "podinfo",
                            "servicePort": 80,
                            "resolveGranularity": "endpoint",
                        }
                    ]
                    * backends,
                }
            ]
        },
    }


async def setup(world: World, route: dict[str, Any] | None = None) -> Any:
    canary = make_canary(
        provider="apisix",
        routeRef={
            "apiVersion": "apisix.apache.org/v2",
            "kind": "ApisixRoute",
            "name": "podinfo-route",
        },
    )
    world.seed(deployment(), route or user_route())
    router = router_for("apisix", world.cluster)
    await router.initialize(canary)
    await DeploymentWorkload(world.cluster).initialize(canary)
    await router.reconcile(canary)
    return canary, router


async def test_the_copy_outranks_the_user_route_and_starts_on_the_primary(world: World) -> None:
    canary, router = await setup(world)
    copy = await world.must_read(COPY)
    assert copy["metadata"]["labels"] == {"team": "a"}
    (http,) = copy["spec"]["http"]
    assert http["priority"] == 10000
    assert http["match"] == {"hosts": ["app.example.com"], "paths": ["/*"]}
    assert http["backends"] == [
        {
            "serviceName": "podinfo-primary",
            "servicePort": 80,
            "resolveGranularity": "endpoint",
            "weight": 100,
        },
        {
            "serviceName": "podinfo-canary",
            "servicePort": 80,
            "resolveGranularity": "endpoint",
            "weight": 0,
        },
    ]
    assert (await world.must_read(USER))["spec"] == user_route()["spec"]  # untouched
    assert await router.get_routes(canary) == Routes(Weights(100, 0))


async def test_weights_round_trip_and_survive_reconcile(world: World) -> None:
    canary, router = await setup(world)
    await router.set_routes(canary, Weights(85, 15))
    assert [b["weight"] for b in (await world.must_read(COPY))["spec"]["http"][0]["backends"]] == [
        85,
        15,
    ]
    await router.reconcile(canary)
    assert await router.get_routes(canary) == Routes(Weights(85, 15))


async def test_a_route_with_two_backends_is_refused(world: World) -> None:
    with pytest.raises(RoutingError, match="http route 'method' must have one backend"):
        await setup(world, user_route(backends=2))


async def test_the_http_route_of_the_apex_service_is_the_one_split(world: World) -> None:
    """Flagger's getTargetHttpRoute: the first HTTP route with a backend ``<svc>``, alone in the
    canary route (``apisixRouteClone.Spec.HTTP = []a6v2.ApisixRouteHTTP{*targetHttpRoute}``)."""
    route = user_route()
    other = {
        "name": "static",
        "match": {"paths": ["/static/*"]},
        "backends": [{"serviceName": "static", "servicePort": 80}],
    }
    route["spec"]["http"].insert(0, other)
    canary, router = await setup(world, route)
    (split,) = (await world.must_read(COPY))["spec"]["http"]
    assert split["name"] == "method" and split["priority"] == 10000
    assert [b["serviceName"] for b in split["backends"]] == ["podinfo-primary", "podinfo-canary"]
    await router.set_routes(canary, Weights(70, 30))
    assert await router.get_routes(canary) == Routes(Weights(70, 30))


async def test_a_route_without_the_apex_backend_is_named(world: World) -> None:
    route = user_route()
    route["spec"]["http"][0]["backends"][0]["serviceName"] = "elsewhere"
    with pytest.raises(RoutingError, match="no http route has the backend podinfo"):
        await setup(world, route)


def test_route_ref_is_required() -> None:
    with pytest.raises(SpecError, match=r"spec\.routeRef: required when provider is apisix"):
        make_canary(provider="apisix")
