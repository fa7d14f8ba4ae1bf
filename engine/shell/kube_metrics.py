"""The Kubernetes API slice the in-cluster metric providers use, over the engine's Cluster seam.

``analysis.providers`` declares ``KubeApi`` (get, list, create, delete by resource tuple) so the
keptn and externalmetrics providers can read the cluster without analysis importing traffic; this
adapter implements it with the controller's ``Cluster`` (kubernetes-asyncio in ``run``, the same
client, credentials and RBAC as everything else the controller does). A list the server does not
serve (an external metric nobody provides) reads as empty, which the provider reports as no data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from traffic import Cluster, Kind, NotFound, ObjectRef
from traffic.cluster import register_kind

Resource = tuple[str, str, str, str]


class ClusterKubeApi:
    """``analysis.providers.KubeApi`` over a ``Cluster``."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster

    async def get(self, resource: Resource, namespace: str, name: str) -> Mapping[str, Any] | None:
        return await self._cluster.get(ObjectRef(_kind(resource), namespace, name))

    async def list(
        self, resource: Resource, namespace: str, labels: Mapping[str, str]
    ) -> list[Mapping[str, Any]]:
        try:
            return await self._cluster.list(_kind(resource), namespace, labels=labels or None)
        except NotFound:
            return []

    async def create(self, resource: Resource, body: dict[str, Any]) -> Mapping[str, Any]:
        kind = _kind(resource)
        register_kind(kind)  # the Cluster creates only kinds it knows (idempotent)
        return await self._cluster.create(body)

    async def delete(self, resource: Resource, namespace: str, name: str) -> None:
        await self._cluster.delete(ObjectRef(_kind(resource), namespace, name))


def _kind(resource: Resource) -> Kind:
    group, version, plural, kind = resource
    return Kind(group, version, plural, kind)
