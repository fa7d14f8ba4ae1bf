"""The NGINX router: a canary Ingress whose annotations carry the weight or the A/B match."""

from __future__ import annotations

from typing import Any

import pytest
from traffic_testkit import NS, deployment, make_canary

from config import Canary
from traffic import DeploymentWorkload, Router, Routes, RoutingError, Weights, router_for
from traffic.cluster import INGRESS, Body, InMemoryCluster, ObjectRef

USER_INGRESS = ObjectRef(INGRESS, NS, "podinfo")
CANARY_INGRESS = ObjectRef(INGRESS, NS, "podinfo-canary")
P = "nginx.ingress.kubernetes.io"


def ingress(backend: str = "podinfo") -> Body:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "podinfo",
            "namespace": NS,
            "labels": {"app": "podinfo"},
            "annotations": {"kubernetes.io/ingress.class": "nginx", f"{P}/canary-weight": "7"},
        },
        "spec": {
            "rules": [
                {
                    "host": "app.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": backend, "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ]
        },
    }


def nginx_canary(analysis: dict[str, Any] | None = None) -> Canary:
    return make_canary(
        provider="nginx",
        analysis=analysis,
        ingressRef={"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "podinfo"},
    )


async def reconciled(canary: Canary, user: Body | None = None) -> tuple[InMemoryCluster, Router]:
    cluster = InMemoryCluster()
    cluster.seed(deployment(), user or ingress())
    router = router_for("nginx", cluster)
    await router.initialize(canary)
    await DeploymentWorkload(cluster).initialize(canary)
    await router.reconcile(canary)
    return cluster, router


def canary_annotations(cluster: InMemoryCluster) -> dict[str, str]:
    body = cluster.peek(CANARY_INGRESS)
    assert body is not None
    return dict(body["metadata"]["annotations"])


async def test_reconcile_copies_the_ingress_towards_the_canary_service() -> None:
    canary = nginx_canary()
    cluster, router = await reconciled(canary)
    body = cluster.peek(CANARY_INGRESS)
    assert body is not None
    path = body["spec"]["rules"][0]["http"]["paths"][0]
    assert path["backend"]["service"] == {"name": "podinfo-canary", "port": {"number": 80}}
    assert canary_annotations(cluster) == {
        "kubernetes.io/ingress.class": "nginx",
        f"{P}/canary": "true",
        f"{P}/canary-weight": "0",
    }
    assert body["metadata"]["labels"] == {"app": "podinfo"}
    assert body["metadata"]["ownerReferences"][0]["kind"] == "Canary"
    assert cluster.peek(USER_INGRESS) is not None
    user_backend = cluster.peek(USER_INGRESS)["spec"]["rules"][0]["http"]["paths"][0]  # type: ignore[index]
    assert user_backend["backend"]["service"]["name"] == "podinfo"  # the user's is untouched
    assert await router.get_routes(canary) == Routes(Weights(100, 0))


async def test_weights_round_trip_and_reset_at_zero() -> None:
    canary = nginx_canary()
    cluster, router = await reconciled(canary)
    await router.set_routes(canary, Weights(80, 20))
    assert canary_annotations(cluster)[f"{P}/canary-weight"] == "20"
    assert await router.get_routes(canary) == Routes(Weights(80, 20))
    await router.reconcile(canary)
    assert await router.get_routes(canary) == Routes(Weights(80, 20))
    await router.set_routes(canary, Weights(100, 0))
    assert canary_annotations(cluster)[f"{P}/canary-weight"] == "0"
    assert canary_annotations(cluster)[f"{P}/canary"] == "true"


async def test_ab_testing_routes_by_header_and_cookie() -> None:
    analysis = {
        "interval": "1m",
        "threshold": 5,
        "iterations": 10,
        "match": [
            {"headers": {"x-canary": {"regex": ".*insider.*"}}},
            {"headers": {"cookie": {"exact": "canary"}}},
        ],
    }
    canary = nginx_canary(analysis)
    cluster, router = await reconciled(canary)
    await router.set_routes(canary, Weights(0, 100))
    found = canary_annotations(cluster)
    assert found[f"{P}/canary"] == "true"
    assert found[f"{P}/canary-by-header"] == "x-canary"
    assert found[f"{P}/canary-by-header-pattern"] == ".*insider.*"
    assert found[f"{P}/canary-by-cookie"] == "canary"
    # the weight reconcile set stays beside the header rules, as Flagger's filter keeps it
    assert found[f"{P}/canary-weight"] == "0"
    assert await router.get_routes(canary) == Routes(Weights(0, 100))
    await router.set_routes(canary, Weights(100, 0))
    assert not any("canary-by" in k for k in canary_annotations(cluster))
    assert await router.get_routes(canary) == Routes(Weights(100, 0))


async def test_an_ingress_without_the_apex_backend_is_an_error() -> None:
    cluster = InMemoryCluster()
    cluster.seed(deployment(), ingress(backend="something-else"))
    with pytest.raises(RoutingError, match="backend podinfo not found in ingress podinfo"):
        await router_for("nginx", cluster).reconcile(nginx_canary())


async def test_a_missing_ingress_is_named() -> None:
    cluster = InMemoryCluster()
    cluster.seed(deployment())
    with pytest.raises(RoutingError, match=r"ingress podinfo\.test not found"):
        await router_for("nginx", cluster).reconcile(nginx_canary())
