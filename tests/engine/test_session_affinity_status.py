"""Flagger's session-affinity status fields: Flagger's e2e scripts (test/istio and
test/gatewayapi test-session-affinity.sh) read ``status.previousSessionAffinityCookie`` after a
promotion and send it back, expecting the route to expire it (``Max-Age=-1``)."""

from __future__ import annotations

from typing import Any

from driver_world import NS, web_driver

from traffic import CANARY, DEPLOYMENT, VIRTUAL_SERVICE, InMemoryCluster, ObjectRef

ANALYSIS: dict[str, Any] = {
    "interval": "1m",
    "threshold": 2,
    "stepWeight": 50,
    "maxWeight": 50,
    "sessionAffinity": {"cookieName": "canary-cookie", "primaryCookieName": "primary-cookie"},
}


def status(cluster: InMemoryCluster) -> dict[str, Any]:
    body = cluster.peek(ObjectRef(CANARY, NS, "web"))
    assert body is not None
    return dict(body.get("status") or {})


async def test_the_cookies_are_in_the_status_and_the_expired_one_is_the_routes() -> None:
    cluster, driver = web_driver(provider="istio", analysis=ANALYSIS)
    await driver.tick()
    await driver.tick()
    await cluster.patch(
        ObjectRef(DEPLOYMENT, NS, "web"),
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:2"}]}}}},
    )
    seen: list[dict[str, Any]] = []
    for _ in range(8):
        await driver.tick()
        seen.append(status(cluster))
    during = next(s for s in seen if s.get("canaryWeight", 0) > 0)
    cookie = during["sessionAffinityCookie"]
    assert cookie.startswith("canary-cookie=")
    assert during["primarySessionAffinityCookie"].startswith("primary-cookie=")
    final = seen[-1]
    assert final["phase"] == "Succeeded"
    assert "sessionAffinityCookie" not in final and "primarySessionAffinityCookie" not in final
    assert final["previousSessionAffinityCookie"] == cookie
    # the cookie a script reads from the status is the one the route now expires
    vs = cluster.peek(ObjectRef(VIRTUAL_SERVICE, NS, "web"))
    assert vs is not None
    name, _, value = cookie.partition("=")
    sticky = next(r for r in vs["spec"]["http"] if r.get("name") == "sticky-route")
    assert sticky["match"][0]["headers"]["Cookie"]["regex"] == f".*{name}.*{value}.*"
    assert sticky["headers"]["response"]["add"]["Set-Cookie"] == f"{cookie}; Max-Age=-1"
