"""KEDA ScaledObject as autoscalerRef: the -primary copy kept in step with queries rewritten for
the primary, and the target's ScaledObject paused while the target is scaled to zero
(Flagger's scaled_object_reconciler.go)."""

from __future__ import annotations

from typing import Any

import pytest
from router_world import World
from traffic_testkit import NS, deployment, make_canary

from config import SpecError
from traffic import DeploymentWorkload
from traffic._scaled_object import PAUSED_REPLICAS_ANNOTATION, SCALED_OBJECT, primary_query
from traffic.cluster import DEPLOYMENT, ObjectRef

TARGET_SO = ObjectRef(SCALED_OBJECT, NS, "podinfo-so")
PRIMARY_SO = ObjectRef(SCALED_OBJECT, NS, "podinfo-so-primary")
QUERY = 'sum(rate(http_requests_total{deployment="podinfo-canary"}[2m])) + sum(podinfo_queue)'


def scaled_object(min_replicas: int = 3) -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "podinfo-so", "namespace": NS, "labels": {"app": "podinfo"}},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "pollingInterval": 10,
            "cooldownPeriod": 20,
            "minReplicaCount": min_replicas,
            "maxReplicaCount": 5,
            "advanced": {"horizontalPodAutoscalerConfig": {"name": "podinfo-hpa"}},
            "triggers": [
                {
                    "type": "prometheus",
                    "name": "requests",
                    "metadata": {"serverAddress": "http://prom:9090", "query": QUERY},
                },
                {"type": "cpu", "metadata": {"value": "60"}},
            ],
        },
    }


def keda_canary(**ref: Any) -> Any:
    return make_canary(
        autoscalerRef={
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "name": "podinfo-so",
            **ref,
        }
    )


def test_an_unsupported_autoscaler_kind_is_refused_naming_the_supported_ones() -> None:
    with pytest.raises(SpecError) as raised:
        keda_canary(apiVersion="autoscaling.k8s.io/v1", kind="VerticalPodAutoscaler")
    assert [str(p) for p in raised.value.problems] == [
        "spec.autoscalerRef.kind: must be one of 'HorizontalPodAutoscaler', 'ScaledObject' or "
        "'HTTPScaledObject', got 'VerticalPodAutoscaler'"
    ]


def test_keda_http_scaled_objects_are_refused_as_not_built() -> None:
    """Newer Flagger drives KEDA's HTTP add-on (its keda-httpscaledobject tutorial): the Canary
    reads, and is refused for that autoscaler, not as invalid."""
    with pytest.raises(SpecError) as raised:
        keda_canary(
            apiVersion="http.keda.sh/v1alpha1",
            kind="HTTPScaledObject",
            primaryScalingSet={"minReplicas": 1},
        )
    assert [str(p) for p in raised.value.problems] == [
        "spec.autoscalerRef.kind: HTTPScaledObject (KEDA's HTTP add-on) is not built yet in "
        "canary-engine (valid in newer Flagger); built: HorizontalPodAutoscaler, ScaledObject"
    ]


def test_the_primary_query_names_the_primary_only() -> None:
    assert primary_query(QUERY, "podinfo") == (
        'sum(rate(http_requests_total{deployment="podinfo-primary"}[2m])) + '
        "sum(podinfo-primary_queue)"
    )


@pytest.mark.parametrize(
    ("query", "wanted"),
    [
        (
            'sum(rate(http_requests_total{app="podinfo"}[2m]))',
            'sum(rate(http_requests_total{app="podinfo-primary"}[2m]))',
        ),
        (
            'sum(rate(http_requests_total{app="podinfo-canary"}[2m]))',
            'sum(rate(http_requests_total{app="podinfo-primary"}[2m]))',
        ),
        (
            'sum(rate(http_requests_total{app="podinfo-canary", svc="podinfo"}[2m]))',
            'sum(rate(http_requests_total{app="podinfo-primary", svc="podinfo-primary"}[2m]))',
        ),
    ],
)
def test_the_primary_query_cases_of_flagger(query: str, wanted: str) -> None:
    # Flagger's scaled_object_reconciler_test.go Test_setPrimaryScaledObjectQueries: the target
    # name and its -canary name both become the -primary name, never "-primary-canary"
    assert primary_query(query, "podinfo") == wanted


async def test_the_primary_copy_targets_the_primary(world: World) -> None:
    canary = keda_canary()
    world.seed(deployment(), scaled_object())
    await DeploymentWorkload(world.cluster).initialize(canary)
    primary = await world.must_read(PRIMARY_SO)
    spec = primary["spec"]
    assert spec["scaleTargetRef"] == {
        "name": "podinfo-primary",
        "kind": "Deployment",
        "apiVersion": "apps/v1",
    }
    assert (spec["minReplicaCount"], spec["maxReplicaCount"], spec["pollingInterval"]) == (3, 5, 10)
    assert spec["advanced"] == {"horizontalPodAutoscalerConfig": {"name": "podinfo-hpa-primary"}}
    assert spec["triggers"][0]["metadata"]["query"] == primary_query(QUERY, "podinfo")
    assert spec["triggers"][1] == {"type": "cpu", "metadata": {"value": "60"}}
    assert primary["metadata"]["labels"] == {"app": "podinfo"}
    assert primary["metadata"]["ownerReferences"][0]["kind"] == "Canary"


async def test_the_primary_copy_takes_the_targets_annotations_but_not_its_pause(
    world: World,
) -> None:
    """Flagger's makeObjectMetaSo copies the target's annotations (KEDA's transfer-hpa-ownership
    must reach the primary's); the pause this controller puts on the target never does."""
    canary = keda_canary()
    target = scaled_object()
    target["metadata"]["annotations"] = {
        "scaledobject.keda.sh/transfer-hpa-ownership": "true",
        "autoscaling.keda.sh/paused-replicas": "0",
        "kustomize.toolkit.fluxcd.io/checksum": "x",
    }
    world.seed(deployment(), target)
    await DeploymentWorkload(world.cluster).initialize(canary)
    primary = await world.must_read(PRIMARY_SO)
    assert primary["metadata"]["annotations"] == {
        "scaledobject.keda.sh/transfer-hpa-ownership": "true"
    }


async def test_primary_scaler_queries_win_and_promotion_keeps_the_copy_in_step(
    world: World,
) -> None:
    canary = keda_canary(primaryScalerQueries={"requests": "sum(primary_requests)"})
    world.seed(deployment(), scaled_object())
    workload = DeploymentWorkload(world.cluster)
    await workload.initialize(canary)
    spec = (await world.must_read(PRIMARY_SO))["spec"]
    assert spec["triggers"][0]["metadata"]["query"] == "sum(primary_requests)"
    # the user raises maxReplicaCount: initialisation leaves the copy alone, promotion syncs it
    await world.cluster.patch(TARGET_SO, {"spec": {"maxReplicaCount": 9}})
    await workload.initialize(canary)
    assert (await world.must_read(PRIMARY_SO))["spec"]["maxReplicaCount"] == 5
    await workload.promote(canary)
    assert (await world.must_read(PRIMARY_SO))["spec"]["maxReplicaCount"] == 9


async def test_primary_scaler_replicas_set_the_primary_bounds(world: World) -> None:
    # As for an HPA (and Flagger's reconcilePrimaryScaler): the override wins over the copy.
    canary = keda_canary(primaryScalerReplicas={"minReplicas": 2, "maxReplicas": 15})
    world.seed(deployment(), scaled_object())
    workload = DeploymentWorkload(world.cluster)
    await workload.initialize(canary)
    spec = (await world.must_read(PRIMARY_SO))["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 15)
    await world.cluster.patch(TARGET_SO, {"spec": {"maxReplicaCount": 9}})
    await workload.promote(canary)
    spec = (await world.must_read(PRIMARY_SO))["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 15)
    only_max = keda_canary(primaryScalerReplicas={"maxReplicas": 20})
    await workload.promote(only_max)
    spec = (await world.must_read(PRIMARY_SO))["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (3, 20)  # min: the target's


async def test_the_target_scaler_is_paused_while_the_target_is_at_zero(world: World) -> None:
    canary = keda_canary()
    world.seed(deployment(replicas=None), scaled_object(min_replicas=3))
    workload = DeploymentWorkload(world.cluster)
    await workload.initialize(canary)
    await workload.scale_to_zero(canary)
    so = await world.must_read(TARGET_SO)
    assert so["metadata"]["annotations"][PAUSED_REPLICAS_ANNOTATION] == "0"
    target = await world.must_read(ObjectRef(DEPLOYMENT, NS, "podinfo"))
    assert target["spec"]["replicas"] == 0
    await workload.scale_from_zero(canary)
    so = await world.must_read(TARGET_SO)
    assert PAUSED_REPLICAS_ANNOTATION not in (so["metadata"].get("annotations") or {})
    target = await world.must_read(ObjectRef(DEPLOYMENT, NS, "podinfo"))
    assert target["spec"]["replicas"] == 3  # minReplicaCount, as Flagger


async def test_rbac_allows_exactly_the_keda_calls(tmp_path: Any) -> None:
    """Every request the KEDA support sends is allowed by rbac.yaml, and every verb granted on
    scaledobjects is one it sends (tests/e2e/test_rbac.py leaves this resource to this test)."""
    from router_world import open_world

    from tests.e2e.test_rbac import Call, rbac_grants

    canary = keda_canary()
    async with open_world("kube", tmp_path) as world:
        world.seed(deployment(), scaled_object())
        workload = DeploymentWorkload(world.cluster)
        await workload.initialize(canary)
        await workload.scale_to_zero(canary)
        await workload.scale_from_zero(canary)
        await world.cluster.patch(TARGET_SO, {"spec": {"maxReplicaCount": 9}})
        await workload.promote(canary)
        calls = [
            Call(c.verb, c.group, c.resource, c.namespace, c.name)
            for c in world.calls()
            if c.group == "keda.sh"
        ]
    grants = [g for g in rbac_grants() if (g.group, g.resource) == ("keda.sh", "scaledobjects")]
    assert [str(c) for c in calls if not any(g.allows(c) for g in grants)] == []
    assert [str(g) for g in grants if not any(g.allows(c) for c in calls)] == []
