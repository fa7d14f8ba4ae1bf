"""Session affinity: the ``Set-Cookie`` that deletes the canary cookie once its weight is back to 0
is exactly Flagger's ``fmt.Sprintf("%s; %s=%d", previousCookie, "Max-Age", -1)`` on Istio and
both Gateway API versions (TestGatewayAPIRouter_Routes "session affinity",
TestGatewayAPIRouter_getSessionAffinityRouteRules, TestIstioRouter_SetRoutes "session affinity"):
no Domain/Path/HttpOnly/... attributes, while the cookie handed out during the analysis keeps them.
"""

from __future__ import annotations

from typing import Any

import pytest
from router_world import World
from traffic_testkit import NS, canary_body, deployment, with_route_cookies

from config import parse_canary
from traffic import DeploymentWorkload, Weights, router_for
from traffic._session_affinity import (
    CANARY_COOKIE_FIELD,
    PREVIOUS_COOKIE_FIELD,
    canary_cookie,
    status_cookies,
)
from traffic.cluster import HTTP_ROUTE, HTTP_ROUTE_V1BETA1, VIRTUAL_SERVICE, ObjectRef

#: Flagger's "session affinity" subtest: every cookie attribute set.
FLAGGER_AFFINITY = {
    "cookieName": "flagger-cookie",
    "domain": "flagger.app",
    "httpOnly": True,
    "maxAge": 300,
    "partitioned": True,
    "path": "/app",
    "sameSite": "Strict",
    "secure": True,
}
ATTRIBUTES = (
    "Domain=flagger.app",
    "HttpOnly",
    "Partitioned",
    "Path=/app",
    "SameSite=Strict",
    "Secure",
)
PROVIDERS = ["istio", "gatewayapi:v1", "gatewayapi:v1beta1"]


def sticky_canary(
    provider: str, service_fields: dict[str, Any] | None = None, **affinity: Any
) -> Any:
    service: dict[str, Any] = {"port": 9898, **(service_fields or {})}
    if provider.startswith("gatewayapi"):
        service["gatewayRefs"] = [{"name": "podinfo"}]
    analysis = {
        "interval": "15s",
        "threshold": 10,
        "stepWeight": 10,
        "maxWeight": 50,
        "sessionAffinity": {**FLAGGER_AFFINITY, **affinity},
    }
    body = canary_body(provider=provider, service=service, analysis=analysis)
    body["status"] = {"lastAppliedSpec": "abc"}
    return parse_canary(body)


def route_ref(provider: str) -> ObjectRef:
    if provider == "istio":
        return ObjectRef(VIRTUAL_SERVICE, NS, "podinfo")
    kind = HTTP_ROUTE_V1BETA1 if provider.endswith("v1beta1") else HTTP_ROUTE
    return ObjectRef(kind, NS, "podinfo")


def canary_set_cookie(provider: str, spec: dict[str, Any]) -> str:
    """The Set-Cookie the canary's responses carry on the weighted route."""
    if provider == "istio":
        weighted = spec["http"][-1]
        return str(weighted["route"][1]["headers"]["response"]["add"]["Set-Cookie"])
    weighted = spec["rules"][-1]
    (cookie_filter,) = weighted["backendRefs"][1]["filters"]
    return str(cookie_filter["responseHeaderModifier"]["add"][0]["value"])


def expiry_set_cookie(provider: str, spec: dict[str, Any]) -> str:
    """The Set-Cookie of the sticky route once the canary is back to weight 0."""
    if provider == "istio":
        sticky = spec["http"][0]
        return str(sticky["headers"]["response"]["add"]["Set-Cookie"])
    sticky = spec["rules"][0]
    (expiry,) = [f for f in sticky["filters"] if f["type"] == "ResponseHeaderModifier"]
    adds = expiry["responseHeaderModifier"]["add"]
    (value,) = [h["value"] for h in adds if h["name"] == "Set-Cookie"]
    return str(value)


async def run_to_promotion(
    world: World, provider: str, service_fields: dict[str, Any] | None = None, **affinity: Any
) -> tuple[Any, str, str]:
    canary = sticky_canary(provider, service_fields, **affinity)
    world.seed(deployment())
    router = router_for(provider, world.cluster)
    await router.initialize(canary)
    await DeploymentWorkload(world.cluster).initialize(canary)
    await router.reconcile(canary)
    await router.set_routes(canary, Weights(90, 10))
    during = canary_set_cookie(provider, (await world.must_read(route_ref(provider)))["spec"])
    canary = with_route_cookies(canary, 10)
    await router.set_routes(canary, Weights(100, 0))
    after = expiry_set_cookie(provider, (await world.must_read(route_ref(provider)))["spec"])
    return canary, during, after


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_the_expiry_is_flaggers_previous_cookie_with_max_age_minus_one(
    world: World, provider: str
) -> None:
    canary, during, after = await run_to_promotion(world, provider)
    # the status the engine writes at weight 0, read back as Flagger's test does
    status = status_cookies(canary, 0, {CANARY_COOKIE_FIELD: canary_cookie(canary)})
    previous = status[PREVIOUS_COOKIE_FIELD]
    assert previous == canary_cookie(canary)
    assert after == f"{previous}; Max-Age=-1"
    # the cookie handed out while the canary had traffic keeps Flagger's cookie attributes
    assert during.startswith(f"{previous}; ")
    assert "Max-Age=300" in during
    for attribute in ATTRIBUTES:
        assert attribute in during.split("; ")


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_the_expiry_is_the_same_with_a_primary_cookie(world: World, provider: str) -> None:
    # Flagger's "with primary cookie" subtest: the canary cookie's expiry is unchanged
    canary, _, after = await run_to_promotion(world, provider, primaryCookieName="primary-cookie")
    assert after == f"{canary_cookie(canary)}; Max-Age=-1"


@pytest.mark.parametrize("provider", ["gatewayapi:v1", "gatewayapi:v1beta1"])
async def test_the_expiry_joins_the_response_header_filter_of_the_rule(
    world: World, provider: str
) -> None:
    # Gateway API refuses a rule with two ResponseHeaderModifier filters ("cannot be repeated"),
    # so with service.headers.response the expiry is added to that filter, beside its headers.
    headers = {"response": {"add": {"x-served-by": "podinfo"}, "remove": ["x-debug"]}}
    canary, _, _ = await run_to_promotion(world, provider, {"headers": headers})
    spec = (await world.must_read(route_ref(provider)))["spec"]
    for rule in spec["rules"]:
        kinds = [f["type"] for f in rule.get("filters", [])]
        assert kinds.count("ResponseHeaderModifier") == 1, kinds
    (expiry,) = [f for f in spec["rules"][0]["filters"] if f["type"] == "ResponseHeaderModifier"]
    assert expiry["responseHeaderModifier"] == {
        "add": [
            {"name": "x-served-by", "value": "podinfo"},
            {"name": "Set-Cookie", "value": f"{canary_cookie(canary)}; Max-Age=-1"},
        ],
        "remove": ["x-debug"],
    }
