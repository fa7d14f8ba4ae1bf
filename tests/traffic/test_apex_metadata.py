"""The routing objects' metadata follows the Canary's ``service.apex`` as Flagger's routers make
it: on every reconcile they replace the VirtualService's labels and annotations
(``vtClone.ObjectMeta.Labels = newMetadata.Labels``, keeping only kubectl's last-applied and the
original configuration), the HTTPRoute's labels (its annotations merged, "preserve the existing
annotations added by other controllers"), and the gloo RouteTable's and TraefikService's labels
and annotations. A label removed from the Canary leaves the object; a user's own object taken
over keeps its labels. SMI's TrafficSplit and contour's HTTPProxy carry none of the apex
metadata (only their own annotations), kuma's TrafficRoute only its annotations.
"""

from __future__ import annotations

from typing import Any

import pytest
from traffic_testkit import NS, deployment, make_canary

from config import Canary
from traffic import DeploymentWorkload, router_for
from traffic.cluster import HTTP_ROUTE, VIRTUAL_SERVICE, InMemoryCluster, Kind, ObjectRef
from traffic.routers.contour import HTTP_PROXY
from traffic.routers.gloo import ROUTE_TABLE
from traffic.routers.kuma import TRAFFIC_ROUTE
from traffic.routers.smi import TRAFFIC_SPLIT_V1ALPHA1, TRAFFIC_SPLIT_V1ALPHA2
from traffic.routers.traefik import TRAEFIK_SERVICE

GATEWAYS = [{"name": "gw", "namespace": "istio-ingress"}]
#: The routers whose object follows the apex metadata on every reconcile.
ROUTING: dict[str, Kind] = {
    "istio": VIRTUAL_SERVICE,
    "gatewayapi:v1": HTTP_ROUTE,
    "gloo": ROUTE_TABLE,
    "traefik": TRAEFIK_SERVICE,
}
#: The routers whose object carries none of it, or only its annotations (kuma).
OTHERS: dict[str, Kind] = {
    "linkerd": TRAFFIC_SPLIT_V1ALPHA1,
    "osm": TRAFFIC_SPLIT_V1ALPHA2,
    "contour": HTTP_PROXY,
    "kuma": TRAFFIC_ROUTE,
}


def _canary(provider: str, labels: dict[str, str], annotations: dict[str, str]) -> Canary:
    service: dict[str, Any] = {"port": 9898, "apex": {"labels": labels, "annotations": annotations}}
    if provider.startswith("gatewayapi"):
        service["gatewayRefs"] = GATEWAYS
    return make_canary(provider=provider, service=service)


async def _reconciled(cluster: InMemoryCluster, canary: Canary, provider: str) -> dict[str, Any]:
    router = router_for(provider, cluster)
    await router.initialize(canary)
    await DeploymentWorkload(cluster).initialize(canary)
    await router.reconcile(canary)
    kind = {**ROUTING, **OTHERS}[provider]
    body = cluster.peek(ObjectRef(kind, NS if kind.namespaced else "", "podinfo"))
    assert body is not None
    return dict(body["metadata"])


@pytest.mark.parametrize("provider", sorted(ROUTING))
async def test_a_label_removed_from_the_canary_leaves_the_routing_object(provider: str) -> None:
    cluster = InMemoryCluster()
    cluster.seed(deployment())
    before = _canary(provider, {"team": "a", "old": "x"}, {"note": "1"})
    meta = await _reconciled(cluster, before, provider)
    assert meta["labels"] == {"team": "a", "old": "x"}
    assert meta["annotations"]["note"] == "1"

    after = _canary(provider, {"team": "b"}, {"other": "2"})
    meta = await _reconciled(cluster, after, provider)
    assert meta["labels"] == {"team": "b"}
    annotations = meta["annotations"]
    assert annotations["other"] == "2"
    if provider.startswith("gatewayapi"):  # merged, as Flagger's Gateway API router does
        assert annotations["note"] == "1"
    else:  # replaced, as Flagger's other routers do
        assert "note" not in annotations


@pytest.mark.parametrize("provider", sorted(OTHERS))
async def test_routers_that_write_no_apex_metadata_write_none(provider: str) -> None:
    cluster = InMemoryCluster()
    cluster.seed(deployment())
    meta = await _reconciled(cluster, _canary(provider, {"team": "a"}, {"note": "1"}), provider)
    assert not meta.get("labels")
    annotations = meta.get("annotations") or {}
    assert ("note" in annotations) == (provider == "kuma"), annotations


async def test_the_virtual_service_keeps_kubectls_annotation() -> None:
    cluster = InMemoryCluster()
    cluster.seed(deployment())
    canary = _canary("istio", {"team": "a"}, {})
    await _reconciled(cluster, canary, "istio")
    kubectl = "kubectl.kubernetes.io/last-applied-configuration"
    ref = ObjectRef(VIRTUAL_SERVICE, NS, "podinfo")
    await cluster.patch(ref, {"metadata": {"annotations": {kubectl: "{}", "stray": "x"}}})
    meta = await _reconciled(cluster, canary, "istio")
    assert meta["annotations"].get(kubectl) == "{}"
    assert "stray" not in meta["annotations"]


async def test_a_users_own_virtual_service_keeps_its_labels() -> None:
    cluster = InMemoryCluster()
    users = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "podinfo", "namespace": NS, "labels": {"owner": "team-x"}},
        "spec": {"hosts": ["podinfo"], "http": [{"route": [{"destination": {"host": "x"}}]}]},
    }
    cluster.seed(deployment(), users)
    meta = await _reconciled(cluster, _canary("istio", {"team": "a"}, {}), "istio")
    assert meta["labels"] == {"owner": "team-x", "team": "a"}
