"""The kubernetes router's replica split is what the workload offers: the router decides the
counts and the selector, and never edits a Deployment itself."""

from __future__ import annotations

from collections.abc import Mapping

from traffic_testkit import dep_ref, deployment, make_canary

from config import Canary
from traffic import APEX_LABEL, DeploymentWorkload, Routes, Weights
from traffic._kubernetes_router import KubernetesRouter
from traffic.cluster import DEPLOYMENT, InMemoryCluster, ObjectRef


class RecordingSplit:
    """A ReplicaSplit that records what the router asks and reports fixed pod counts."""

    def __init__(self, primary: int) -> None:
        self.primary = primary
        self.asked: list[tuple[str, object]] = []

    async def label_pods(self, canary: Canary, label: str, value: str) -> None:
        self.asked.append(("label", (label, value)))

    async def primary_replicas(self, canary: Canary) -> int | None:
        return self.primary

    async def scale_canary(self, canary: Canary, replicas: int) -> None:
        self.asked.append(("scale", replicas))

    async def selected_pods(self, canary: Canary, selector: Mapping[str, str]) -> tuple[int, int]:
        return (self.primary, 2) if selector == {APEX_LABEL: "podinfo"} else (self.primary, 0)


async def test_the_router_asks_the_workload_for_the_split() -> None:
    cluster = InMemoryCluster()
    cluster.seed(deployment(replicas=6))
    canary = make_canary()
    await DeploymentWorkload(cluster).initialize(canary)
    split = RecordingSplit(primary=6)
    router = KubernetesRouter(cluster, replica_split=split)
    await router.initialize(canary)
    await router.reconcile(canary)
    before = cluster.peek(dep_ref())
    await router.set_routes(canary, Weights(75, 25))
    # 25 % of traffic next to 6 primary pods: 2 canary pods (round(6*25/75))
    assert split.asked == [
        ("label", (APEX_LABEL, "podinfo")),
        ("label", (APEX_LABEL, "podinfo")),
        ("scale", 2),
    ]
    assert cluster.peek(dep_ref()) == before  # the router itself wrote no Deployment
    routes = await router.get_routes(canary)
    assert routes == Routes(Weights(75, 25), achieved=Weights(75, 25))


async def test_the_deployment_workload_offers_the_split_the_router_used_to_make() -> None:
    cluster = InMemoryCluster()
    cluster.seed(deployment(replicas=4))
    canary = make_canary()
    workload = DeploymentWorkload(cluster)
    await workload.initialize(canary)
    split = workload.replica_split()
    await split.label_pods(canary, APEX_LABEL, "podinfo")
    primary = cluster.peek(ObjectRef(DEPLOYMENT, "test", "podinfo-primary"))
    assert primary is not None
    assert primary["spec"]["template"]["metadata"]["labels"][APEX_LABEL] == "podinfo"
    assert await split.primary_replicas(canary) == 4
    await split.scale_canary(canary, 1)
    target = cluster.peek(dep_ref())
    assert target is not None
    assert target["spec"]["replicas"] == 1
    assert target["metadata"]["annotations"]["canary-engine.io/declared-replicas"] == "4"
    assert await split.selected_pods(canary, {APEX_LABEL: "podinfo"}) == (4, 1)
    assert await split.selected_pods(canary, {"app": "podinfo-primary"}) == (4, 0)
