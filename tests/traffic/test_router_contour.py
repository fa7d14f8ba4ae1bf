"""Contour: an HTTPProxy whose route services carry the weights (Flagger's contour.go)."""

from __future__ import annotations

from typing import Any

import pytest
from router_world import World
from traffic_testkit import NS, deployment, make_canary

from config import SpecError, Strategy
from traffic import DeploymentWorkload, RouterOptions, Routes, RoutingError, Weights, router_for
from traffic.cluster import ObjectRef
from traffic.routers.contour import HTTP_PROXY, INGRESS_CLASS_ANNOTATION

PROXY = ObjectRef(HTTP_PROXY, NS, "podinfo")
AB = {
    "interval": "1m",
    "threshold": 5,
    "iterations": 10,
    "match": [{"headers": {"x-canary": {"exact": "insider"}, "user-agent": {"prefix": "Fire"}}}],
}


async def setup(world: World, **spec: Any) -> Any:
    canary = make_canary(provider="contour", **spec)
    world.seed(deployment())
    router = router_for("contour", world.cluster, RouterOptions(ingress_class="contour-external"))
    await router.initialize(canary)
    await DeploymentWorkload(world.cluster).initialize(canary)
    await router.reconcile(canary)
    return canary, router


def weights_of(route: dict[str, Any]) -> dict[str, int]:
    return {s["name"]: s["weight"] for s in route["services"]}


async def test_the_proxy_routes_everything_to_the_primary_first(world: World) -> None:
    service = {"port": 9898, "timeout": "15s", "retries": {"attempts": 3, "perTryTimeout": "5s"}}
    canary, router = await setup(world, service=service)
    proxy = await world.must_read(PROXY)
    assert proxy["metadata"]["annotations"] == {INGRESS_CLASS_ANNOTATION: "contour-external"}
    (route,) = proxy["spec"]["routes"]
    assert route["conditions"] == [{"prefix": "/"}]
    assert route["timeoutPolicy"] == {"response": "15s", "idle": "5m"}
    assert route["retryPolicy"] == {"count": 3, "perTryTimeout": "5s"}
    assert route["services"][1] == {
        "name": "podinfo-canary",
        "port": 9898,
        "weight": 0,
        "requestHeadersPolicy": {
            "set": [
                {"name": "l5d-dst-override", "value": "podinfo-canary.test.svc.cluster.local:9898"}
            ]
        },
    }
    assert weights_of(route) == {"podinfo-primary": 100, "podinfo-canary": 0}
    assert await router.get_routes(canary) == Routes(Weights(100, 0))


async def test_weights_round_trip_and_survive_reconcile(world: World) -> None:
    canary, router = await setup(world)
    await router.set_routes(canary, Weights(60, 40))
    (route,) = (await world.must_read(PROXY))["spec"]["routes"]
    assert weights_of(route) == {"podinfo-primary": 60, "podinfo-canary": 40}
    await router.reconcile(canary)
    assert await router.get_routes(canary) == Routes(Weights(60, 40))


async def test_ab_testing_matches_headers_and_leaves_the_rest_on_the_primary(world: World) -> None:
    canary, router = await setup(world, analysis=AB)
    await router.set_routes(canary, Weights(0, 100))
    first, rest = (await world.must_read(PROXY))["spec"]["routes"]
    assert first["conditions"] == [
        {"prefix": "/", "header": {"name": "user-agent", "contains": "Fire"}},
        {"prefix": "/", "header": {"name": "x-canary", "exact": "insider"}},
    ]
    assert weights_of(first) == {"podinfo-primary": 0, "podinfo-canary": 100}
    assert rest["conditions"] == [{"prefix": "/"}]
    assert weights_of(rest) == {"podinfo-primary": 100, "podinfo-canary": 0}
    assert await router.get_routes(canary) == Routes(Weights(0, 100))


async def test_match_with_step_weight_steps_only_the_matching_requests(world: World) -> None:
    # Flagger's canary strategy with analysis.match (no iterations): SetRoutes (contour.go) puts
    # the weights on the route of the header conditions; the other route stays on the primary.
    analysis = {**AB, "stepWeight": 10, "maxWeight": 50}
    del analysis["iterations"]
    canary, router = await setup(world, analysis=analysis)
    assert canary.spec.effective_analysis.strategy is Strategy.CANARY
    for step in (0, 10, 40):
        if step:
            await router.set_routes(canary, Weights(100 - step, step))
        first, rest = (await world.must_read(PROXY))["spec"]["routes"]
        assert first["conditions"] == [
            {"prefix": "/", "header": {"name": "user-agent", "contains": "Fire"}},
            {"prefix": "/", "header": {"name": "x-canary", "exact": "insider"}},
        ]
        assert weights_of(first) == {"podinfo-primary": 100 - step, "podinfo-canary": step}
        assert rest["conditions"] == [{"prefix": "/"}]
        assert weights_of(rest) == {"podinfo-primary": 100, "podinfo-canary": 0}
        assert await router.get_routes(canary) == Routes(Weights(100 - step, step))
    await router.reconcile(canary)
    assert await router.get_routes(canary) == Routes(Weights(60, 40))


def test_a_regex_header_match_is_refused_instead_of_dropped() -> None:
    analysis = {**AB, "match": [{"headers": {"x-canary": {"regex": "^ins.*"}}}]}
    with pytest.raises(SpecError, match=r"match\[0\]\.headers\.x-canary: Contour matches headers"):
        make_canary(provider="contour", analysis=analysis)


async def test_a_proxy_without_services_is_an_error(world: World) -> None:
    canary, router = await setup(world)
    await world.cluster.patch(PROXY, {"spec": {"routes": [{"conditions": [{"prefix": "/"}]}]}})
    with pytest.raises(RoutingError, match=r"HTTPProxy podinfo\.test services not found"):
        await router.get_routes(canary)


@pytest.mark.parametrize(
    ("service", "field"),
    [
        ({"timeout": "30"}, r"spec\.service\.timeout"),
        ({"timeout": "2 s"}, r"spec\.service\.timeout"),
        (
            {"retries": {"attempts": 3, "perTryTimeout": "1d"}},
            r"spec\.service\.retries\.perTryTimeout",
        ),
    ],
)
def test_durations_contour_would_refuse_are_refused_when_loaded(
    service: dict[str, Any], field: str
) -> None:
    from config import SpecError

    with pytest.raises(SpecError, match=rf"{field}: Contour takes durations"):
        make_canary(provider="contour", service={"port": 9898, **service})
    fine = {"timeout": "1.5s", "retries": {"attempts": 3, "perTryTimeout": "500ms"}}
    make_canary(provider="contour", service={"port": 9898, **fine})
    make_canary(provider="contour", service={"port": 9898, "timeout": "infinity"})
