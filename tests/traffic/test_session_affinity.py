"""Session affinity on Istio and the Gateway API: a user who reached the canary stays on it,
and the cookie is deleted once the canary's traffic is gone (Flagger's sticky routes)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from router_world import World
from traffic_testkit import NS, canary_body, deployment, with_route_cookies

from config import parse_canary
from traffic import DeploymentWorkload, Routes, Weights, router_for
from traffic._session_affinity import canary_cookie
from traffic.cluster import HTTP_ROUTE, VIRTUAL_SERVICE, ObjectRef

VS = ObjectRef(VIRTUAL_SERVICE, NS, "podinfo")
ROUTE = ObjectRef(HTTP_ROUTE, NS, "podinfo")
AFFINITY = {
    "cookieName": "flagger-cookie",
    "maxAge": 300,
    "domain": "example.com",
    "path": "/app",
    "sameSite": "Strict",
    "secure": True,
}


def sticky_canary(provider: str, **affinity: Any) -> Any:
    analysis = {
        "interval": "1m",
        "threshold": 5,
        "stepWeight": 10,
        "maxWeight": 50,
        "sessionAffinity": {**AFFINITY, **affinity},
    }
    service: dict[str, Any] = {"port": 9898}
    if provider.startswith("gatewayapi"):
        service["gatewayRefs"] = [{"name": "public", "namespace": "gateways"}]
    body = canary_body(provider=provider, analysis=analysis, service=service)
    body["status"] = {"lastAppliedSpec": "5f1d2c3b4a596877"}
    return parse_canary(body)


async def setup(world: World, provider: str, **affinity: Any) -> Any:
    canary = sticky_canary(provider, **affinity)
    world.seed(deployment())
    router = router_for(provider, world.cluster)
    await router.initialize(canary)
    await DeploymentWorkload(world.cluster).initialize(canary)
    await router.reconcile(canary)
    return canary, router


def test_the_cookie_is_stable_per_release_and_new_for_the_next() -> None:
    first = sticky_canary("istio")
    assert canary_cookie(first) == canary_cookie(sticky_canary("istio"))  # a restart keeps it
    assert re.fullmatch(r"flagger-cookie=[0-9a-f]{16}", canary_cookie(first))
    body = canary_body(provider="istio", analysis=first.spec.analysis.model_dump(by_alias=True))
    body["status"] = {"lastAppliedSpec": "0000000000000001"}
    assert canary_cookie(parse_canary(body)) != canary_cookie(first)


async def test_istio_keeps_canary_users_on_the_canary(world: World) -> None:
    canary, router = await setup(world, "istio")
    cookie = canary_cookie(canary)
    await router.set_routes(canary, Weights(90, 10))
    sticky, weighted = (await world.must_read(VS))["spec"]["http"]
    assert sticky["name"] == "sticky-route"
    regex = sticky["match"][0]["headers"]["Cookie"]["regex"]
    assert re.fullmatch(regex, f"session=1; {cookie}; theme=dark")
    assert not re.fullmatch(regex, "flagger-cookie=someone-else")
    assert [(d["destination"]["host"], d["weight"]) for d in sticky["route"]] == [
        ("podinfo-primary", 0),
        ("podinfo-canary", 100),
    ]
    canary_dest = weighted["route"][1]
    assert canary_dest["headers"]["response"]["add"]["Set-Cookie"] == (
        f"{cookie}; Max-Age=300; Domain=example.com; Path=/app; SameSite=Strict; Secure"
    )
    assert "headers" not in weighted["route"][0]  # no primaryCookieName: primary sets none
    assert await router.get_routes(canary) == Routes(Weights(90, 10))
    await router.reconcile(canary)  # the sticky route survives reconcile unchanged
    assert (await world.must_read(VS))["spec"]["http"][0] == sticky
    # promotion done: the cookie is deleted from whoever still sends it
    canary = with_route_cookies(canary, 10)
    await router.set_routes(canary, Weights(100, 0))
    expiry, weighted = (await world.must_read(VS))["spec"]["http"]
    assert expiry["headers"]["response"]["add"]["Set-Cookie"].startswith(f"{cookie}; Max-Age=-1")
    assert [(d["destination"]["host"], d["weight"]) for d in expiry["route"]] == [
        ("podinfo-primary", 100),
        ("podinfo-canary", 0),
    ]
    assert await router.get_routes(canary) == Routes(Weights(100, 0))


async def test_istio_primary_cookie_keeps_primary_users_on_the_primary(world: World) -> None:
    canary, router = await setup(world, "istio", primaryCookieName="primary-cookie")
    await router.set_routes(canary, Weights(80, 20))
    stick_canary, stick_primary, weighted = (await world.must_read(VS))["spec"]["http"]
    assert "primary-cookie" in stick_primary["match"][0]["headers"]["Cookie"]["regex"]
    assert stick_primary["route"][0] == {"destination": {"host": "podinfo-primary"}, "weight": 100}
    primary_set = weighted["route"][0]["headers"]["response"]["add"]["Set-Cookie"]
    assert primary_set.startswith("primary-cookie=") and "Max-Age=60;" in primary_set
    assert "flagger-cookie" in stick_canary["match"][0]["headers"]["Cookie"]["regex"]
    assert await router.get_routes(canary) == Routes(Weights(80, 20))


@pytest.mark.parametrize("provider", ["gatewayapi:v1"])
async def test_gateway_api_keeps_canary_users_on_the_canary(world: World, provider: str) -> None:
    canary, router = await setup(world, provider)
    cookie = canary_cookie(canary)
    await router.set_routes(canary, Weights(70, 30))
    sticky, weighted = (await world.must_read(ROUTE))["spec"]["rules"]
    (header,) = sticky["matches"][0]["headers"]
    assert (header["name"], header["type"]) == ("Cookie", "RegularExpression")
    assert re.fullmatch(header["value"], f"a=b; {cookie}")
    assert [(b["name"], b["weight"]) for b in sticky["backendRefs"]] == [
        ("podinfo-primary", 0),
        ("podinfo-canary", 100),
    ]
    (set_cookie,) = weighted["backendRefs"][1]["filters"]
    assert set_cookie["type"] == "ResponseHeaderModifier"
    attributes = "Max-Age=300; Domain=example.com; Path=/app; SameSite=Strict; Secure"
    assert set_cookie["responseHeaderModifier"]["add"] == [
        {"name": "Set-Cookie", "value": f"{cookie}; {attributes}"}
    ]
    assert await router.get_routes(canary) == Routes(Weights(70, 30))
    canary = with_route_cookies(canary, 30)
    await router.set_routes(canary, Weights(100, 0))
    expiry, weighted = (await world.must_read(ROUTE))["spec"]["rules"]
    (deleting,) = expiry["filters"]
    assert deleting["responseHeaderModifier"]["add"][0]["value"].startswith(f"{cookie}; Max-Age=-1")
    assert "filters" not in weighted["backendRefs"][1]
    assert await router.get_routes(canary) == Routes(Weights(100, 0))


@pytest.mark.parametrize("provider", ["istio", "gatewayapi:v1"])
async def test_no_sticky_route_before_a_cookie_was_handed_out(world: World, provider: str) -> None:
    """Flagger's Reconcile writes the weighted route alone (TestIstioRouter_Sync: one HTTP
    route); a sticky route appears with the first canary traffic, and at weight 0 it deletes
    only a cookie that was handed out."""
    canary, router = await setup(world, provider)
    ref, key = (VS, "http") if provider == "istio" else (ROUTE, "rules")
    assert len((await world.must_read(ref))["spec"][key]) == 1
    await router.set_routes(canary, Weights(100, 0))  # a restart at weight 0, no cookie yet
    assert len((await world.must_read(ref))["spec"][key]) == 1
    await router.set_routes(canary, Weights(90, 10))
    assert len((await world.must_read(ref))["spec"][key]) == 2


async def test_the_previous_runs_cookie_is_still_deleted_when_a_new_release_starts(
    world: World,
) -> None:
    """Flagger expires ``previousSessionAffinityCookie`` until the next run hands out a new
    cookie; the next release's cookie (derived from its lastAppliedSpec) was never handed out."""
    canary, router = await setup(world, "istio")
    handed_out = canary_cookie(canary)
    await router.set_routes(canary, Weights(90, 10))
    canary = with_route_cookies(canary, 10)
    await router.set_routes(canary, Weights(100, 0))
    canary = with_route_cookies(canary, 0)  # promoted: the cookie moved to previous
    status = {**(canary.status or {}), "lastAppliedSpec": "0000000000000002"}  # next release
    next_release = canary.model_copy(update={"status": status})
    assert canary_cookie(next_release) != handed_out
    await router.reconcile(next_release)
    expiry = (await world.must_read(VS))["spec"]["http"][0]
    assert expiry["headers"]["response"]["add"]["Set-Cookie"] == f"{handed_out}; Max-Age=-1"
