"""Knative: the traffic split of the Knative Service target, between the pinned primary revision
and the latest one (Flagger's knative.go and knative_controller.go)."""

from __future__ import annotations

from typing import Any

import pytest
from router_world import World, open_world
from traffic_testkit import NOW, NS, canary_body

from config import SpecError, parse_canary
from traffic import (
    KNATIVE_SERVICE,
    Routes,
    RoutingError,
    TargetWorkload,
    Weights,
    WorkloadError,
    router_for,
)
from traffic._knative import PRIMARY_REVISION_ANNOTATION, REVISION_KEY
from traffic.cluster import ObjectRef, json_copy

SERVICE = ObjectRef(KNATIVE_SERVICE, NS, "podinfo")
TARGET = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "podinfo"}


def knative_service(latest: str = "podinfo-00001") -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {"template": {"spec": {"containers": [{"image": "podinfo:6.0.0"}]}}},
        "status": {"latestCreatedRevisionName": latest, "latestReadyRevisionName": latest},
    }


def revision(name: str, ready: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Revision",
        "metadata": {"name": name, "namespace": NS},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def knative_canary() -> Any:
    body = canary_body(provider="knative", targetRef=TARGET)
    del body["spec"]["service"]  # a Knative Canary has none, as in Flagger's tutorial
    return parse_canary(body)


async def test_initialisation_pins_the_current_revision_as_primary(world: World) -> None:
    canary = knative_canary()
    world.seed(knative_service(), revision("podinfo-00001"))
    workload, router = TargetWorkload(world.cluster), router_for("knative", world.cluster)
    await router.initialize(canary)
    await workload.initialize(canary)
    await router.reconcile(canary)
    body = await world.must_read(SERVICE)
    assert body["metadata"]["annotations"][PRIMARY_REVISION_ANNOTATION] == "podinfo-00001"
    assert body["spec"]["traffic"] == [
        {"latestRevision": True, "percent": 0},
        {"revisionName": "podinfo-00001", "latestRevision": False, "percent": 100},
    ]
    assert await router.get_routes(canary) == Routes(Weights(100, 0))
    assert (await workload.readiness(canary, primary=True, now=NOW)).ready
    revision_now = await workload.revision(canary)
    assert revision_now.configs == {REVISION_KEY: "podinfo-00001"}
    assert len(revision_now.spec_hash) == 16  # the engine's own hash format


async def test_a_new_revision_is_weighted_then_promoted(world: World) -> None:
    canary = knative_canary()
    world.seed(knative_service(), revision("podinfo-00001"))
    workload, router = TargetWorkload(world.cluster), router_for("knative", world.cluster)
    await workload.initialize(canary)
    before = await workload.revision(canary)
    # the user deploys a new image; Knative creates podinfo-00002 (InMemoryCluster simulates
    # Knative; against the API server the test plays Knative's part)
    new_template = {"spec": {"containers": [{"image": "podinfo:6.1.0"}]}}
    await world.cluster.patch(SERVICE, {"spec": {"template": new_template}})
    if world.api is not None:
        body = json_copy(await world.must_read(SERVICE))
        body["status"] = {"latestCreatedRevisionName": "podinfo-00002"}
        world.seed(body, revision("podinfo-00002", ready=False))
        readiness = await workload.readiness(canary, primary=False, now=NOW)
        assert not readiness.ready and "Knative Revision podinfo-00002" in readiness.message
        world.seed(revision("podinfo-00002"))
    assert await workload.revision(canary) != before
    assert (await workload.readiness(canary, primary=False, now=NOW)).ready
    await router.set_routes(canary, Weights(70, 30))
    body = await world.must_read(SERVICE)
    assert body["spec"]["traffic"] == [
        {"latestRevision": True, "percent": 30},
        {"revisionName": "podinfo-00001", "latestRevision": False, "percent": 70},
    ]
    assert await router.get_routes(canary) == Routes(Weights(70, 30))
    await workload.promote(canary)
    await router.set_routes(canary, Weights(100, 0))
    body = await world.must_read(SERVICE)
    assert body["metadata"]["annotations"][PRIMARY_REVISION_ANNOTATION] == "podinfo-00002"
    assert body["spec"]["traffic"][1] == {
        "revisionName": "podinfo-00002",
        "latestRevision": False,
        "percent": 100,
    }


async def test_primary_runs_is_the_pinned_revision(world: World) -> None:
    canary = knative_canary()
    service = knative_service("podinfo-00002")
    service["metadata"]["annotations"] = {PRIMARY_REVISION_ANNOTATION: "podinfo-00001"}
    world.seed(service, revision("podinfo-00001"), revision("podinfo-00002"))
    workload = TargetWorkload(world.cluster)
    latest = await workload.revision(canary)
    assert await workload.primary_runs(canary, latest) is False
    await workload.promote(canary)
    assert await workload.primary_runs(canary, latest) is True


async def test_reconcile_pins_the_latest_revision_when_none_is_pinned(world: World) -> None:
    # Flagger's TestKnativeRouter_Reconcile and TestKnativeRouter_SetRoutes
    canary = knative_canary()
    world.seed(knative_service(), revision("podinfo-00001"))
    router = router_for("knative", world.cluster)
    with pytest.raises(WorkloadError, match=r"annotation flagger\.app/primary-revision not found"):
        await router.set_routes(canary, Weights(10, 90))
    await router.reconcile(canary)
    body = await world.must_read(SERVICE)
    assert body["metadata"]["annotations"][PRIMARY_REVISION_ANNOTATION] == "podinfo-00001"
    assert "traffic" not in body["spec"]  # Flagger's Reconcile writes the annotation only
    await router.set_routes(canary, Weights(10, 90))
    traffic = (await world.must_read(SERVICE))["spec"]["traffic"]
    assert len(traffic) == 2
    assert traffic[0]["latestRevision"] is True and traffic[0]["percent"] == 90
    assert traffic[1]["revisionName"] == "podinfo-00001" and traffic[1]["percent"] == 10


async def test_reconcile_keeps_the_pinned_revision(world: World) -> None:
    canary = knative_canary()
    service = knative_service("podinfo-00002")
    service["metadata"]["annotations"] = {PRIMARY_REVISION_ANNOTATION: "podinfo-00001"}
    world.seed(service, revision("podinfo-00001"), revision("podinfo-00002"))
    before = await world.must_read(SERVICE)
    await router_for("knative", world.cluster).reconcile(canary)
    after = await world.must_read(SERVICE)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["metadata"]["annotations"][PRIMARY_REVISION_ANNOTATION] == "podinfo-00001"


async def test_finalize_unpins_so_a_new_canary_pins_the_current_revision(world: World) -> None:
    # Flagger's KnativeRouter.Finalize deletes the annotation (spec.traffic is left as it is)
    canary = knative_canary()
    service = knative_service("podinfo-00002")
    service["metadata"]["annotations"] = {PRIMARY_REVISION_ANNOTATION: "podinfo-00001", "a": "b"}
    world.seed(service, revision("podinfo-00001"), revision("podinfo-00002"))
    workload, router = TargetWorkload(world.cluster), router_for("knative", world.cluster)
    await router.set_routes(canary, Weights(100, 0))
    await router.finalize(canary)
    body = await world.must_read(SERVICE)
    assert body["metadata"]["annotations"] == {"a": "b"}
    assert body["spec"]["traffic"][1]["revisionName"] == "podinfo-00001"
    unpinned = body["metadata"]["resourceVersion"]
    await router.finalize(canary)  # nothing left to remove: no write
    assert (await world.must_read(SERVICE))["metadata"]["resourceVersion"] == unpinned
    # the Canary created again: initialisation pins the revision current now
    await router.initialize(canary)
    await workload.initialize(canary)
    await router.reconcile(canary)
    body = await world.must_read(SERVICE)
    assert body["metadata"]["annotations"][PRIMARY_REVISION_ANNOTATION] == "podinfo-00002"
    assert await router.get_routes(canary) == Routes(Weights(100, 0))
    assert body["spec"]["traffic"][1]["revisionName"] == "podinfo-00002"
    await world.cluster.delete(SERVICE)
    await router.finalize(canary)  # a Service gone is not an error


@pytest.mark.parametrize(
    ("phase", "primary"),
    [
        (None, "podinfo-00002"),  # a Canary created again over a Service an old one pinned
        ("Initializing", "podinfo-00002"),
        ("Succeeded", "podinfo-00001"),  # after initialisation the pin is the last promoted
        ("Progressing", "podinfo-00001"),
    ],
)
async def test_initialisation_pins_the_latest_revision_while_the_canary_is_new(
    world: World, phase: str | None, primary: str
) -> None:
    # Flagger's KnativeController.Initialize: with phase "" or Initializing, the annotation and
    # the traffic name the latest created revision, whatever was pinned
    body = canary_body(provider="knative", targetRef=TARGET)
    del body["spec"]["service"]
    if phase is not None:
        body["status"] = {"phase": phase}
    canary = parse_canary(body)
    service = knative_service("podinfo-00002")
    service["metadata"]["annotations"] = {PRIMARY_REVISION_ANNOTATION: "podinfo-00001"}
    world.seed(service, revision("podinfo-00001"), revision("podinfo-00002"))
    await TargetWorkload(world.cluster).initialize(canary)
    found = await world.must_read(SERVICE)
    assert found["metadata"]["annotations"][PRIMARY_REVISION_ANNOTATION] == primary
    # the next tick finds it pinned and routed: nothing is sent
    if world.api is not None:
        before = len(world.calls())
        await TargetWorkload(world.cluster).initialize(canary)
        assert [c.verb for c in world.calls()[before:]] == ["get"]


async def test_unchanged_weights_send_no_patch_to_a_defaulted_service(world: World) -> None:
    # Knative's webhook stores latestRevision: false on the entry naming a revision; the router
    # writes it too, so the same weights again are no change.
    canary = knative_canary()
    service = knative_service()
    service["metadata"].setdefault("annotations", {})[PRIMARY_REVISION_ANNOTATION] = "podinfo-00001"
    service["spec"]["traffic"] = [
        {"latestRevision": True, "percent": 20},
        {"revisionName": "podinfo-00001", "latestRevision": False, "percent": 80},
    ]
    world.seed(service, revision("podinfo-00001"))
    router = router_for("knative", world.cluster)
    before = await world.must_read(SERVICE)
    await router.set_routes(canary, Weights(80, 20))
    after = await world.must_read(SERVICE)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


async def test_a_service_without_a_revision_is_named(tmp_path: Any) -> None:
    # against the API server only: InMemoryCluster simulates Knative, which creates one at once
    canary = knative_canary()
    service = knative_service()
    del service["status"]
    async with open_world("kube", tmp_path) as world:
        world.seed(service)
        with pytest.raises(WorkloadError, match="has no revision yet"):
            await TargetWorkload(world.cluster).initialize(canary)
        # Flagger's Reconcile would pin an empty name; here nothing is written
        with pytest.raises(RoutingError, match=r"podinfo\.test has no revision yet"):
            await router_for("knative", world.cluster).reconcile(canary)
        assert "annotations" not in (await world.must_read(SERVICE))["metadata"]


async def test_a_percent_that_is_not_a_number_names_the_service(world: World) -> None:
    canary = knative_canary()
    service = knative_service()
    service["spec"]["traffic"] = [
        {"latestRevision": True, "percent": "ten"},
        {"revisionName": "podinfo-00001", "percent": 90},
    ]
    world.seed(service, revision("podinfo-00001"))
    with pytest.raises(RoutingError, match=r"Knative Service podinfo\.test: weight 'ten'"):
        await router_for("knative", world.cluster).get_routes(canary)


def test_provider_and_target_go_together() -> None:
    with pytest.raises(SpecError, match="provider knative needs a Knative Service target"):
        parse_canary(canary_body(provider="knative"))
    body = canary_body(provider="linkerd", targetRef=TARGET)
    with pytest.raises(SpecError, match="a Knative Service target needs provider knative"):
        parse_canary(body)


def test_builtin_queries_select_the_revision_under_analysis() -> None:
    from analysis import TemplateModel, builtin_queries, render_query
    from config import Metric
    from traffic import builtin_metrics_provider

    body = canary_body(provider="knative", targetRef=TARGET)
    del body["spec"]["service"]
    body["status"] = {"trackedConfigs": {REVISION_KEY: "podinfo-00002"}}
    canary = parse_canary(body)
    assert builtin_metrics_provider("knative") == "knative"
    model = TemplateModel.for_metric(canary, Metric(name="request-success-rate"))
    assert model.route == "podinfo-00002"
    query = render_query(builtin_queries("knative").success_rate, model, source="t")
    assert 'envoy_cluster_name=~"test/podinfo-00002"' in query
