"""The Istio router: DestinationRules and a VirtualService carrying the weights."""

from __future__ import annotations

import json
from typing import Any

import pytest
from router_world import World
from traffic_testkit import NS, deployment, make_canary

from config import Canary, Strategy
from traffic import DeploymentWorkload, Router, Routes, RoutingError, Weights, router_for
from traffic.cluster import DESTINATION_RULE, VIRTUAL_SERVICE, Body, InMemoryCluster, ObjectRef

VS = ObjectRef(VIRTUAL_SERVICE, NS, "podinfo")
AB = {
    "interval": "1m",
    "threshold": 5,
    "iterations": 10,
    "match": [{"headers": {"x-canary": {"exact": "insider"}}}],
}


async def reconciled(canary: Canary, *seed: Body) -> tuple[InMemoryCluster, Router]:
    cluster = InMemoryCluster()
    cluster.seed(deployment(), *seed)
    router = router_for("istio", cluster)
    await router.initialize(canary)
    await DeploymentWorkload(cluster).initialize(canary)
    await router.reconcile(canary)
    return cluster, router


def vs_spec(cluster: InMemoryCluster) -> Any:
    body = cluster.peek(VS)
    assert body is not None
    return body["spec"]


def istio_canary(**service: Any) -> Canary:
    return make_canary(provider="istio", service={"port": 9898, **service})


async def test_reconcile_creates_destination_rules_and_an_all_primary_virtual_service() -> None:
    canary = istio_canary(trafficPolicy={"tls": {"mode": "ISTIO_MUTUAL"}})
    cluster, router = await reconciled(canary)
    for host in ("podinfo-canary", "podinfo-primary"):
        rule = cluster.peek(ObjectRef(DESTINATION_RULE, NS, host))
        assert rule is not None
        assert rule["spec"] == {"host": host, "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}
    assert vs_spec(cluster) == {
        "hosts": ["podinfo"],
        "gateways": ["mesh"],
        "http": [
            {
                "route": [
                    {"destination": {"host": "podinfo-primary"}, "weight": 100},
                    {"destination": {"host": "podinfo-canary"}, "weight": 0},
                ]
            }
        ],
    }
    assert await router.get_routes(canary) == Routes(Weights(100, 0))


async def test_hosts_gateways_and_route_options_come_from_the_service() -> None:
    canary = istio_canary(
        hosts=["app.example.com"],
        gateways=["public-gateway"],
        timeout="5s",
        retries={"attempts": 3},
        match=[{"uri": {"prefix": "/api"}}],
        rewrite={"uri": "/", "type": "ReplacePrefixMatch"},
    )
    cluster, _ = await reconciled(canary)
    spec = vs_spec(cluster)
    assert spec["hosts"] == ["app.example.com", "podinfo"]
    assert spec["gateways"] == ["public-gateway"]
    http = spec["http"][0]
    assert http["match"] == [{"uri": {"prefix": "/api"}}]
    assert http["rewrite"] == {"uri": "/"}
    assert (http["timeout"], http["retries"]) == ("5s", {"attempts": 3})


async def test_set_and_get_routes_round_trip_with_mirroring() -> None:
    analysis = {"interval": "1m", "threshold": 5, "stepWeight": 10, "mirror": True}
    analysis["mirrorWeight"] = 50
    canary = make_canary(provider="istio", analysis=analysis)
    cluster, router = await reconciled(canary)
    await router.set_routes(canary, Weights(70, 30))
    assert await router.get_routes(canary) == Routes(Weights(70, 30))
    await router.set_routes(canary, Weights(100, 0, mirrored=True))
    http = vs_spec(cluster)["http"][0]
    assert http["mirror"] == {"host": "podinfo-canary"}
    assert http["mirrorPercentage"] == {"value": 50}
    assert await router.get_routes(canary) == Routes(Weights(100, 0, mirrored=True))


async def test_reconcile_applies_spec_changes_without_moving_traffic() -> None:
    canary = istio_canary()
    cluster, router = await reconciled(canary)
    await router.set_routes(canary, Weights(60, 40, mirrored=True))
    changed = istio_canary(timeout="10s")
    await router.reconcile(changed)
    http = vs_spec(cluster)["http"][0]
    assert http["timeout"] == "10s"
    assert await router.get_routes(changed) == Routes(Weights(60, 40, mirrored=True))


async def test_ab_testing_writes_a_matched_route_and_a_primary_fallback() -> None:
    canary = make_canary(
        provider="istio", analysis=AB, service={"port": 9898, "match": [{"uri": {"prefix": "/"}}]}
    )
    cluster, router = await reconciled(canary)
    await router.set_routes(canary, Weights(0, 100))
    matched, fallback = vs_spec(cluster)["http"]
    assert matched["match"] == [
        {"uri": {"prefix": "/"}, "headers": {"x-canary": {"exact": "insider"}}}
    ]
    assert [r["weight"] for r in matched["route"]] == [0, 100]
    assert fallback["match"] == [{"uri": {"prefix": "/"}}]
    # the primary's weight, as Flagger's SetRoutes writes it (TestIstioRouter_ABTest)
    assert fallback["route"] == [{"destination": {"host": "podinfo-primary"}, "weight": 0}]
    assert await router.get_routes(canary) == Routes(Weights(0, 100))
    await router.reconcile(canary)  # reconcile keeps it
    assert vs_spec(cluster)["http"][1]["route"][0]["weight"] == 0
    await router.set_routes(canary, Weights(100, 0))
    assert vs_spec(cluster)["http"][1]["route"][0]["weight"] == 100


async def test_match_with_step_weight_steps_only_the_matching_requests(world: World) -> None:
    # Flagger's canary strategy with analysis.match (no iterations): its SetRoutes (istio.go)
    # puts the weighted pair on the route carrying the match and sends the rest to the primary,
    # so the steps of stepWeight split the matching requests only.
    analysis = {**AB, "stepWeight": 10, "maxWeight": 50}
    del analysis["iterations"]
    canary = make_canary(
        provider="istio",
        analysis=analysis,
        service={"port": 9898, "match": [{"uri": {"prefix": "/api"}}]},
    )
    assert canary.spec.effective_analysis.strategy is Strategy.CANARY
    world.seed(deployment())
    router = router_for("istio", world.cluster)
    await router.initialize(canary)
    await DeploymentWorkload(world.cluster).initialize(canary)
    await router.reconcile(canary)
    assert await router.get_routes(canary) == Routes(Weights(100, 0))

    def http(primary: int, canary_weight: int) -> list[Body]:
        return [
            {
                "match": [
                    {"uri": {"prefix": "/api"}, "headers": {"x-canary": {"exact": "insider"}}}
                ],
                "route": [
                    {"destination": {"host": "podinfo-primary"}, "weight": primary},
                    {"destination": {"host": "podinfo-canary"}, "weight": canary_weight},
                ],
            },
            # the primary's weight, as Flagger's SetRoutes writes it: Istio sends all of a
            # one-destination route's traffic there
            {
                "match": [{"uri": {"prefix": "/api"}}],
                "route": [{"destination": {"host": "podinfo-primary"}, "weight": primary}],
            },
        ]

    assert (await world.must_read(VS))["spec"]["http"] == http(100, 0)
    for step in (10, 20, 50):
        await router.set_routes(canary, Weights(100 - step, step))
        assert (await world.must_read(VS))["spec"]["http"] == http(100 - step, step)
        assert await router.get_routes(canary) == Routes(Weights(100 - step, step))
    await router.reconcile(canary)  # drift correction keeps the step
    assert (await world.must_read(VS))["spec"]["http"] == http(50, 50)
    await router.set_routes(canary, Weights(100, 0))  # rollback / promotion finished
    assert (await world.must_read(VS))["spec"]["http"] == http(100, 0)
    assert await router.get_routes(canary) == Routes(Weights(100, 0))


async def test_a_tcp_service_is_routed_by_an_l4_route() -> None:
    # Flagger's TestIstioRouter_SetRoutesTCP / GetRoutesTCP: appProtocol tcp, L4 port matches
    canary = istio_canary(appProtocol="TCP", match=[{"port": 9898}])
    cluster, router = await reconciled(canary)
    spec = vs_spec(cluster)
    assert "http" not in spec
    assert spec["tcp"] == [
        {
            "match": [{"port": 9898}],
            "route": [
                {"destination": {"host": "podinfo-primary"}, "weight": 100},
                {"destination": {"host": "podinfo-canary"}, "weight": 0},
            ],
        }
    ]
    assert await router.get_routes(canary) == Routes(Weights(100, 0))
    await router.set_routes(canary, Weights(60, 40, mirrored=True))  # no mirror on TCP
    assert [r["weight"] for r in vs_spec(cluster)["tcp"][0]["route"]] == [60, 40]
    assert "mirror" not in vs_spec(cluster)["tcp"][0]
    assert await router.get_routes(canary) == Routes(Weights(60, 40))
    await router.reconcile(canary)  # keeps the weights
    assert await router.get_routes(canary) == Routes(Weights(60, 40))


async def test_a_users_virtual_service_is_restored_on_finalize() -> None:
    users = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {"hosts": ["podinfo"], "http": [{"route": [{"destination": {"host": "podinfo"}}]}]},
    }
    canary = istio_canary()
    cluster, router = await reconciled(canary, users)
    body = cluster.peek(VS)
    assert body is not None
    stored = body["metadata"]["annotations"]["flagger.kubernetes.io/original-configuration"]
    assert json.loads(stored) == users["spec"]
    assert await router.get_routes(canary) == Routes(Weights(100, 0))
    await router.finalize(canary)
    assert vs_spec(cluster) == users["spec"]


async def test_routes_cannot_be_set_before_the_virtual_service_exists() -> None:
    cluster = InMemoryCluster()
    cluster.seed(deployment())
    router = router_for("istio", cluster)
    assert await router.get_routes(istio_canary()) == Routes(Weights(100, 0))
    with pytest.raises(RoutingError, match=r"VirtualService podinfo\.test not found"):
        await router.set_routes(istio_canary(), Weights(90, 10))


async def test_a_virtual_service_without_our_routes_is_an_error() -> None:
    canary = istio_canary()
    cluster, router = await reconciled(canary)
    await cluster.patch(VS, {"spec": {"http": [{"route": [{"destination": {"host": "x"}}]}]}})
    with pytest.raises(RoutingError, match="does not contain routes for podinfo-primary"):
        await router.get_routes(canary)


# Session affinity: tests/traffic/test_session_affinity.py


@pytest.mark.parametrize(
    ("service", "field"),
    [
        ({"timeout": "30"}, r"spec\.service\.timeout"),
        ({"timeout": "0s"}, r"spec\.service\.timeout"),
        (
            {"retries": {"attempts": 3, "perTryTimeout": "2 s"}},
            r"spec\.service\.retries\.perTryTimeout",
        ),
        (
            {"corsPolicy": {"allowOrigin": ["https://a"], "maxAge": "1d"}},
            r"spec\.service\.corsPolicy\.maxAge",
        ),
    ],
)
def test_durations_istio_would_refuse_are_refused_when_loaded(
    service: dict[str, Any], field: str
) -> None:
    # Istio's CRDs refuse a timeout that is not a duration of at least 1ms on every write of the
    # VirtualService (a CEL rule); Flagger passes the strings on.
    from config import SpecError

    with pytest.raises(SpecError, match=rf"{field}: Istio"):
        make_canary(provider="istio", service={"port": 9898, **service})
    fine = {"timeout": "1.5s", "retries": {"attempts": 3, "perTryTimeout": "500ms"}}
    make_canary(provider="istio", service={"port": 9898, **fine})
