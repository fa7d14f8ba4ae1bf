"""``TargetWorkload``: the ``Workload`` for whatever ``targetRef`` names.

The engine is given one Workload; each Canary's target picks the implementation: ``Deployment``
-> ``DeploymentWorkload``, ``DaemonSet`` -> ``DaemonSetWorkload``, ``Service`` (core ``v1``) ->
``ServiceWorkload``, a Knative ``Service`` -> ``KnativeWorkload``. Other kinds are refused by
the schema (``TargetRef.kind`` in ``config``) and here with a clear error.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from config import Canary, NotSupportedError
from traffic._daemonset import DaemonSetWorkload
from traffic._deployment import DeploymentWorkload
from traffic._knative import KnativeWorkload
from traffic._objects import DEFAULT_SELECTOR_LABELS
from traffic._replica_split import DeploymentReplicaSplit
from traffic._service_target import ServiceWorkload
from traffic._types import Readiness, Revision, Workload
from traffic.cluster import Cluster


class TargetWorkload:
    """Dispatches each call to the workload of the Canary's target kind."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        selector_labels: Iterable[str] = DEFAULT_SELECTOR_LABELS,
        include_label_prefixes: Iterable[str] = (),
        config_tracking: bool = True,
    ) -> None:
        labels, prefixes = tuple(selector_labels), tuple(include_label_prefixes)
        self._deployments = DeploymentWorkload(
            cluster,
            selector_labels=labels,
            include_label_prefixes=prefixes,
            config_tracking=config_tracking,
        )
        self._by_kind: dict[str, Workload] = {
            "Deployment": self._deployments,
            "DaemonSet": DaemonSetWorkload(
                cluster,
                selector_labels=labels,
                include_label_prefixes=prefixes,
                config_tracking=config_tracking,
            ),
            "Service": ServiceWorkload(cluster, include_label_prefixes=prefixes),
            "Knative Service": KnativeWorkload(cluster),
        }

    def for_canary(self, canary: Canary) -> Workload:
        kind: str = canary.spec.target_ref.kind
        if canary.spec.target_ref.api_version.startswith("serving.knative.dev/"):
            kind = "Knative Service"
        found = self._by_kind.get(kind)
        if found is None:
            raise NotSupportedError(
                f"canary {canary.dotted}: {kind} targets are not built yet in canary-engine; "
                f"built: {', '.join(self._by_kind)}"
            )
        return found

    def replica_split(self) -> DeploymentReplicaSplit:
        return self._deployments.replica_split()

    async def revision(self, canary: Canary) -> Revision:
        return await self.for_canary(canary).revision(canary)

    async def initialize(self, canary: Canary) -> None:
        await self.for_canary(canary).initialize(canary)

    async def readiness(self, canary: Canary, *, primary: bool, now: datetime) -> Readiness:
        return await self.for_canary(canary).readiness(canary, primary=primary, now=now)

    async def promote(self, canary: Canary) -> None:
        await self.for_canary(canary).promote(canary)

    async def primary_runs(self, canary: Canary, revision: Revision) -> bool | None:
        return await self.for_canary(canary).primary_runs(canary, revision)

    async def scale_to_zero(self, canary: Canary) -> None:
        await self.for_canary(canary).scale_to_zero(canary)

    async def scale_from_zero(self, canary: Canary) -> None:
        await self.for_canary(canary).scale_from_zero(canary)

    async def finalize(self, canary: Canary) -> None:
        await self.for_canary(canary).finalize(canary)


def _conforms(cluster: Cluster) -> Workload:
    return TargetWorkload(cluster)
