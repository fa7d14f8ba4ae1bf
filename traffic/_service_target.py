"""``ServiceWorkload``: ``targetRef.kind: Service`` (a Kubernetes Service, not Knative's).

As Flagger's ``service_controller.go``: the target is a Service whose backends someone else
manages (another cluster, an external endpoint...). canary-engine copies it to
``<target>-canary`` (created, then kept equal to the target, labels and annotations too) and
``<target>-primary`` (created once; promotion copies the target's spec to it, and its labels and
annotations filtered by ``-include-label-prefix``), both owned by the Canary, without kubectl's
last-applied annotation and keeping each copy's own ``clusterIP``. The revision is the hash of the
target's spec. There is nothing to scale and nothing to wait for: readiness is always true, and
no ConfigMaps or Secrets are tracked. A mesh or ingress router then moves traffic between the two
copies (the ClusterIP services of the other targets are not generated: these copies are them).

Imports only ``config``, the Cluster seam and the shared object helpers.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from config import Canary
from traffic._deployment import template_hash
from traffic._errors import WorkloadError
from traffic._objects import (
    KUBECTL_ANNOTATION,
    NO_CHANGE,
    diff_or_empty,
    include_by_prefix,
    merge_diff,
    owned_metadata,
    without_none,
)
from traffic._types import Readiness, Revision
from traffic.cluster import SERVICE, Body, Cluster, ObjectRef, ReadBody

#: Spec fields the API server assigns to each Service: never copied between them. (A NodePort or
#: LoadBalancer Service's node ports are allocated per Service too: copying the target's into
#: ``-canary`` / ``-primary`` would be refused as already allocated.)
_ASSIGNED: Final = ("clusterIP", "clusterIPs", "healthCheckNodePort")


class ServiceWorkload:
    """The ``Workload`` for ``targetRef.kind: Service`` (see the module docs)."""

    def __init__(self, cluster: Cluster, *, include_label_prefixes: Iterable[str] = ()) -> None:
        self._cluster = cluster
        self._include = tuple(include_label_prefixes)

    async def revision(self, canary: Canary) -> Revision:
        target = await self._target(canary)
        return Revision(spec_hash=template_hash(_revision_spec(target)))

    async def initialize(self, canary: Canary) -> None:
        target = await self._target(canary)
        ns, name = canary.metadata.namespace, canary.spec.target_ref.name
        canary_ref = ObjectRef(SERVICE, ns, f"{name}-canary")
        existing = await self._cluster.get(canary_ref)
        if existing is None:
            await self._create(canary, canary_ref, target)
        else:
            # Flagger's reconcileCanaryService rebuilds the copy from the target on every
            # Initialize: its spec, and its labels and annotations (kubectl's last-applied left
            # out), so a label the target gains or loses reaches the -canary copy too.
            await self._sync(canary_ref, existing, target, metadata=_copied_metadata(target))
        primary_ref = ObjectRef(SERVICE, ns, f"{name}-primary")
        if await self._cluster.get(primary_ref) is None:
            await self._create(canary, primary_ref, target)

    async def promote(self, canary: Canary) -> None:
        target = await self._target(canary)
        ref = ObjectRef(
            SERVICE, canary.metadata.namespace, f"{canary.spec.target_ref.name}-primary"
        )
        primary = await self._cluster.get(ref)
        if primary is None:
            raise WorkloadError(
                f"service {ref.name}.{ref.namespace} not found; initialize the canary first"
            )
        meta = target.get("metadata") or {}
        await self._sync(
            ref,
            primary,
            target,
            metadata=(
                include_by_prefix(meta.get("labels"), self._include),
                include_by_prefix(meta.get("annotations"), self._include),
            ),
        )

    async def primary_runs(self, canary: Canary, revision: Revision) -> bool | None:
        return None  # the copy keeps what the API server assigned it: not hashed alike

    async def readiness(self, canary: Canary, *, primary: bool, now: datetime) -> Readiness:
        return Readiness(ready=True)  # a Service has no rollout to wait for

    async def scale_to_zero(self, canary: Canary) -> None:
        return None

    async def scale_from_zero(self, canary: Canary) -> None:
        return None

    async def finalize(self, canary: Canary) -> None:
        return None

    # ------------------------------------------------------------------ internals

    async def _target(self, canary: Canary) -> ReadBody:
        ref = ObjectRef(SERVICE, canary.metadata.namespace, canary.spec.target_ref.name)
        body = await self._cluster.get(ref)
        if body is None:
            raise WorkloadError(f"service {ref.name}.{ref.namespace} not found")
        return body

    async def _create(self, canary: Canary, ref: ObjectRef, target: Mapping[str, Any]) -> None:
        labels, annotations = _copied_metadata(target)
        await self._cluster.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": owned_metadata(
                    canary,
                    ref.name,
                    ref.namespace,
                    labels=labels,
                    annotations=annotations,
                ),
                "spec": _portable_spec(target),
            }
        )

    async def _sync(
        self,
        ref: ObjectRef,
        existing: Mapping[str, Any],
        target: Mapping[str, Any],
        *,
        metadata: tuple[Mapping[str, str], Mapping[str, str]],
    ) -> None:
        """Make ``existing`` the target's spec (keeping what the API server assigned it) with
        ``metadata`` (labels, annotations) as its own."""
        have = existing.get("spec") or {}
        wanted = _with_node_ports_of(have, _portable_spec(target))
        # Only the target's fields: those the API server defaults on each copy stay as they are.
        current = {k: have[k] for k in wanted if k in have}
        patch: Body = {}
        spec_patch = merge_diff(current, wanted)
        if spec_patch is not NO_CHANGE:
            patch["spec"] = spec_patch
        meta = existing.get("metadata") or {}
        labels, annotations = metadata
        meta_patch = without_none(
            {
                "labels": diff_or_empty(meta.get("labels"), labels) or None,
                "annotations": diff_or_empty(meta.get("annotations"), annotations) or None,
            }
        )
        if meta_patch:
            patch["metadata"] = meta_patch
        if patch:
            await self._cluster.patch(ref, patch)


def _copied_metadata(target: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """The target's labels and annotations as Flagger's buildService copies them: all but
    kubectl's last-applied configuration."""
    meta = target.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    return dict(meta.get("labels") or {}), {
        k: v for k, v in annotations.items() if k != KUBECTL_ANNOTATION
    }


def _portable_spec(service: Mapping[str, Any]) -> Body:
    """The Service spec without what the API server assigns to each Service."""
    spec: Body = copy.deepcopy(dict(service.get("spec") or {}))
    for key in _ASSIGNED:
        spec.pop(key, None)
    ports = spec.get("ports")
    if isinstance(ports, list):
        spec["ports"] = [
            {k: v for k, v in port.items() if k != "nodePort"} if isinstance(port, dict) else port
            for port in ports
        ]
    return spec


def _revision_spec(service: Mapping[str, Any]) -> Body:
    """What the revision hash covers: the spec without its cluster IPs. (Node ports stay in it:
    the hash then equals the one recorded before node ports were left out of the copies, so an
    upgrade does not take an unchanged Service for a new revision.)"""
    spec: Body = copy.deepcopy(dict(service.get("spec") or {}))
    for key in ("clusterIP", "clusterIPs"):
        spec.pop(key, None)
    return spec


def _port_key(port: Mapping[str, Any]) -> object:
    return port.get("name") or (port.get("port"), port.get("protocol", "TCP"))


def _with_node_ports_of(have: Mapping[str, Any], wanted: Body) -> Body:
    """``wanted`` with the node ports the copy already holds, port by port: they are the copy's
    own, so a sync neither drops them (a re-allocation) nor sees a change every tick."""
    allocated = {
        _port_key(p): p["nodePort"]
        for p in have.get("ports") or ()
        if isinstance(p, dict) and p.get("nodePort")
    }
    ports = wanted.get("ports")
    if allocated and isinstance(ports, list):
        wanted["ports"] = [
            {**p, "nodePort": allocated[_port_key(p)]}
            if isinstance(p, dict) and _port_key(p) in allocated
            else p
            for p in ports
        ]
    return wanted
