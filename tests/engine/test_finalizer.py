"""revertOnDeletion: the finalizer follows the spec, and deleting the Canary hands the service back
to the target workload before the Canary goes (flagger-behaviour §2.15)."""

from __future__ import annotations

from typing import Any

from driver_world import NS, web_driver

from engine import CanaryDriver
from traffic import CANARY, DEPLOYMENT, SERVICE, DeploymentWorkload, InMemoryCluster, ObjectRef

FINALIZER = "finalizer.flagger.app"


def seeded(revert: bool = True) -> tuple[InMemoryCluster, CanaryDriver]:
    return web_driver(revertOnDeletion=revert)


def canary(cluster: InMemoryCluster) -> dict[str, Any] | None:
    return cluster.peek(ObjectRef(CANARY, NS, "web"))


async def test_the_finalizer_follows_revert_on_deletion() -> None:
    cluster, driver = seeded(revert=True)
    await driver.tick()
    body = canary(cluster)
    assert body is not None and FINALIZER in body["metadata"]["finalizers"]
    await cluster.patch(ObjectRef(CANARY, NS, "web"), {"spec": {"revertOnDeletion": False}})
    await driver.tick()
    body = canary(cluster)
    assert body is not None and FINALIZER not in (body["metadata"].get("finalizers") or [])


async def test_deleting_reverts_the_target_and_the_apex_service_then_lets_the_canary_go() -> None:
    cluster, driver = seeded(revert=True)
    for _ in range(3):
        await driver.tick()
    target = cluster.peek(ObjectRef(DEPLOYMENT, NS, "web"))
    assert target is not None and target["spec"]["replicas"] == 0  # initialised: primary serves
    apex = cluster.peek(ObjectRef(SERVICE, NS, "web"))
    assert apex is not None and apex["spec"]["selector"] == {"app": "web-primary"}
    await cluster.delete(ObjectRef(CANARY, NS, "web"))
    marked = canary(cluster)
    assert marked is not None and marked["metadata"].get("deletionTimestamp")  # held by finalizer
    await driver.tick()
    assert canary(cluster) is None
    target = cluster.peek(ObjectRef(DEPLOYMENT, NS, "web"))
    assert target is not None and target["spec"]["replicas"] == 3  # the primary's replicas
    apex = cluster.peek(ObjectRef(SERVICE, NS, "web"))
    assert apex is not None and apex["spec"]["selector"] == {"app": "web"}
    messages = [e["message"] for e in cluster.events_for(NS, "web")]
    assert messages[-2:] == ["Terminating canary web.staging", "Terminated canary web.staging"]


async def test_without_revert_on_deletion_the_canary_is_deleted_at_once() -> None:
    cluster, driver = seeded(revert=False)
    await driver.tick()
    await cluster.delete(ObjectRef(CANARY, NS, "web"))
    assert canary(cluster) is None


async def test_the_finalizers_written_are_the_list_as_it_is_when_written(
    monkeypatch: Any,
) -> None:
    # A merge patch replaces the whole list. Another controller letting go of its own finalizer
    # while ours finalizes must not get it written back (the API server refuses a finalizer added
    # to an object being deleted, so a stale list would fail the tick with a Warning event).
    cluster, driver = seeded(revert=True)
    for _ in range(3):
        await driver.tick()
    ref = ObjectRef(CANARY, NS, "web")
    body = canary(cluster)
    assert body is not None
    other = "backup.example.com/snapshot"
    await cluster.patch(ref, {"metadata": {"finalizers": [*body["metadata"]["finalizers"], other]}})
    reverting = DeploymentWorkload.finalize

    async def finalize_while_the_other_controller_lets_go(self: Any, canary_: Any) -> None:
        await reverting(self, canary_)
        held = cluster.peek(ref)
        assert held is not None
        mine = [f for f in held["metadata"]["finalizers"] if f != other]
        await cluster.patch(ref, {"metadata": {"finalizers": mine}})

    monkeypatch.setattr(DeploymentWorkload, "finalize", finalize_while_the_other_controller_lets_go)
    await cluster.delete(ref)
    await driver.tick()
    assert canary(cluster) is None
    events = cluster.events_for(NS, "web")
    assert [e["message"] for e in events if e["type"] == "Warning"] == []


async def test_a_canary_refused_for_a_cross_namespace_reference_is_still_finalized() -> None:
    # --no-cross-namespace-refs refuses to drive a Canary that names another namespace, but a
    # deletion is carried out (Flagger's sync handler finalizes before it verifies anything): the
    # target gets its replicas back and the Canary goes, instead of staying Terminating.
    from engine import Settings

    cluster, driver = web_driver(
        revertOnDeletion=True, settings=Settings(no_cross_namespace_refs=True)
    )
    for _ in range(3):
        await driver.tick()
    ref = ObjectRef(CANARY, NS, "web")
    alert = {"name": "chat", "providerRef": {"name": "slack", "namespace": "infra"}}
    await cluster.patch(ref, {"spec": {"analysis": {"alerts": [alert]}}})
    await driver.tick()
    body = canary(cluster)
    assert body is not None
    assert any(c["type"] == "Validated" for c in body["status"]["conditions"])
    await cluster.delete(ref)
    await driver.tick()
    assert canary(cluster) is None
    target = cluster.peek(ObjectRef(DEPLOYMENT, NS, "web"))
    assert target is not None and target["spec"]["replicas"] == 3
