"""Linkerd, OSM and SMI: a TrafficSplit whose backends carry the weights (Flagger's smi*.go)."""

from __future__ import annotations

from typing import Any

import pytest
from router_world import World
from traffic_testkit import NS, deployment, make_canary

from config import SpecError
from traffic import DeploymentWorkload, Router, Routes, RoutingError, Weights, router_for
from traffic.cluster import SERVICE, ObjectRef
from traffic.routers.smi import (
    ISTIO_GATEWAYS_ANNOTATION,
    TRAFFIC_SPLIT_V1ALPHA1,
    TRAFFIC_SPLIT_V1ALPHA2,
    TRAFFIC_SPLIT_V1ALPHA3,
)

SPLIT_V1 = ObjectRef(TRAFFIC_SPLIT_V1ALPHA1, NS, "podinfo")


async def reconciled(world: World, provider: str, **spec: Any) -> Router:
    canary = make_canary(provider=provider, **spec)
    world.seed(deployment())
    router = router_for(provider, world.cluster)
    await router.initialize(canary)
    await DeploymentWorkload(world.cluster).initialize(canary)
    await router.reconcile(canary)
    return router


def backends(body: dict[str, Any]) -> dict[str, Any]:
    return {b["service"]: b["weight"] for b in body["spec"]["backends"]}


async def test_linkerd_creates_a_v1alpha1_split_at_all_primary(world: World) -> None:
    canary = make_canary(provider="linkerd")
    router = await reconciled(world, "linkerd")
    split = await world.must_read(SPLIT_V1)
    assert split["apiVersion"] == "split.smi-spec.io/v1alpha1"
    assert split["spec"]["service"] == "podinfo"
    # canary first, as Flagger writes them; v1alpha1 weights are quantities (strings)
    assert split["spec"]["backends"] == [
        {"service": "podinfo-canary", "weight": "0"},
        {"service": "podinfo-primary", "weight": "100"},
    ]
    assert split["metadata"]["ownerReferences"][0]["kind"] == "Canary"
    assert await router.get_routes(canary) == Routes(Weights(100, 0))
    # the ClusterIP services every provider needs
    apex = await world.must_read(ObjectRef(SERVICE, NS, "podinfo"))
    assert apex["spec"]["selector"] == {"app": "podinfo-primary"}
    canary_svc = await world.must_read(ObjectRef(SERVICE, NS, "podinfo-canary"))
    assert canary_svc["spec"]["selector"] == {"app": "podinfo"}


async def test_weights_round_trip_and_reconcile_keeps_them(world: World) -> None:
    canary = make_canary(provider="linkerd")
    router = await reconciled(world, "linkerd")
    await router.set_routes(canary, Weights(70, 30))
    assert backends(await world.must_read(SPLIT_V1)) == {
        "podinfo-canary": "30",
        "podinfo-primary": "70",
    }
    assert await router.get_routes(canary) == Routes(Weights(70, 30))
    await router.reconcile(canary)  # drift correction never moves traffic
    assert await router.get_routes(canary) == Routes(Weights(70, 30))
    await router.set_routes(canary, Weights(0, 100))
    assert await router.get_routes(canary) == Routes(Weights(0, 100))


async def test_reconcile_corrects_a_drifted_service_but_not_the_weights(world: World) -> None:
    canary = make_canary(provider="linkerd")
    router = await reconciled(world, "linkerd")
    await router.set_routes(canary, Weights(80, 20))
    split = await world.must_read(SPLIT_V1)
    await world.cluster.patch(SPLIT_V1, {"spec": {"service": "someone-else"}})
    await router.reconcile(canary)
    split = await world.must_read(SPLIT_V1)
    assert split["spec"]["service"] == "podinfo"
    assert backends(split) == {"podinfo-canary": "20", "podinfo-primary": "80"}


async def test_quantity_weights_written_by_others_are_read(world: World) -> None:
    canary = make_canary(provider="linkerd")
    router = await reconciled(world, "linkerd")
    await world.cluster.patch(
        SPLIT_V1,
        {
            "spec": {
                "backends": [
                    {"service": "podinfo-canary", "weight": "250m"},
                    {"service": "podinfo-primary", "weight": 99750},
                ]
            }
        },
    )
    with pytest.raises(RoutingError, match="must be non-negative and add up to 100"):
        await router.get_routes(canary)
    await world.cluster.patch(
        SPLIT_V1,
        {
            "spec": {
                "backends": [
                    {"service": "podinfo-canary", "weight": "10"},
                    {"service": "podinfo-primary", "weight": "90"},
                ]
            }
        },
    )
    assert await router.get_routes(canary) == Routes(Weights(90, 10))


async def test_a_split_without_our_backends_is_named(world: World) -> None:
    canary = make_canary(provider="linkerd")
    router = await reconciled(world, "linkerd")
    await world.cluster.patch(
        SPLIT_V1, {"spec": {"backends": [{"service": "other", "weight": "100"}]}}
    )
    with pytest.raises(
        RoutingError,
        match=r"TrafficSplit podinfo\.test does not contain routes for podinfo-primary and "
        "podinfo-canary",
    ):
        await router.get_routes(canary)


@pytest.mark.parametrize(
    ("provider", "kind"),
    [
        ("osm", TRAFFIC_SPLIT_V1ALPHA2),
        ("smi:v1alpha2", TRAFFIC_SPLIT_V1ALPHA2),
        ("smi:v1alpha3:linkerd", TRAFFIC_SPLIT_V1ALPHA3),
    ],
)
async def test_later_smi_versions_use_integer_weights(
    world: World, provider: str, kind: Any
) -> None:
    canary = make_canary(provider=provider)
    router = await reconciled(world, provider)
    ref = ObjectRef(kind, NS, "podinfo")
    await router.set_routes(canary, Weights(95, 5))
    split = await world.must_read(ref)
    assert split["apiVersion"] == kind.api_version
    assert backends(split) == {"podinfo-canary": 5, "podinfo-primary": 95}
    assert await router.get_routes(canary) == Routes(Weights(95, 5))


async def test_istio_as_target_mesh_gets_the_gateways_annotation(world: World) -> None:
    service = {"port": 9898, "hosts": ["app.example.com"], "gateways": ["public-gateway"]}
    await reconciled(world, "smi:v1alpha3:istio", service=service)
    split = await world.must_read(ObjectRef(TRAFFIC_SPLIT_V1ALPHA3, NS, "podinfo"))
    assert split["spec"]["service"] == "app.example.com"  # the first host, as Flagger
    annotations = split["metadata"]["annotations"]
    assert annotations[ISTIO_GATEWAYS_ANNOTATION] == '["public-gateway"]'


def test_header_matches_are_refused_at_validation() -> None:
    analysis = {
        "interval": "1m",
        "threshold": 5,
        "iterations": 10,
        "match": [{"headers": {"x-canary": {"exact": "insider"}}}],
    }
    with pytest.raises(SpecError) as err:
        make_canary(provider="linkerd", analysis=analysis)
    assert "spec.analysis.match" in str(err.value)
    assert "cannot route by header or cookie" in str(err.value)
