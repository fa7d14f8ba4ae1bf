"""Gloo Edge: a RouteTable over two generated Upstreams (Flagger's gloo.go)."""

from __future__ import annotations

from typing import Any

import pytest
from router_world import World
from traffic_testkit import NS, deployment, make_canary

from config import Strategy
from traffic import DeploymentWorkload, Routes, RoutingError, Weights, router_for
from traffic.cluster import ObjectRef
from traffic.routers.gloo import ROUTE_TABLE, UPSTREAM

TABLE = ObjectRef(ROUTE_TABLE, NS, "podinfo")
PRIMARY_UPSTREAM = ObjectRef(UPSTREAM, NS, "test-podinfo-primaryupstream-9898")
CANARY_UPSTREAM = ObjectRef(UPSTREAM, NS, "test-podinfo-canaryupstream-9898")


def config_upstream() -> dict[str, Any]:
    return {
        "apiVersion": "gloo.solo.io/v1",
        "kind": "Upstream",
        "metadata": {"name": "podinfo-config", "namespace": "gloo-system"},
        "spec": {
            "connectionConfig": {"maxRequestsPerConnection": 10},
            "useHttp2": True,
            "kube": {"serviceName": "ignored", "serviceNamespace": "x", "servicePort": 1},
        },
    }


async def setup(world: World, **spec: Any) -> Any:
    canary = make_canary(provider="gloo", **spec)
    world.seed(deployment(), config_upstream())
    router = router_for("gloo", world.cluster)
    await router.initialize(canary)
    await DeploymentWorkload(world.cluster).initialize(canary)
    await router.reconcile(canary)
    return canary, router


def destinations(table: dict[str, Any]) -> dict[str, int]:
    (route,) = table["spec"]["routes"]
    return {
        d["destination"]["upstream"]["name"]: d["weight"]
        for d in route["action"]["multi"]["destinations"]
    }


async def test_upstreams_and_route_table_are_created(world: World) -> None:
    canary, router = await setup(
        world, upstreamRef={"name": "podinfo-config", "namespace": "gloo-system"}
    )
    primary = await world.must_read(PRIMARY_UPSTREAM)
    assert primary["spec"] == {
        "connectionConfig": {"maxRequestsPerConnection": 10},
        "useHttp2": True,
        "kube": {
            "serviceName": "podinfo-primary",
            "serviceNamespace": NS,
            "servicePort": 9898,
            "selector": {"app": "podinfo-primary"},
        },
    }
    assert (await world.must_read(CANARY_UPSTREAM))["spec"]["kube"]["selector"] == {
        "app": "podinfo"
    }
    table = await world.must_read(TABLE)
    assert table["spec"]["routes"][0]["inheritablePathMatchers"] is True
    assert "matchers" not in table["spec"]["routes"][0]
    assert destinations(table) == {PRIMARY_UPSTREAM.name: 100, CANARY_UPSTREAM.name: 0}
    assert await router.get_routes(canary) == Routes(Weights(100, 0))


async def test_weights_round_trip_and_survive_reconcile(world: World) -> None:
    canary, router = await setup(world)
    await router.set_routes(canary, Weights(75, 25))
    assert destinations(await world.must_read(TABLE)) == {
        PRIMARY_UPSTREAM.name: 75,
        CANARY_UPSTREAM.name: 25,
    }
    await router.reconcile(canary)
    assert await router.get_routes(canary) == Routes(Weights(75, 25))


async def test_ab_testing_puts_headers_and_methods_in_the_matchers(world: World) -> None:
    analysis = {
        "interval": "1m",
        "threshold": 5,
        "iterations": 10,
        "match": [
            {"headers": {"x-canary": {"exact": "insider"}}},
            {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}},
            {"method": {"exact": "POST"}},
        ],
    }
    canary, router = await setup(world, analysis=analysis)
    await router.set_routes(canary, Weights(0, 100))
    route = (await world.must_read(TABLE))["spec"]["routes"][0]
    assert route["matchers"] == [
        {
            "headers": [
                {"name": "x-canary", "value": "insider"},
                {"name": "cookie", "value": "^(.*?;)?(canary=always)(;.*)?$", "regex": True},
            ],
            "methods": ["POST"],
        }
    ]
    assert await router.get_routes(canary) == Routes(Weights(0, 100))


async def test_match_with_step_weight_steps_only_the_matching_requests(world: World) -> None:
    # Flagger's canary strategy with analysis.match (no iterations): SetRoutes (gloo.go) writes
    # the matchers on the weighted route, so the RouteTable steps the matching requests only.
    analysis = {
        "interval": "1m",
        "threshold": 5,
        "stepWeight": 10,
        "maxWeight": 50,
        "match": [{"headers": {"x-canary": {"exact": "insider"}}}],
    }
    canary, router = await setup(world, analysis=analysis)
    assert canary.spec.effective_analysis.strategy is Strategy.CANARY
    for step in (0, 10, 20):
        if step:
            await router.set_routes(canary, Weights(100 - step, step))
        table = await world.must_read(TABLE)
        (route,) = table["spec"]["routes"]
        assert route["matchers"] == [{"headers": [{"name": "x-canary", "value": "insider"}]}]
        assert destinations(table) == {
            PRIMARY_UPSTREAM.name: 100 - step,
            CANARY_UPSTREAM.name: step,
        }
        assert await router.get_routes(canary) == Routes(Weights(100 - step, step))
    await router.reconcile(canary)
    assert await router.get_routes(canary) == Routes(Weights(80, 20))


async def test_a_missing_config_upstream_is_named(world: World) -> None:
    canary = make_canary(provider="gloo", upstreamRef={"name": "nope"})
    world.seed(deployment())
    router = router_for("gloo", world.cluster)
    await router.initialize(canary)
    with pytest.raises(RoutingError, match=r"config upstream nope\.test \(spec.upstreamRef\)"):
        await router.reconcile(canary)
