"""KubernetesRouter: traffic weights without a mesh (provider ``kubernetes``, our change Q16).

Flagger's kubernetes provider cannot weigh traffic at all (blue/green only). Here the apex
Service ``<svc>`` does the switching with its selector, and the split is carried by replicas:

* canary weight 0   -> apex selects ``{<label>: <value>-primary}`` (primary pods only);
* canary weight 100 -> apex selects ``{<label>: <value>}`` (canary pods only); this is also how
  blue/green (``iterations``) switches;
* 0 < w < 100       -> apex selects ``{canary-engine.io/apex: <svc>}``, a pod label that
  ``initialize`` adds to the target's pod template (and that the primary inherits when the
  template is copied), so both sets of pods receive traffic in proportion to their counts. With
  ``P`` = the primary's ``spec.replicas`` (never changed here: the router never reduces primary
  capacity) the canary gets ``c = clamp(round(P*w/(100-w)), 1, P)`` replicas.

Granularity: kube-proxy spreads connections evenly over ready endpoints, so the achievable
canary shares are ``c/(P+c)`` for ``c`` in ``1..P``. The smallest non-zero weight is
``1/(P+1)`` (with 2 primary replicas, 33%), steps are coarse for small ``P``, and because the
canary never runs more pods than the primary, above 50% only 100 is exact. The weights asked
for are stored in the annotation ``canary-engine.io/weights`` on the apex Service (so stepping
survives a controller restart with all state in the cluster); ``get_routes`` returns them as
``Routes.weights`` and the split really achieved (from the selector and both Deployments'
``spec.replicas`` and pod labels) as ``Routes.achieved``. Mirroring and header matches are
impossible without a proxy and are ignored / rejected at validation.

With an ``autoscalerRef`` the target's HPA may override the canary replicas set here (its
``minReplicas`` wins); ``achieved`` then reports the split that is really running.

Before shrinking the target for a split, the router records the target's replica count in the
``canary-engine.io/declared-replicas`` annotation, so promotion gives the primary the intended
capacity rather than the split's.

The router never edits a Deployment itself: labelling the pod templates, scaling the canary and
counting the pods a selector picks are what the workload offers (``ReplicaSplit``,
``DeploymentWorkload.replica_split()``); the router decides the counts and the selector.

Imports only ``config``, the Cluster seam and the shared service/object helpers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from config import TOTAL_WEIGHT, Canary, NotSupportedError
from traffic._errors import RoutingError
from traffic._objects import (
    APEX_LABEL,
    DEFAULT_SELECTOR_LABELS,
    get_target,
    primary_ref,
    selector_label_of,
    target_ref,
)
from traffic._replica_split import DeploymentReplicaSplit
from traffic._services import ClusterIPServices
from traffic._types import ReplicaSplit, Routes, Weights
from traffic.cluster import Cluster

WEIGHTS_ANNOTATION: Final = "canary-engine.io/weights"
SERVICE_TARGET_MESSAGE: Final = (
    "a Service target needs a router that routes between <svc>-primary and <svc>-canary "
    "(istio, gatewayapi, linkerd, ...): the kubernetes provider has no pods to select"
)
#: One pod per node: no replica count to split with, so only the selector switch (Flagger's
#: kubernetes provider is blue/green for every target; a mesh or an ingress weighs a DaemonSet).
DAEMONSET_SPLIT_MESSAGE: Final = (
    "a DaemonSet target has no replicas to split traffic with: with the kubernetes provider it is "
    "blue/green only, as in Flagger. Set iterations instead of stepWeight / stepWeights, or use "
    "a router that weighs traffic (istio, linkerd, nginx, gatewayapi, ...)"
)


def daemonset_split_refused(canary: Canary) -> bool:
    """A DaemonSet Canary stepping weights, which this router cannot split."""
    spec = canary.spec
    return spec.target_ref.kind == "DaemonSet" and spec.effective_analysis.iterations is None


def canary_replicas(primary_replicas: int, canary_weight: int) -> int:
    """Canary replicas for a split: ``clamp(round(P*w/(100-w)), 1, P)``; ``P`` at 100; 0 at 0.

    Rounds half up, in integers, so the result never depends on float representation.
    """
    if not 0 <= canary_weight <= TOTAL_WEIGHT:
        raise ValueError(f"canary weight must be 0..{TOTAL_WEIGHT}, got {canary_weight}")
    if canary_weight == 0:
        return 0
    if canary_weight == TOTAL_WEIGHT:
        return primary_replicas
    rest = TOTAL_WEIGHT - canary_weight
    rounded = (2 * primary_replicas * canary_weight + rest) // (2 * rest)
    return max(1, min(rounded, primary_replicas))


def achieved_weights(primary_pods: int, canary_pods: int) -> Weights:
    """The split kube-proxy gives ``primary_pods`` and ``canary_pods`` endpoints (half up)."""
    total = primary_pods + canary_pods
    if total <= 0:
        raise ValueError("no pods selected")
    canary = (2 * TOTAL_WEIGHT * canary_pods + total) // (2 * total)
    return Weights(TOTAL_WEIGHT - canary, canary)


def encode_weights(weights: Weights) -> str:
    return json.dumps({"primary": weights.primary, "canary": weights.canary}, separators=(",", ":"))


class KubernetesRouter:
    """Router for provider ``kubernetes``: apex selector + replica split (see module docs)."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        selector_labels: Iterable[str] = DEFAULT_SELECTOR_LABELS,
        replica_split: ReplicaSplit | None = None,
    ) -> None:
        self._cluster = cluster
        self._selector_labels = tuple(selector_labels)
        self._services = ClusterIPServices(cluster, selector_labels=self._selector_labels)
        self._split: ReplicaSplit = replica_split or DeploymentReplicaSplit(cluster)

    async def initialize(self, canary: Canary) -> None:
        """Services ``-canary``/``-primary``, and the apex pod label on the pod templates.

        NB: call before the workload's ``initialize`` so the primary inherits the label when it
        is first copied; a primary created without it (e.g. by Flagger) gets it patched in once,
        which rolls the primary's pods one time.
        """
        if canary.spec.target_ref.kind == "Service":
            raise NotSupportedError(SERVICE_TARGET_MESSAGE)
        if daemonset_split_refused(canary):  # spec.provider unset: the loader could not know
            raise NotSupportedError(DAEMONSET_SPLIT_MESSAGE)
        await self._services.initialize(canary)
        if canary.spec.target_ref.kind == "Deployment":  # only a Deployment splits by replicas
            await self._split.label_pods(canary, APEX_LABEL, canary.spec.service_name)

    async def reconcile(self, canary: Canary) -> None:
        """Create or adopt the apex Service with the selector for the stored weights."""
        requested = Weights.all_primary()
        apex = await self._services.apex(canary)
        if apex is not None:
            requested = self._stored(canary, apex) or requested
        target = await get_target(self._cluster, canary)
        key, value = selector_label_of(target, self._selector_labels)
        await self._services.reconcile_apex(
            canary,
            selector=self._selector_for(canary, requested, key, value),
            annotations={WEIGHTS_ANNOTATION: encode_weights(requested)},
        )

    async def set_routes(self, canary: Canary, weights: Weights) -> None:
        """Scale the canary for the split (never the primary), then switch the apex selector.

        Raises RoutingError when the primary is missing, or has 0 replicas for a split.
        """
        target = await get_target(self._cluster, canary)
        key, value = selector_label_of(target, self._selector_labels)
        primaries = await self._split.primary_replicas(canary)
        ref = primary_ref(canary)
        if primaries is None:
            raise RoutingError(
                f"{ref.kind.kind.lower()} {ref.name}.{ref.namespace} not found; traffic cannot be "
                "routed before the primary exists"
            )
        wanted = weights.canary
        if canary.spec.target_ref.kind != "Deployment":
            # A DaemonSet offers no replica split: blue/green only, the selector switches.
            if 0 < wanted < TOTAL_WEIGHT:
                raise RoutingError(
                    f"cannot split traffic {weights.primary}/{wanted}: "
                    f"{canary.spec.target_ref.kind} targets are blue/green only"
                )
        elif 0 < wanted < TOTAL_WEIGHT:
            if primaries <= 0:
                raise RoutingError(
                    f"cannot split traffic {weights.primary}/{wanted}: deployment "
                    f"{ref.name}.{ref.namespace} has 0 replicas"
                )
            await self._split.label_pods(canary, APEX_LABEL, canary.spec.service_name)
            await self._split.scale_canary(canary, canary_replicas(primaries, wanted))
        elif wanted == TOTAL_WEIGHT:
            await self._split.scale_canary(canary, max(primaries, 1))
        # Scale first, switch second: the selector never points at pods that were not asked for.
        await self._services.reconcile_apex(
            canary,
            selector=self._selector_for(canary, weights, key, value),
            annotations={WEIGHTS_ANNOTATION: encode_weights(Weights(weights.primary, wanted))},
        )

    async def get_routes(self, canary: Canary) -> Routes:
        """The requested weights (annotation) and the split achieved by selector and replicas."""
        apex = await self._services.apex(canary)
        if apex is None:
            return Routes(Weights.all_primary())
        achieved = await self._achieved(canary, apex)
        return Routes(self._stored(canary, apex) or achieved, achieved)

    async def finalize(self, canary: Canary) -> None:
        await self._services.finalize_apex(canary)

    # ------------------------------------------------------------------ internals

    def _selector_for(
        self, canary: Canary, weights: Weights, key: str, value: str
    ) -> dict[str, str]:
        if weights.canary == 0:
            return {key: f"{value}-primary"}
        if weights.canary == TOTAL_WEIGHT:
            return {key: value}
        return {APEX_LABEL: canary.spec.service_name}

    def _stored(self, canary: Canary, apex: Mapping[str, Any]) -> Weights | None:
        raw = ((apex.get("metadata") or {}).get("annotations") or {}).get(WEIGHTS_ANNOTATION)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return Weights(int(data["primary"]), int(data["canary"]))
        except (ValueError, TypeError, KeyError):
            raise RoutingError(
                f"service {canary.spec.service_name}.{canary.metadata.namespace} annotation "
                f"{WEIGHTS_ANNOTATION} is invalid ({raw!r}); delete it to route all traffic to "
                "the primary"
            ) from None

    async def _achieved(self, canary: Canary, apex: Mapping[str, Any]) -> Weights:
        selector = (apex.get("spec") or {}).get("selector") or {}
        primary, canary_pods = await self._split.selected_pods(canary, selector)
        try:
            return achieved_weights(primary, canary_pods)
        except ValueError:
            raise RoutingError(
                f"service {canary.spec.service_name}.{canary.metadata.namespace} selects no pods "
                f"of deployments {primary_ref(canary).name} or {target_ref(canary).name}"
            ) from None
