"""App Mesh, both controller APIs: virtual nodes, and the weighted targets of the virtual router
(v1beta2) or virtual service (v1beta1) (Flagger's appmesh.go and appmesh_v1beta2.go)."""

from __future__ import annotations

from typing import Any

import pytest
from router_world import World
from traffic_testkit import NS, deployment, make_canary

from config import SpecError, Strategy
from traffic import DeploymentWorkload, Routes, Weights, router_for
from traffic.cluster import ObjectRef
from traffic.routers.appmesh import (
    VIRTUAL_NODE_V1BETA1,
    VIRTUAL_NODE_V1BETA2,
    VIRTUAL_ROUTER_V1BETA2,
    VIRTUAL_SERVICE_V1BETA1,
    VIRTUAL_SERVICE_V1BETA2,
)

AB = {
    "interval": "1m",
    "threshold": 5,
    "iterations": 10,
    "match": [{"headers": {"x-canary": {"exact": "insider"}, "user-agent": {"regex": ".*Fire.*"}}}],
}


async def setup(world: World, provider: str, **spec: Any) -> Any:
    canary = make_canary(provider=provider, **spec)
    world.seed(deployment())
    router = router_for(provider, world.cluster)
    await router.initialize(canary)
    await DeploymentWorkload(world.cluster).initialize(canary)
    await router.reconcile(canary)
    return canary, router


def targets(route: dict[str, Any], key: str) -> dict[str, int]:
    found = {}
    for t in route[key]["action"]["weightedTargets"]:
        name = t["virtualNodeRef"]["name"] if "virtualNodeRef" in t else t["virtualNodeName"]
        found[name] = t["weight"]
    return found


async def test_v1beta2_nodes_router_and_service(world: World) -> None:
    service = {
        "port": 9898,
        "timeout": "15s",
        "retries": {"attempts": 3, "perTryTimeout": "5s", "retryOn": "gateway-error,client-error"},
        "backends": ["backend1", "arn:aws:appmesh:eu-west-1:123:mesh/m/virtualService/b2"],
        "hosts": ["app.example.com"],
    }
    canary, router = await setup(world, "appmesh:v1beta2", service=service)
    node = await world.must_read(ObjectRef(VIRTUAL_NODE_V1BETA2, NS, "podinfo-primary"))
    assert node["spec"] == {
        "listeners": [
            {
                "portMapping": {"port": 9898, "protocol": "http"},
                "timeout": {"http": {"perRequest": {"unit": "ms", "value": 15000}}},
            }
        ],
        "serviceDiscovery": {"dns": {"hostname": "podinfo-primary.test.svc.cluster.local."}},
        "podSelector": {"matchLabels": {"app": "podinfo-primary"}},
        "backends": [
            {"virtualService": {"virtualServiceRef": {"name": "backend1"}}},
            {
                "virtualService": {
                    "virtualServiceARN": "arn:aws:appmesh:eu-west-1:123:mesh/m/virtualService/b2"
                }
            },
        ],
    }
    canary_node = await world.must_read(ObjectRef(VIRTUAL_NODE_V1BETA2, NS, "podinfo-canary"))
    assert canary_node["spec"]["podSelector"] == {"matchLabels": {"app": "podinfo"}}
    vr = await world.must_read(ObjectRef(VIRTUAL_ROUTER_V1BETA2, NS, "podinfo"))
    (route,) = vr["spec"]["routes"]
    assert route["name"] == "podinfo"
    assert route["httpRoute"]["match"] == {"prefix": "/"}
    assert route["httpRoute"]["retryPolicy"] == {
        "perRetryTimeout": {"unit": "ms", "value": 5000},
        "maxRetries": 3,
        "httpRetryEvents": ["gateway-error", "client-error"],
    }
    assert targets(route, "httpRoute") == {"podinfo-canary": 0, "podinfo-primary": 100}
    vs = await world.must_read(ObjectRef(VIRTUAL_SERVICE_V1BETA2, NS, "podinfo"))
    assert vs["spec"] == {"provider": {"virtualRouter": {"virtualRouterRef": {"name": "podinfo"}}}}
    assert vs["metadata"]["annotations"] == {
        "gateway.appmesh.k8s.aws/expose": "true",
        "gateway.appmesh.k8s.aws/domain": "app.example.com,",
        "gateway.appmesh.k8s.aws/timeout": "15s",
        "gateway.appmesh.k8s.aws/retries": "3",
    }
    canary_vr = await world.must_read(ObjectRef(VIRTUAL_ROUTER_V1BETA2, NS, "podinfo-canary"))
    assert targets(canary_vr["spec"]["routes"][0], "httpRoute") == {
        "podinfo-canary": 100,
        "podinfo-primary": 0,
    }
    assert await router.get_routes(canary) == Routes(Weights(100, 0))


async def test_v1beta2_weights_round_trip_and_keep_the_controllers_fields(world: World) -> None:
    canary, router = await setup(world, "appmesh:v1beta2")
    ref = ObjectRef(VIRTUAL_ROUTER_V1BETA2, NS, "podinfo")
    await world.cluster.patch(ref, {"spec": {"awsName": "podinfo_test", "meshRef": {"name": "m"}}})
    await router.set_routes(canary, Weights(60, 40))
    assert await router.get_routes(canary) == Routes(Weights(60, 40))
    await router.reconcile(canary)
    vr = await world.must_read(ref)
    assert vr["spec"]["awsName"] == "podinfo_test"  # filled by the App Mesh controller
    assert await router.get_routes(canary) == Routes(Weights(60, 40))


async def test_ab_testing_routes_the_matching_headers(world: World) -> None:
    canary, router = await setup(world, "appmesh:v1beta2", analysis=AB)
    await router.set_routes(canary, Weights(0, 100))
    vr = await world.must_read(ObjectRef(VIRTUAL_ROUTER_V1BETA2, NS, "podinfo"))
    first, rest = vr["spec"]["routes"]
    assert (first["name"], first["priority"], rest["name"], rest["priority"]) == (
        "podinfo-a",
        10,
        "podinfo-b",
        20,
    )
    assert first["httpRoute"]["match"]["headers"] == [
        {"name": "user-agent", "match": {"regex": ".*Fire.*"}},
        {"name": "x-canary", "match": {"exact": "insider"}},
    ]
    assert targets(first, "httpRoute") == {"podinfo-canary": 100, "podinfo-primary": 0}
    assert targets(rest, "httpRoute") == {"podinfo-primary": 100}
    assert await router.get_routes(canary) == Routes(Weights(0, 100))


@pytest.mark.parametrize(
    ("provider", "ref", "key"),
    [
        ("appmesh:v1beta2", ObjectRef(VIRTUAL_ROUTER_V1BETA2, NS, "podinfo"), "httpRoute"),
        ("appmesh", ObjectRef(VIRTUAL_SERVICE_V1BETA1, NS, "podinfo.test"), "http"),
    ],
)
async def test_match_with_step_weight_steps_only_the_matching_requests(
    world: World, provider: str, ref: ObjectRef, key: str
) -> None:
    # Flagger's canary strategy with analysis.match (no iterations): SetRoutes (appmesh.go,
    # appmesh_v1beta2.go) sets the weighted targets of route 0, which Reconcile made the route
    # of the analysis headers; route <svc>-b keeps the rest on the primary.
    analysis = {**AB, "stepWeight": 10, "maxWeight": 50}
    del analysis["iterations"]
    service = {"port": 9898, "meshName": "global"}
    canary, router = await setup(world, provider, analysis=analysis, service=service)
    assert canary.spec.effective_analysis.strategy is Strategy.CANARY
    for step in (0, 10, 30):
        if step:
            await router.set_routes(canary, Weights(100 - step, step))
        first, rest = (await world.must_read(ref))["spec"]["routes"]
        assert (first["name"], rest["name"]) == ("podinfo-a", "podinfo-b")
        assert targets(first, key) == {"podinfo-canary": step, "podinfo-primary": 100 - step}
        assert targets(rest, key) == {"podinfo-primary": 100}
        assert await router.get_routes(canary) == Routes(Weights(100 - step, step))
    await router.reconcile(canary)
    assert await router.get_routes(canary) == Routes(Weights(70, 30))


async def test_v1beta1_virtual_service_carries_the_mesh_and_the_weights(world: World) -> None:
    canary, router = await setup(world, "appmesh", service={"port": 9898, "meshName": "global"})
    apex_node = await world.must_read(ObjectRef(VIRTUAL_NODE_V1BETA1, NS, "podinfo"))
    assert apex_node["spec"] == {
        "meshName": "global",
        "listeners": [{"portMapping": {"port": 9898, "protocol": "http"}}],
        "serviceDiscovery": {"dns": {"hostName": "podinfo-primary.test"}},
    }
    ref = ObjectRef(VIRTUAL_SERVICE_V1BETA1, NS, "podinfo.test")
    vs = await world.must_read(ref)
    assert vs["spec"]["meshName"] == "global"
    assert vs["spec"]["virtualRouter"]["name"] == "podinfo"
    assert targets(vs["spec"]["routes"][0], "http") == {"podinfo-canary": 0, "podinfo-primary": 100}
    await router.set_routes(canary, Weights(90, 10))
    assert targets((await world.must_read(ref))["spec"]["routes"][0], "http") == {
        "podinfo-canary": 10,
        "podinfo-primary": 90,
    }
    await router.reconcile(canary)
    assert await router.get_routes(canary) == Routes(Weights(90, 10))
    canary_vs = await world.must_read(ObjectRef(VIRTUAL_SERVICE_V1BETA1, NS, "podinfo-canary.test"))
    assert targets(canary_vs["spec"]["routes"][0], "http")["podinfo-canary"] == 100


def test_v1beta1_needs_the_mesh_name() -> None:
    with pytest.raises(SpecError, match=r"spec\.service\.meshName: required with provider appmesh"):
        make_canary(provider="appmesh")


GATEWAY_SERVICE = {
    "port": 9898,
    "meshName": "global",
    "hosts": ["app.example.com"],
    "retries": {"attempts": 3},
}


@pytest.mark.parametrize(
    ("provider", "ref", "refreshed"),
    [
        # Flagger's v1beta1 router rewrites the annotations with the spec it updates ...
        ("appmesh", ObjectRef(VIRTUAL_SERVICE_V1BETA1, NS, "podinfo.test"), True),
        # ... its v1beta2 router writes them when it creates the VirtualService, never again.
        ("appmesh:v1beta2", ObjectRef(VIRTUAL_SERVICE_V1BETA2, NS, "podinfo"), False),
    ],
)
async def test_gateway_annotations_follow_a_changed_spec_in_v1beta1_only(
    world: World, provider: str, ref: ObjectRef, refreshed: bool
) -> None:
    canary, router = await setup(world, provider, service=GATEWAY_SERVICE)
    await world.cluster.patch(ref, {"metadata": {"annotations": {"team": "web"}}})
    # Only the hosts change: no spec of Flagger's changes, so nothing is rewritten.
    hosts_only = make_canary(provider=provider, service={**GATEWAY_SERVICE, "hosts": ["b.example"]})
    await router.reconcile(hosts_only)
    kept = (await world.must_read(ref))["metadata"]["annotations"]
    assert kept["gateway.appmesh.k8s.aws/domain"] == "app.example.com,"
    assert kept["team"] == "web"
    # The retries change the route's retry policy as well as the annotation.
    retried = make_canary(
        provider=provider,
        service={**GATEWAY_SERVICE, "hosts": ["b.example"], "retries": {"attempts": 5}},
    )
    await router.reconcile(retried)
    annotations = (await world.must_read(ref))["metadata"]["annotations"]
    if refreshed:
        assert annotations == {
            "gateway.appmesh.k8s.aws/expose": "true",
            "gateway.appmesh.k8s.aws/domain": "b.example,",
            "gateway.appmesh.k8s.aws/retries": "5",
        }
    else:
        assert annotations["gateway.appmesh.k8s.aws/domain"] == "app.example.com,"
        assert annotations["gateway.appmesh.k8s.aws/retries"] == "3"
    assert await router.get_routes(canary) == Routes(Weights(100, 0))
    # A weight step changes only the route's targets, as Flagger's SetRoutes: the annotations
    # stay as they are, another controller's included, whatever the Canary says now.
    await world.cluster.patch(ref, {"metadata": {"annotations": {"team": "web"}}})
    before = (await world.must_read(ref))["metadata"]["annotations"]
    moved = make_canary(provider=provider, service={**GATEWAY_SERVICE, "hosts": ["c.example"]})
    await router.set_routes(moved, Weights(90, 10))
    assert (await world.must_read(ref))["metadata"]["annotations"] == before
    assert await router.get_routes(moved) == Routes(Weights(90, 10))


@pytest.mark.parametrize("provider", ["appmesh", "appmesh:v1beta2"])
def test_retry_events_app_mesh_refuses_are_refused_when_loaded(provider: str) -> None:
    # App Mesh's CRDs take server-error, gateway-error, client-error and stream-error only; an
    # Istio-style value (5xx, reset) or a space after a comma made every write of the router 422.
    service = {"port": 9898, "meshName": "global"}
    for retry_on in ("gateway-error, 5xx", "reset", "connect-failure,gateway-error"):
        with pytest.raises(SpecError, match=r"spec\.service\.retries\.retryOn: App Mesh retries"):
            make_canary(
                provider=provider,
                service={**service, "retries": {"attempts": 2, "retryOn": retry_on}},
            )
    fine = {**service, "retries": {"attempts": 2, "retryOn": "gateway-error,server-error"}}
    assert make_canary(provider=provider, service=fine).spec.service is not None
