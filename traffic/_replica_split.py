"""``DeploymentReplicaSplit``: what a Deployment workload offers a router that splits by pod counts.

The mesh-free ``kubernetes`` provider (our Q16) carries a traffic split in replica counts:
kube-proxy spreads connections evenly over the endpoints the apex Service selects. The router
decides the counts and the selector; the workload owns its pods, so it is the workload that labels
the pod templates for the shared apex selector, scales the canary and counts the pods a selector
picks.
``DeploymentWorkload.replica_split()`` hands this out; a target kind that cannot scale (a DaemonSet)
offers none, and its Canaries stay blue/green.

Imports only ``config``, the Cluster seam and the shared object helpers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from config import Canary
from traffic._objects import (
    DECLARED_REPLICAS_ANNOTATION,
    get_target,
    primary_ref,
    replicas_of,
    target_ref,
    template_labels,
)
from traffic.cluster import Body, Cluster


class DeploymentReplicaSplit:
    """The replica-split operations on the target Deployment and its ``-primary`` copy."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster

    async def label_pods(self, canary: Canary, label: str, value: str) -> None:
        """Add ``label: value`` to both pod templates where missing (the target must exist; the
        primary may not yet: it inherits the label when first copied)."""
        await get_target(self._cluster, canary)
        for ref in (target_ref(canary), primary_ref(canary)):
            body = await self._cluster.get(ref)
            if body is not None and template_labels(body).get(label) != value:
                await self._cluster.patch(
                    ref, {"spec": {"template": {"metadata": {"labels": {label: value}}}}}
                )

    async def primary_replicas(self, canary: Canary) -> int | None:
        """The primary's ``spec.replicas``, or None when the primary does not exist."""
        primary = await self._cluster.get(primary_ref(canary))
        return None if primary is None else replicas_of(primary)

    async def scale_canary(self, canary: Canary, replicas: int) -> None:
        """Give the target ``replicas``, remembering before the first split what it ran, so that
        promotion gives the primary the intended capacity rather than the split's."""
        target = await get_target(self._cluster, canary)
        current = (target.get("spec") or {}).get("replicas")
        if current == replicas:
            return
        patch: Body = {"spec": {"replicas": replicas}}
        annotations = (target.get("metadata") or {}).get("annotations") or {}
        if DECLARED_REPLICAS_ANNOTATION not in annotations:
            declared = 1 if current is None else int(current)
            patch["metadata"] = {"annotations": {DECLARED_REPLICAS_ANNOTATION: str(declared)}}
        await self._cluster.patch(target_ref(canary), patch)

    async def selected_pods(self, canary: Canary, selector: Mapping[str, str]) -> tuple[int, int]:
        """(primary, canary) pod counts a Service with ``selector`` sends traffic to."""
        counts = []
        for ref in (primary_ref(canary), target_ref(canary)):
            body = await self._cluster.get(ref)
            selected = bool(selector) and body is not None and _selects(selector, body)
            counts.append(replicas_of(body) if selected and body is not None else 0)
        return counts[0], counts[1]


def _selects(selector: Mapping[str, str], deployment: Mapping[str, Any]) -> bool:
    labels = template_labels(deployment)
    return all(labels.get(k) == v for k, v in selector.items())
