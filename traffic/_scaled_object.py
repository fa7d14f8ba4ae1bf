"""KEDA ``ScaledObject`` as ``autoscalerRef``: the primary's copy kept in step, the target's paused.

As Flagger's ``scaled_object_reconciler.go`` (flagger-behaviour §2.13):

* ``<so>-primary`` is created from the target's ScaledObject (``keda.sh/v1alpha1``) with
  ``scaleTargetRef`` pointed at ``<target>-primary``; polling/cooldown intervals, min/max/idle
  replica counts, ``advanced`` (its ``horizontalPodAutoscalerConfig.name`` suffixed ``-primary``),
  ``fallback`` and the triggers are copied. Each trigger's ``query`` is rewritten for the primary:
  ``<target>-canary`` and ``<target>`` become ``<target>-primary`` (done in one pass, so
  ``<target>-canary`` never turns into ``<target>-primary-canary``), unless
  ``autoscalerRef.primaryScalerQueries`` gives the trigger's query by name. Labels are copied
  (without Flux's), and the copy is owned by the Canary.
* Created at initialisation; brought back in step on promotion (``init=False``).
* While the target is scaled to zero its ScaledObject is paused with the annotation
  ``autoscaling.keda.sh/paused-replicas: "0"`` (else KEDA would scale it back up); scaling from
  zero (analysis) and finalising remove it. Scaling from zero starts at ``minReplicaCount`` when
  it is above 1.

Imports only ``config``, the Cluster seam and the shared object helpers.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any, Final

from config import Canary
from traffic._errors import WorkloadError
from traffic._objects import (
    NO_CHANGE,
    diff_or_empty,
    filter_metadata,
    include_by_prefix,
    merge_diff,
    owned_metadata,
    primary_ref,
    without_none,
)
from traffic.cluster import Body, Cluster, Kind, ObjectRef, ReadBody, register_kind

SCALED_OBJECT: Final = Kind("keda.sh", "v1alpha1", "scaledobjects", "ScaledObject")
PAUSED_REPLICAS_ANNOTATION: Final = "autoscaling.keda.sh/paused-replicas"
_COPIED: Final = (
    "pollingInterval",
    "cooldownPeriod",
    "minReplicaCount",
    "maxReplicaCount",
    "idleReplicaCount",
    "fallback",
)

register_kind(SCALED_OBJECT)


class ScaledObjectScaler:
    """The KEDA side of a Deployment workload with ``autoscalerRef.kind: ScaledObject``."""

    def __init__(self, cluster: Cluster, *, include_label_prefixes: tuple[str, ...]) -> None:
        self._cluster = cluster
        self._include = include_label_prefixes

    def ref(self, canary: Canary) -> ObjectRef:
        autoscaler = canary.spec.autoscaler_ref
        assert autoscaler is not None
        return ObjectRef(SCALED_OBJECT, canary.metadata.namespace, autoscaler.name)

    async def target(self, canary: Canary) -> ReadBody:
        ref = self.ref(canary)
        body = await self._cluster.get(ref)
        if body is None:
            raise WorkloadError(f"Keda ScaledObject {ref.name}.{ref.namespace} not found")
        return body

    async def sync_primary(self, canary: Canary, *, init: bool) -> None:
        """Create ``<so>-primary`` when missing; with ``init=False`` also bring it in step."""
        source = await self.target(canary)
        ref = self.ref(canary)
        primary = ObjectRef(SCALED_OBJECT, ref.namespace, f"{ref.name}-primary")
        desired = primary_spec(canary, source.get("spec") or {})
        existing = await self._cluster.get(primary)
        source_meta = source.get("metadata") or {}
        labels = source_meta.get("labels")
        if existing is None:
            # The target's annotations too, as Flagger's makeObjectMetaSo copies them (KEDA's
            # scaledobject.keda.sh/transfer-hpa-ownership must reach the primary's), but never
            # the pause this controller puts on the target: the primary would not scale.
            annotations = {
                k: v
                for k, v in filter_metadata(source_meta.get("annotations")).items()
                if k != PAUSED_REPLICAS_ANNOTATION
            }
            await self._cluster.create(
                {
                    "apiVersion": SCALED_OBJECT.api_version,
                    "kind": SCALED_OBJECT.kind,
                    "metadata": owned_metadata(
                        canary,
                        primary.name,
                        primary.namespace,
                        labels=filter_metadata(labels),
                        annotations=annotations,
                    ),
                    "spec": desired,
                }
            )
            return
        if init:
            return
        patch: Body = {}
        spec_patch = merge_diff(existing.get("spec") or {}, desired)
        if spec_patch is not NO_CHANGE:
            patch["spec"] = spec_patch
        label_patch = diff_or_empty(
            (existing.get("metadata") or {}).get("labels"), include_by_prefix(labels, self._include)
        )
        if label_patch:
            patch["metadata"] = {"labels": label_patch}
        if patch:
            await self._cluster.patch(primary, patch)

    async def pause(self, canary: Canary) -> None:
        body = await self.target(canary)
        annotations = (body.get("metadata") or {}).get("annotations") or {}
        if annotations.get(PAUSED_REPLICAS_ANNOTATION) != "0":
            await self._cluster.patch(
                self.ref(canary), {"metadata": {"annotations": {PAUSED_REPLICAS_ANNOTATION: "0"}}}
            )

    async def resume(self, canary: Canary) -> None:
        body = await self.target(canary)
        if PAUSED_REPLICAS_ANNOTATION in ((body.get("metadata") or {}).get("annotations") or {}):
            await self._cluster.patch(
                self.ref(canary), {"metadata": {"annotations": {PAUSED_REPLICAS_ANNOTATION: None}}}
            )

    async def min_replicas(self, canary: Canary) -> int | None:
        found = ((await self.target(canary)).get("spec") or {}).get("minReplicaCount")
        return None if found is None else int(found)


def primary_spec(canary: Canary, source: Mapping[str, Any]) -> Body:
    """The ``<so>-primary`` spec for the target ScaledObject's ``source`` spec."""
    autoscaler = canary.spec.autoscaler_ref
    assert autoscaler is not None
    target = canary.spec.target_ref.name
    scale_target = source.get("scaleTargetRef") or {}
    spec: Body = {
        "scaleTargetRef": without_none(
            {
                "name": primary_ref(canary).name,
                "kind": scale_target.get("kind"),
                "apiVersion": scale_target.get("apiVersion"),
                "envSourceContainerName": scale_target.get("envSourceContainerName"),
            }
        ),
        **{key: copy.deepcopy(source[key]) for key in _COPIED if key in source},
    }
    # autoscalerRef.primaryScalerReplicas overrides the copied bounds, as for an HPA (Flagger's
    # reconcilePrimaryScaler).
    bounds = autoscaler.primary_scaler_replicas
    if bounds is not None:
        if bounds.min_replicas is not None:
            spec["minReplicaCount"] = bounds.min_replicas
        if bounds.max_replicas is not None:
            spec["maxReplicaCount"] = bounds.max_replicas
    advanced = copy.deepcopy(source.get("advanced"))
    if isinstance(advanced, dict):
        hpa = advanced.get("horizontalPodAutoscalerConfig")
        if isinstance(hpa, dict) and hpa.get("name"):
            hpa["name"] = f"{hpa['name']}-primary"
        spec["advanced"] = advanced
    queries = autoscaler.primary_scaler_queries or {}
    triggers = []
    for trigger in source.get("triggers") or ():
        trigger = copy.deepcopy(trigger)
        metadata = trigger.get("metadata")
        if isinstance(metadata, dict) and "query" in metadata:
            name = trigger.get("name")
            metadata["query"] = (
                queries[name] if name in queries else primary_query(str(metadata["query"]), target)
            )
        triggers.append(trigger)
    spec["triggers"] = triggers
    return spec


def primary_query(query: str, target: str) -> str:
    """``<target>-canary`` and ``<target>`` in ``query`` as ``<target>-primary`` (one pass)."""
    return re.sub(f"{re.escape(target)}(?:-canary)?", f"{target}-primary", query)
