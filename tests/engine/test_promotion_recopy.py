"""The Promoting phase copies the promoted revision to the primary again (in case the controller
stopped between the Promoting status and the copy): only that revision, never a later one, and
never in the same tick as the traffic it would then take."""

from __future__ import annotations

from typing import Any

import pytest
from driver_world import NS, web_driver

from traffic import CANARY, DEPLOYMENT, InMemoryCluster, ObjectRef
from traffic.cluster import ClusterUnavailable

TARGET = ObjectRef(DEPLOYMENT, NS, "web")
CANARY_REF = ObjectRef(CANARY, NS, "web")


def image(cluster: InMemoryCluster, name: str) -> str:
    body = cluster.peek(ObjectRef(DEPLOYMENT, NS, name))
    assert body is not None
    return str(body["spec"]["template"]["spec"]["containers"][0]["image"])


def phase(cluster: InMemoryCluster) -> str:
    body = cluster.peek(CANARY_REF)
    assert body is not None
    return str((body.get("status") or {}).get("phase"))


async def release(cluster: InMemoryCluster, version: str) -> None:
    containers = [{"name": "web", "image": f"web:{version}"}]
    await cluster.patch(TARGET, {"spec": {"template": {"spec": {"containers": containers}}}})


async def until_promoting(cluster: InMemoryCluster, driver: Any) -> None:
    for _ in range(30):
        await driver.tick()
        if phase(cluster) == "Promoting":
            return
    raise AssertionError(f"never Promoting: {phase(cluster)}")


@pytest.mark.parametrize("step_promotion", [0, 25])
async def test_a_revision_pushed_while_promoting_waits_for_its_own_analysis(
    step_promotion: int,
) -> None:
    cluster, driver = web_driver()
    await cluster.patch(CANARY_REF, {"spec": {"analysis": {"stepWeightPromotion": step_promotion}}})
    for _ in range(3):
        await driver.tick()
    await release(cluster, "2")
    await until_promoting(cluster, driver)
    assert image(cluster, "web-primary") == "web:2"
    await release(cluster, "3")  # pushed during the promotion of web:2
    while phase(cluster) in ("Promoting", "Finalising"):
        await driver.tick()
        assert image(cluster, "web-primary") == "web:2"
    # web:3 then gets a run of its own, the primary still on web:2 while it is analysed
    for _ in range(3):
        if phase(cluster) == "Progressing":
            break
        await driver.tick()
    assert phase(cluster) == "Progressing"
    assert image(cluster, "web-primary") == "web:2"
    body = cluster.peek(CANARY_REF)
    assert (
        body is not None and body["status"]["lastAppliedSpec"] != body["status"]["lastPromotedSpec"]
    )


async def test_a_copy_lost_after_the_promoting_write_is_made_before_traffic_moves() -> None:
    cluster, driver = web_driver()
    for _ in range(3):
        await driver.tick()
    await release(cluster, "2")
    primary = ObjectRef(DEPLOYMENT, NS, "web-primary")
    inner = cluster.patch
    copies: list[int] = []

    async def patch(ref: ObjectRef, body: Any, **kwargs: Any) -> Any:
        if ref == primary and "web:2" in str(body):
            copies.append(len(copies))
            if len(copies) == 1:  # the copy after the Promoting status write fails once
                raise ClusterUnavailable("503 from the API server")
            answer = await inner(ref, body, **kwargs)
            # the new revision rolls out: one of three pods updated so far
            rolling = {
                "observedGeneration": answer["metadata"]["generation"],
                "replicas": 3,
                "updatedReplicas": 1,
                "readyReplicas": 3,
                "availableReplicas": 3,
            }
            cluster.hold_readiness(primary, rolling)
            return answer
        return await inner(ref, body, **kwargs)

    cluster.patch = patch  # type: ignore[method-assign]
    await until_promoting(cluster, driver)
    assert copies == [0] and image(cluster, "web-primary") == "web:1"
    # The next tick copies and ends there, before the traffic goes back to the primary: its
    # readiness is checked first, as after a first copy.
    report = await driver.tick()
    assert image(cluster, "web-primary") == "web:2" and phase(cluster) == "Promoting"
    assert report.error is not None and "given the promoted revision again" in report.error
    await driver.tick()
    assert phase(cluster) == "Promoting"  # still rolling out: held
    cluster.release(primary)
    while phase(cluster) in ("Promoting", "Finalising"):
        await driver.tick()
    assert phase(cluster) == "Succeeded" and image(cluster, "web-primary") == "web:2"


@pytest.mark.parametrize("provider", ["kubernetes", "istio"])
async def test_the_promoting_copy_writes_nothing_once_made(provider: str) -> None:
    cluster, driver = web_driver(provider=provider)
    await cluster.patch(CANARY_REF, {"spec": {"analysis": {"stepWeightPromotion": 50}}})
    for _ in range(3):
        await driver.tick()
    await release(cluster, "2")
    await until_promoting(cluster, driver)
    inner = cluster.patch
    primary_writes: list[Any] = []

    async def patch(ref: ObjectRef, body: Any, **kwargs: Any) -> Any:
        if ref.name == "web-primary":
            primary_writes.append(body)
        return await inner(ref, body, **kwargs)

    cluster.patch = patch  # type: ignore[method-assign]
    while phase(cluster) == "Promoting":
        await driver.tick()
    assert primary_writes == []
