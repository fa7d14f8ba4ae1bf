"""``DaemonSetWorkload``: ``targetRef.kind: DaemonSet``.

A DaemonSet runs one pod per node, so there is no replica count to split traffic with: with the
``kubernetes`` provider its Canaries are blue/green (``analysis.iterations``; that router refuses
``stepWeight``), while a mesh or an ingress weighs its traffic as any other target's. The life
cycle is the Deployment's (``DeploymentWorkload``: a ``<target>-primary`` copy with the primary
selector label, tracked ConfigMaps/Secrets, promotion copying the pod template) with Flagger's
DaemonSet differences (``daemonset_controller.go``):

* scaling to zero adds the node selector ``flagger.app/scale-to-zero: "true"`` to the target's pod
  template, so no node runs it; scaling from zero (analysis) and finalising remove it. That key is
  left out of the revision hash and never copied to the primary;
* ``minReadySeconds``, ``revisionHistoryLimit`` and ``updateStrategy`` are copied, no replicas;
  a target whose ``updateStrategy`` is not ``RollingUpdate`` (``OnDelete``) gets no primary, as
  in Flagger: its promotions would never reach the pods; one switched to it once the primary
  exists is promoted without that strategy (the primary keeps rolling its updates out);
* readiness follows ``isDaemonSetReady``: the controller has observed the current generation, every
  desired node runs an updated pod, and at least the ready threshold of them are available. A
  DaemonSet has no Progressing condition, so the progress deadline counts from the Canary's own
  ``status.lastTransitionTime``: past it, not ready is final (``exceeded its
  progressDeadlineSeconds``) and the run rolls back. (Flagger reads an unset time as long past; a
  Canary without one here keeps waiting, as nothing says how long it has been.)

Imports only ``config``, the Cluster seam and the Deployment workload it specialises.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from config import Canary
from traffic._deployment import (
    DeploymentWorkload,
    _Config,
    deadline_passed,
    ready_threshold_count,
)
from traffic._errors import WorkloadError
from traffic._objects import get_target, primary_ref, target_ref
from traffic._types import Readiness, Revision
from traffic.cluster import Body

SCALE_TO_ZERO_SELECTOR: Final = "flagger.app/scale-to-zero"


class DaemonSetWorkload(DeploymentWorkload):
    """The ``Workload`` for ``targetRef.kind: DaemonSet`` (see the module docs)."""

    promoted_spec_fields = ("minReadySeconds", "revisionHistoryLimit", "updateStrategy")
    has_replicas = False
    kind_word = "daemonset"

    def _body_readiness(
        self,
        canary: Canary,
        body: Mapping[str, Any],
        *,
        primary: bool,
        threshold: int,
        now: datetime,
    ) -> Readiness:
        reason = daemonset_not_ready(body, threshold)
        if reason is None:
            return Readiness(ready=True)
        deadline = canary.spec.progress_deadline_seconds
        since = (canary.status or {}).get("lastTransitionTime")
        # (Before the DaemonSet controller has seen the new generation, Flagger keeps waiting.)
        expired = reason != _GENERATION_PENDING and deadline_passed(since, deadline, now)
        if expired:
            reason = f"exceeded its progressDeadlineSeconds: {deadline}"
        retriable = not expired
        return Readiness(
            ready=False,
            retriable=retriable,
            message=f"{self._not_ready_prefix(canary, primary=primary, retriable=retriable)}: "
            f"{reason}",
        )

    def _not_ready_prefix(self, canary: Canary, *, primary: bool, retriable: bool) -> str:
        """Flagger's DaemonSet readiness messages (``pkg/canary/daemonset_ready.go``, which words
        them unlike the Deployment's, typo included): ``primary daemonset <target>-primary.<ns>
        not ready`` and ``canary damonset <target>.<ns> not ready with retryable <true|false>``."""
        if primary:
            ref = primary_ref(canary)
            return f"primary daemonset {ref.name}.{ref.namespace} not ready"
        ref = target_ref(canary)
        return (
            f"canary damonset {ref.name}.{ref.namespace} not ready with retryable "
            f"{'true' if retriable else 'false'}"
        )

    async def initialize(self, canary: Canary) -> None:
        # As Flagger's createPrimaryDaemonSet: a promotion rewrites the primary's pod template,
        # which an OnDelete DaemonSet would never roll out (the old version would go on serving
        # under a Succeeded Canary).
        if await self._cluster.get(primary_ref(canary)) is None:
            target = await get_target(self._cluster, canary)
            strategy = (target.get("spec") or {}).get("updateStrategy")
            if not _rolls_out(strategy):
                ref = target_ref(canary)
                raise WorkloadError(
                    f"daemonset {ref.name}.{ref.namespace} must have RollingUpdate strategy but "
                    f"have {(strategy or {}).get('type')}"
                )
        await super().initialize(canary)

    def _promoted_fields(
        self, target_spec: Mapping[str, Any], primary_spec: Mapping[str, Any], fields: list[str]
    ) -> Body:
        # A target switched to OnDelete after its primary was made: the primary keeps its rolling
        # update, or the promoted template would never reach its pods.
        desired = super()._promoted_fields(target_spec, primary_spec, fields)
        if not _rolls_out(desired.get("updateStrategy")):
            kept = primary_spec.get("updateStrategy")
            if kept is None:  # unset on the primary: the default rolls out
                desired.pop("updateStrategy", None)
            else:
                desired["updateStrategy"] = kept if _rolls_out(kept) else {"type": "RollingUpdate"}
        return desired

    async def scale_to_zero(self, canary: Canary) -> None:
        target = await get_target(self._cluster, canary)
        if _node_selector(target).get(SCALE_TO_ZERO_SELECTOR) != "true":
            await self._cluster.patch(target_ref(canary), _selector_patch("true"))

    async def scale_from_zero(self, canary: Canary) -> None:
        target = await get_target(self._cluster, canary)
        if SCALE_TO_ZERO_SELECTOR in _node_selector(target):
            await self._cluster.patch(target_ref(canary), _selector_patch(None))

    async def finalize(self, canary: Canary) -> None:
        await self.scale_from_zero(canary)

    def _revision_of(self, target: Mapping[str, Any], configs: Mapping[str, _Config]) -> Revision:
        return super()._revision_of(without_scale_to_zero(target), configs)

    def _primary_template(
        self,
        target: Mapping[str, Any],
        key: str,
        value: str,
        configs: Mapping[str, _Config],
        revision: Revision,
    ) -> Body:
        return super()._primary_template(
            without_scale_to_zero(target), key, value, configs, revision
        )


def _rolls_out(strategy: Any) -> bool:
    """Whether a DaemonSet ``updateStrategy`` rolls a new template out (RollingUpdate, the
    default when unset), not only on pod deletion (OnDelete)."""
    kind = strategy.get("type") if isinstance(strategy, Mapping) else None
    return kind in (None, "", "RollingUpdate")


#: Flagger's wording ("less then"), as its isDaemonSetReady returns it.
_GENERATION_PENDING: Final = (
    "waiting for rollout to finish: observed daemonset generation less then desired generation"
)


def daemonset_not_ready(body: Mapping[str, Any], threshold: int) -> str | None:
    """Flagger's ``isDaemonSetReady`` reason, or None when ready (before the deadline rule)."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    if int(meta.get("generation", 0)) > int(status.get("observedGeneration", 0)):
        return _GENERATION_PENDING
    desired = int(status.get("desiredNumberScheduled", 0))
    updated = int(status.get("updatedNumberScheduled", 0))
    available = int(status.get("numberAvailable", 0))
    wanted = ready_threshold_count(desired, threshold)
    if updated < desired:
        return (
            f"waiting for rollout to finish: {updated} out of {desired} new pods have been updated"
        )
    if available < wanted:
        return (
            f"waiting for rollout to finish: {available} of {wanted} (readyThreshold "
            f"{threshold}%) updated pods are available"
        )
    return None


def without_scale_to_zero(target: Mapping[str, Any]) -> Body:
    """``target`` without canary-engine's scale-to-zero node selector (for hashing and copying)."""
    body: Body = copy.deepcopy(dict(target))
    pod_spec = ((body.get("spec") or {}).get("template") or {}).get("spec")
    if isinstance(pod_spec, dict):
        selector = pod_spec.get("nodeSelector")
        if isinstance(selector, dict):
            selector.pop(SCALE_TO_ZERO_SELECTOR, None)
            if not selector:
                pod_spec.pop("nodeSelector")
    return body


def _node_selector(target: Mapping[str, Any]) -> dict[str, str]:
    pod_spec = ((target.get("spec") or {}).get("template") or {}).get("spec") or {}
    return dict(pod_spec.get("nodeSelector") or {})


def _selector_patch(value: str | None) -> Body:
    return {"spec": {"template": {"spec": {"nodeSelector": {SCALE_TO_ZERO_SELECTOR: value}}}}}
