"""The Gateway API router: an HTTPRoute whose backendRefs carry the weights."""

from __future__ import annotations

from typing import Any

import pytest
from traffic_testkit import NS, deployment, make_canary, raw_canary

from config import Canary, Strategy
from traffic import DeploymentWorkload, Router, Routes, RoutingError, Weights, router_for
from traffic.cluster import HTTP_ROUTE, HTTP_ROUTE_V1BETA1, InMemoryCluster, ObjectRef

ROUTE = ObjectRef(HTTP_ROUTE, NS, "podinfo")
GATEWAY = [{"name": "public", "namespace": "istio-ingress"}]


def gateway_canary(
    analysis: dict[str, Any] | None = None, provider: str = "gatewayapi:v1", **service: Any
) -> Canary:
    return make_canary(
        provider=provider,
        analysis=analysis,
        service={"port": 9898, "gatewayRefs": GATEWAY, **service},
    )


async def reconciled(canary: Canary) -> tuple[InMemoryCluster, Router]:
    cluster = InMemoryCluster()
    cluster.seed(deployment())
    router = router_for(canary.spec.provider or "", cluster)
    await router.initialize(canary)
    await DeploymentWorkload(cluster).initialize(canary)
    await router.reconcile(canary)
    return cluster, router


def rules(cluster: InMemoryCluster, ref: ObjectRef = ROUTE) -> Any:
    body = cluster.peek(ref)
    assert body is not None
    return body["spec"]["rules"]


def backend(name: str, weight: int) -> dict[str, Any]:
    return {"group": "", "kind": "Service", "name": name, "port": 9898, "weight": weight}


async def test_reconcile_creates_an_all_primary_http_route() -> None:
    canary = gateway_canary(hosts=["app.example.com"], timeout="5s")
    cluster, router = await reconciled(canary)
    body = cluster.peek(ROUTE)
    assert body is not None
    assert body["apiVersion"] == "gateway.networking.k8s.io/v1"
    spec = body["spec"]
    assert spec["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "public",
            "namespace": "istio-ingress",
        }
    ]
    assert spec["hostnames"] == ["app.example.com"]
    assert spec["rules"] == [
        {
            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "backendRefs": [backend("podinfo-primary", 100), backend("podinfo-canary", 0)],
            "timeouts": {"request": "5s"},
        }
    ]
    assert await router.get_routes(canary) == Routes(Weights(100, 0))


async def test_v1beta1_writes_the_v1beta1_route() -> None:
    canary = gateway_canary(provider="gatewayapi:v1beta1")
    cluster, router = await reconciled(canary)
    body = cluster.peek(ObjectRef(HTTP_ROUTE_V1BETA1, NS, "podinfo"))
    assert body is not None and body["apiVersion"] == "gateway.networking.k8s.io/v1beta1"
    await router.set_routes(canary, Weights(75, 25))
    assert await router.get_routes(canary) == Routes(Weights(75, 25))


async def test_set_routes_round_trip_and_reconcile_keeps_weights() -> None:
    canary = gateway_canary()
    cluster, router = await reconciled(canary)
    await router.set_routes(canary, Weights(60, 40))
    assert rules(cluster)[0]["backendRefs"] == [
        backend("podinfo-primary", 60),
        backend("podinfo-canary", 40),
    ]
    changed = gateway_canary(headers={"request": {"set": {"b": "2", "a": "1"}}})
    await router.reconcile(changed)
    rule = rules(cluster)[0]
    assert rule["filters"] == [
        {
            "type": "RequestHeaderModifier",
            "requestHeaderModifier": {
                "set": [{"name": "a", "value": "1"}, {"name": "b", "value": "2"}]
            },
        }
    ]
    assert await router.get_routes(changed) == Routes(Weights(60, 40))


async def test_ab_testing_writes_a_matched_rule_and_a_primary_fallback() -> None:
    analysis = {
        "interval": "1m",
        "threshold": 5,
        "iterations": 10,
        "match": [{"headers": {"x-canary": {"exact": "insider"}}}],
    }
    canary = gateway_canary(analysis, match=[{"uri": {"prefix": "/api"}}])
    cluster, router = await reconciled(canary)
    await router.set_routes(canary, Weights(0, 100))
    matched, fallback = rules(cluster)
    assert matched["matches"] == [
        {
            "path": {"type": "PathPrefix", "value": "/api"},
            "headers": [{"name": "x-canary", "type": "Exact", "value": "insider"}],
        }
    ]
    assert matched["backendRefs"] == [backend("podinfo-primary", 0), backend("podinfo-canary", 100)]
    assert fallback["matches"] == [{"path": {"type": "PathPrefix", "value": "/api"}}]
    assert fallback["backendRefs"] == [backend("podinfo-primary", 100)]
    assert await router.get_routes(canary) == Routes(Weights(0, 100))


@pytest.mark.parametrize(
    ("provider", "ref"),
    [
        ("gatewayapi:v1", ROUTE),
        ("gatewayapi:v1beta1", ObjectRef(HTTP_ROUTE_V1BETA1, NS, "podinfo")),
    ],
)
async def test_match_with_step_weight_steps_only_the_matching_requests(
    provider: str, ref: ObjectRef
) -> None:
    # Flagger's canary strategy with analysis.match (no iterations): SetRoutes (gateway_api.go,
    # gateway_api_v1beta1.go) gives the weighted rule the merged matches and appends a rule
    # sending the rest to the primary, so the steps split the matching requests only.
    analysis = {
        "interval": "1m",
        "threshold": 5,
        "stepWeight": 10,
        "maxWeight": 50,
        "match": [{"headers": {"x-canary": {"exact": "insider"}}}],
    }
    canary = gateway_canary(analysis, provider=provider, match=[{"uri": {"prefix": "/api"}}])
    assert canary.spec.effective_analysis.strategy is Strategy.CANARY
    cluster, router = await reconciled(canary)
    api = {"path": {"type": "PathPrefix", "value": "/api"}}
    insider = {"headers": [{"name": "x-canary", "type": "Exact", "value": "insider"}]}
    for step in (0, 10, 30):
        if step:
            await router.set_routes(canary, Weights(100 - step, step))
        matched, rest = rules(cluster, ref)
        assert matched["matches"] == [{**api, **insider}]
        assert matched["backendRefs"] == [
            backend("podinfo-primary", 100 - step),
            backend("podinfo-canary", step),
        ]
        assert (rest["matches"], rest["backendRefs"]) == ([api], [backend("podinfo-primary", 100)])
        assert await router.get_routes(canary) == Routes(Weights(100 - step, step))
    await router.reconcile(canary)  # keeps the step
    assert await router.get_routes(canary) == Routes(Weights(70, 30))


async def test_mirroring_only_applies_to_blue_green() -> None:
    progressive = {"interval": "1m", "threshold": 5, "stepWeight": 10, "mirror": True}
    canary = gateway_canary(progressive)
    cluster, router = await reconciled(canary)
    await router.set_routes(canary, Weights(100, 0, mirrored=True))
    assert "filters" not in rules(cluster)[0]
    assert await router.get_routes(canary) == Routes(Weights(100, 0))

    blue_green = {"interval": "1m", "threshold": 5, "iterations": 5, "mirror": True}
    canary = gateway_canary(blue_green)
    cluster, router = await reconciled(canary)
    await router.set_routes(canary, Weights(100, 0, mirrored=True))
    assert rules(cluster)[0]["filters"] == [
        {
            "type": "RequestMirror",
            "requestMirror": {
                "backendRef": {
                    "group": "",
                    "kind": "Service",
                    "name": "podinfo-canary",
                    "port": 9898,
                }
            },
        }
    ]
    assert await router.get_routes(canary) == Routes(Weights(100, 0, mirrored=True))
    await router.reconcile(canary)  # reconcile keeps the mirror too
    assert (await router.get_routes(canary)).weights.mirrored


async def test_a_parent_that_has_not_accepted_the_route_halts_reading() -> None:
    canary = gateway_canary()
    cluster, router = await reconciled(canary)
    route = cluster.peek(ROUTE)
    assert route is not None
    parent_ref = route["spec"]["parentRefs"][0]
    generation = route["metadata"]["generation"]

    async def accepted(status: str, observed: int) -> None:
        condition = {"type": "Accepted", "status": status, "observedGeneration": observed}
        await cluster.patch(
            ROUTE,
            {"status": {"parents": [{"parentRef": parent_ref, "conditions": [condition]}]}},
            status=True,
        )

    await accepted("False", generation)
    with pytest.raises(RoutingError, match=r"HTTPRoute podinfo\.test parent public is not ready"):
        await router.get_routes(canary)
    await accepted("True", generation - 1)
    with pytest.raises(RoutingError, match="observed generation: 0, current generation: 1"):
        await router.get_routes(canary)
    await accepted("True", generation)
    assert await router.get_routes(canary) == Routes(Weights(100, 0))


async def test_gateway_refs_are_required() -> None:
    canary = raw_canary(provider="gatewayapi:v1")
    cluster = InMemoryCluster()
    cluster.seed(deployment())
    with pytest.raises(RoutingError, match="GatewayRefs must be specified"):
        await router_for("gatewayapi:v1", cluster).reconcile(canary)


async def test_matches_the_gateway_api_cannot_express_are_errors() -> None:
    canary = gateway_canary(match=[{"sourceLabels": {"app": "x"}}])
    cluster = InMemoryCluster()
    cluster.seed(deployment())
    with pytest.raises(RoutingError, match="cannot match on sourceLabels"):
        await router_for("gatewayapi:v1", cluster).reconcile(canary)


# Session affinity: tests/traffic/test_session_affinity.py


async def test_a_header_only_match_is_written_as_the_api_server_stores_it() -> None:
    # The CRD defaults a match's path to PathPrefix /: without it the stored route would differ
    # from the wanted one on every tick, and be patched for nothing.
    canary = gateway_canary(match=[{"headers": {"x-user": {"exact": "a"}}}])
    cluster, router = await reconciled(canary)
    assert rules(cluster)[0]["matches"] == [
        {
            "path": {"type": "PathPrefix", "value": "/"},
            "headers": [{"name": "x-user", "type": "Exact", "value": "a"}],
        }
    ]
    stored = cluster.peek(ROUTE)
    assert stored is not None
    await router.reconcile(canary)
    await router.set_routes(canary, Weights(100, 0))
    again = cluster.peek(ROUTE)
    assert again is not None
    assert again["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]


AB_TWO = {
    "interval": "1m",
    "threshold": 5,
    "iterations": 10,
    "match": [
        {"headers": {"x-canary": {"exact": "insider"}}},
        {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}},
    ],
}


@pytest.mark.parametrize("provider", ["gatewayapi:v1", "gatewayapi:v1beta1"])
def test_a_prefix_rewrite_the_http_route_would_refuse_is_refused_when_loaded(
    provider: str,
) -> None:
    # The HTTPRoute CRD (a CEL rule) takes a ReplacePrefixMatch rewrite only on a rule with
    # exactly one match, a path prefix; the rewrite goes on every rule.
    from config import SpecError

    rewrite = {"uri": "/v2", "type": "ReplacePrefixMatch"}
    service = {"port": 9898, "gatewayRefs": GATEWAY, "rewrite": rewrite}
    with pytest.raises(SpecError, match=r"spec\.service\.rewrite: a ReplacePrefixMatch rewrite"):
        make_canary(provider=provider, service=service, analysis=AB_TWO)
    two_paths = [{"uri": {"prefix": "/a"}}, {"uri": {"prefix": "/b"}}]
    with pytest.raises(SpecError, match=r"1 rule has 2|first rule has 2"):
        make_canary(provider=provider, service={**service, "match": two_paths})
    exact = [{"uri": {"exact": "/a"}}]
    with pytest.raises(SpecError, match=r"spec\.service\.match\[0\]\.uri: .*path prefix"):
        make_canary(provider=provider, service={**service, "match": exact})
    # fine: one prefix match, no match at all, or a full-path rewrite with several
    make_canary(provider=provider, service={**service, "match": [{"uri": {"prefix": "/a"}}]})
    make_canary(provider=provider, service=service)
    full = {**service, "rewrite": {"uri": "/v2", "type": "ReplaceFullPath"}}
    make_canary(provider=provider, service=full, analysis=AB_TWO)


async def test_a_request_mirror_is_written_as_the_api_server_stores_it() -> None:
    # The HTTPRoute CRD defaults a backendRef's group and kind; written without them, every
    # reconcile saw a difference and patched the route again.
    canary = gateway_canary(mirror=[{"backendRef": {"name": "shadow", "port": 9898}}])
    cluster, router = await reconciled(canary)
    mirrors = [f for f in rules(cluster)[0]["filters"] if f["type"] == "RequestMirror"]
    assert mirrors == [
        {
            "type": "RequestMirror",
            "requestMirror": {
                "backendRef": {"group": "", "kind": "Service", "name": "shadow", "port": 9898}
            },
        }
    ]
    patches = cluster.calls["patch"]
    await router.reconcile(canary)
    assert cluster.calls["patch"] == patches


@pytest.mark.parametrize(
    ("service", "analysis", "field", "says"),
    [
        ({"timeout": "1.5s"}, None, "spec.service.timeout", "durations such as 30s"),
        ({"timeout": "30"}, None, "spec.service.timeout", "durations such as 30s"),
        ({"timeout": "10s", "backendTimeout": "30s"}, None, "spec.service.backendTimeout", "10s"),
        ({"hosts": ["*"]}, None, r"spec.service.hosts\[0\]", "no bare"),
        ({"hosts": ["App.example.com"]}, None, r"spec.service.hosts\[0\]", "hostname"),
        (
            {"match": [{"method": {"exact": "get"}}]},
            None,
            r"service.match\[0\].method.exact",
            "'get'",
        ),
        (
            {},
            {**AB_TWO, "match": [{"headers": {"x": {"exact": "1"}}, "method": {"exact": "post"}}]},
            r"spec.analysis.match\[0\].method.exact",
            "upper-case",
        ),
    ],
)
def test_route_values_the_http_route_would_refuse_are_refused_when_loaded(
    service: dict[str, Any], analysis: dict[str, Any] | None, field: str, says: str
) -> None:
    from config import SpecError

    with pytest.raises(SpecError, match=rf"{field}: .*{says}"):
        gateway_canary(analysis, **service)


def test_route_values_the_http_route_takes_are_kept() -> None:
    # a request timeout of 0s is none: any backend timeout goes with it (the CRD's rule too)
    gateway_canary(timeout="0s", backendTimeout="10s")
    canary = gateway_canary(
        timeout="1m30s",
        backendTimeout="30s",
        hosts=["app.example.com", "*.example.com"],
        match=[{"method": {"exact": "GET"}}],
    )
    assert canary.spec.service is not None and canary.spec.service.backend_timeout == "30s"
