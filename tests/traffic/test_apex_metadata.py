"""The routing objects' metadata follows the Canary's ``service.apex`` as Flagger's routers make
it: on every reconcile they replace the VirtualService's labels and annotations
(``vtClone.ObjectMeta.Labels = newMetadata.Labels``, keeping only kubectl's last-applied and the
original configuration), and the HTTPRoute's labels (its annotations merged, "preserve the
existing annotations added by other controllers"). A label removed from the Canary leaves the
object; a user's own object taken over keeps its labels.
"""

from __future__ import annotations

from typing import Any

import pytest
from traffic_testkit import NS, deployment, make_canary

from config import Canary
from traffic import DeploymentWorkload, router_for
from traffic.cluster import HTTP_ROUTE, VIRTUAL_SERVICE, InMemoryCluster, Kind, ObjectRef

GATEWAYS = [{"name": "gw", "namespace": "istio-ingress"}]
ROUTING: dict[str, Kind] = {"istio": VIRTUAL_SERVICE, "gatewayapi:v1": HTTP_ROUTE}


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
    body = cluster.peek(ObjectRef(ROUTING[provider], NS, "podinfo"))
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
    if provider == "istio":  # replaced, as Flagger's istio router does
        assert "note" not in annotations
    else:  # merged, as Flagger's Gateway API router does
        assert annotations["note"] == "1"


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
