"""``service.corsPolicy`` on the Gateway API: a ``CORS`` rule filter, as Flagger's
TestGatewayAPIRouter_makeFilters_CORS (pkg/router/gateway_api_test.go) asserts."""

from __future__ import annotations

from typing import Any

from traffic_testkit import NS, deployment, make_canary

from config import Canary
from traffic import DeploymentWorkload, Weights, router_for
from traffic.cluster import HTTP_ROUTE, HTTP_ROUTE_V1BETA1, InMemoryCluster, ObjectRef

ROUTE = ObjectRef(HTTP_ROUTE, NS, "podinfo")
ROUTE_V1BETA1 = ObjectRef(HTTP_ROUTE_V1BETA1, NS, "podinfo")
GATEWAY = [{"name": "public", "namespace": "istio-ingress"}]

#: Flagger's test input, field for field.
FLAGGER_CORS = {
    "allowOrigins": [{"regex": ".*example.com"}],  # ignored
    "allowOrigin": ["https://example.com", "https://app.example.com"],
    "allowMethods": ["GET", "POST", "PUT"],
    "allowHeaders": ["Content-Type", "Authorization"],
    "exposeHeaders": ["X-Custom-Header"],
    "allowCredentials": True,
    "maxAge": "24h",
}
#: What Flagger's test requires of the filter.
FLAGGER_FILTER = {
    "type": "CORS",
    "cors": {
        "allowOrigins": ["https://example.com", "https://app.example.com"],
        "allowMethods": ["GET", "POST", "PUT"],
        "allowHeaders": ["Content-Type", "Authorization"],
        "exposeHeaders": ["X-Custom-Header"],
        "allowCredentials": True,
        "maxAge": 86400,
    },
}


def cors_canary(cors: dict[str, Any], provider: str = "gatewayapi:v1", **extra: Any) -> Canary:
    analysis = extra.pop("analysis", None)
    service = {"port": 9898, "gatewayRefs": GATEWAY, "corsPolicy": cors, **extra}
    return make_canary(provider=provider, service=service, analysis=analysis)


async def reconciled(canary: Canary) -> InMemoryCluster:
    cluster = InMemoryCluster()
    cluster.seed(deployment())
    router = router_for(canary.spec.provider or "", cluster)
    await router.initialize(canary)
    await DeploymentWorkload(cluster).initialize(canary)
    await router.reconcile(canary)
    return cluster


def rules(cluster: InMemoryCluster, ref: ObjectRef = ROUTE) -> Any:
    body = cluster.peek(ref)
    assert body is not None
    return body["spec"]["rules"]


def cors_filters(rule: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in rule.get("filters") or () if f.get("type") == "CORS"]


async def test_cors_policy_becomes_flaggers_cors_filter() -> None:
    cluster = await reconciled(cors_canary(FLAGGER_CORS))
    (rule,) = rules(cluster)
    assert cors_filters(rule) == [FLAGGER_FILTER]


async def test_the_cors_filter_survives_set_routes_and_reconcile() -> None:
    canary = cors_canary(FLAGGER_CORS)
    cluster = await reconciled(canary)
    router = router_for("gatewayapi:v1", cluster)
    await router.set_routes(canary, Weights(60, 40))
    (rule,) = rules(cluster)
    assert cors_filters(rule) == [FLAGGER_FILTER]
    assert [b["weight"] for b in rule["backendRefs"]] == [60, 40]
    await router.reconcile(canary)
    assert rules(cluster) == [rule]


async def test_cors_goes_after_the_other_filters_and_on_every_rule() -> None:
    # Flagger's makeFilters feeds every rule, the A/B primary fallback included.
    canary = cors_canary(
        FLAGGER_CORS,
        headers={"request": {"set": {"x-a": "1"}}},
        analysis={
            "interval": "1m",
            "threshold": 5,
            "iterations": 5,
            "match": [{"headers": {"x-canary": {"exact": "insider"}}}],
        },
    )
    cluster = await reconciled(canary)
    matched, fallback = rules(cluster)
    for rule in (matched, fallback):
        assert [f["type"] for f in rule["filters"]] == ["RequestHeaderModifier", "CORS"]
        assert rule["filters"][-1] == FLAGGER_FILTER


async def test_a_minimal_cors_policy() -> None:
    # Only what is given is written; maxAge absent is the CRD's default (5), which the API server
    # would store for Flagger's omitted field.
    cluster = await reconciled(cors_canary({"allowOrigin": ["*"], "allowCredentials": False}))
    (rule,) = rules(cluster)
    assert cors_filters(rule) == [{"type": "CORS", "cors": {"allowOrigins": ["*"], "maxAge": 5}}]


async def test_max_age_is_whole_seconds_of_the_go_duration() -> None:
    cluster = await reconciled(cors_canary({"allowOrigin": ["*"], "maxAge": "1m30.9s"}))
    (rule,) = rules(cluster)
    assert cors_filters(rule)[0]["cors"]["maxAge"] == 90


async def test_without_cors_policy_there_is_no_cors_filter() -> None:
    canary = make_canary(provider="gatewayapi:v1", service={"port": 9898, "gatewayRefs": GATEWAY})
    cluster = await reconciled(canary)
    (rule,) = rules(cluster)
    assert cors_filters(rule) == []


async def test_v1beta1_writes_no_cors_filter_as_in_flagger() -> None:
    cluster = await reconciled(cors_canary(FLAGGER_CORS, provider="gatewayapi:v1beta1"))
    (rule,) = rules(cluster, ROUTE_V1BETA1)
    assert cors_filters(rule) == []
