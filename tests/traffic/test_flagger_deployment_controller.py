"""Ports of Flagger's pkg/canary/deployment_controller_test.go cases no other test pins."""

from __future__ import annotations

from typing import Any

from traffic_testkit import NS, dep_ref, deployment, make_canary, svc_ref

from traffic import DeploymentWorkload, router_for
from traffic.cluster import HPA, Body, InMemoryCluster, ObjectRef


def _expression(value: str) -> dict[str, Any]:
    return {"matchExpressions": [{"key": "app", "operator": "In", "values": [value]}]}


async def test_primary_anti_affinity_and_spread_point_at_the_primary_and_leave_others() -> None:
    # Flagger's deployment_controller_test.go TestDeploymentController_AntiAffinityAndTopology
    # SpreadConstraints: a term naming the target gets "-primary", a term naming another app
    # is left as it is (preferred, required and topology spread alike)
    pod_spec = {
        "containers": [{"name": "podinfod", "image": "podinfo:1"}],
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "zone", "labelSelector": _expression("podinfo")},
            {"maxSkew": 1, "topologyKey": "zone", "labelSelector": _expression("arbitrary")},
        ],
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 100, "podAffinityTerm": {"labelSelector": _expression(v)}}
                    for v in ("podinfo", "arbitrary")
                ],
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": "node", "labelSelector": _expression(v)}
                    for v in ("podinfo", "arbitrary")
                ],
            }
        },
    }
    cluster = InMemoryCluster()
    cluster.seed(deployment(pod_spec=pod_spec))
    await DeploymentWorkload(cluster).initialize(make_canary())
    primary = cluster.peek(dep_ref("podinfo-primary"))
    assert primary is not None
    spec = primary["spec"]["template"]["spec"]

    def values(terms: list[Body], selector: str = "labelSelector") -> list[str]:
        out = []
        for term in terms:
            holder = term["podAffinityTerm"] if "podAffinityTerm" in term else term
            out.append(holder[selector]["matchExpressions"][0]["values"][0])
        return out

    anti = spec["affinity"]["podAntiAffinity"]
    assert values(anti["preferredDuringSchedulingIgnoredDuringExecution"]) == [
        "podinfo-primary",
        "arbitrary",
    ]
    assert values(anti["requiredDuringSchedulingIgnoredDuringExecution"]) == [
        "podinfo-primary",
        "arbitrary",
    ]
    assert values(spec["topologySpreadConstraints"]) == ["podinfo-primary", "arbitrary"]


async def test_a_target_named_unlike_its_selector_label_gets_a_primary_selecting_it() -> None:
    # Flagger's deployment_controller_test.go TestDeploymentController_Sync_InconsistentNaming:
    # Deployment "podinfo-service" selecting name=podinfo; the primary is
    # "podinfo-service-primary" selecting name=podinfo-primary, its HPA scales it
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": "podinfo-service",
            },
            "minReplicas": 1,
            "maxReplicas": 4,
        },
    }
    cluster = InMemoryCluster()
    cluster.seed(deployment("podinfo-service", selector={"name": "podinfo"}), hpa)
    canary = make_canary(
        targetRef={"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo-service"},
        autoscalerRef={
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "name": "podinfo",
        },
    )
    router = router_for("istio", cluster)
    await router.initialize(canary)
    await DeploymentWorkload(cluster).initialize(canary)
    await router.reconcile(canary)

    primary = cluster.peek(dep_ref("podinfo-service-primary"))
    assert primary is not None
    assert primary["spec"]["selector"] == {"matchLabels": {"name": "podinfo-primary"}}
    assert primary["spec"]["template"]["metadata"]["labels"] == {"name": "podinfo-primary"}
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "ghcr.io/stefanprodan/podinfo:6.0.0"
    )
    primary_hpa = cluster.peek(ObjectRef(HPA, NS, "podinfo-primary"))
    assert primary_hpa is not None
    assert primary_hpa["spec"]["scaleTargetRef"]["name"] == "podinfo-service-primary"
    # the Services are named after the target, their selectors after the label value
    selectors = {}
    for name in ("podinfo-service", "podinfo-service-primary", "podinfo-service-canary"):
        body = cluster.peek(svc_ref(name))
        assert body is not None
        selectors[name] = body["spec"]["selector"]
    assert selectors == {
        "podinfo-service": {"name": "podinfo-primary"},
        "podinfo-service-primary": {"name": "podinfo-primary"},
        "podinfo-service-canary": {"name": "podinfo"},
    }
