"""The shape most routers share: one routing object whose spec carries the two weights.

Linkerd/OSM/SMI (``TrafficSplit``), Contour (``HTTPProxy``), Gloo (``RouteTable``), Traefik
(``TraefikService``), APISIX (``ApisixRoute``), Kuma (``TrafficRoute``): Flagger's routers for
these build the whole desired spec from the Canary and the weights, create it when missing,
rewrite it on ``SetRoutes``, and on ``Reconcile`` correct drift while keeping the current
weights. ``WeightedObjectRouter`` does exactly that over the Cluster seam, besides the ClusterIP
services every provider needs; a router module supplies the ``Kind``, the object's name, the
spec for given weights and how to read the weights back.

``reconcile`` never moves traffic: it rebuilds the spec with the weights read from the object
(all to the primary when they cannot be read, e.g. an object the user created). The object's
metadata is what Flagger's router for it writes: the Canary's ``service.apex`` labels and
annotations (gloo, traefik: and every reconcile makes them the Canary's again), its annotations
only (kuma, on creation), or none of it (SMI and contour: only their own annotations). Objects are
created with an owner reference to the Canary, so they are garbage-collected with it; ``finalize``
only hands a user's apex Service back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Final

from config import Canary
from traffic._errors import RoutingError
from traffic._objects import (
    DEFAULT_SELECTOR_LABELS,
    apex_metadata_patch,
    canary_uid,
    filter_metadata,
    is_owned_by,
    merge_diff,
    owned_object,
    patch_changes,
    patch_spec,
    service_spec,
)
from traffic._services import ClusterIPServices
from traffic._types import Routes, Weights
from traffic.cluster import Body, Cluster, Kind, ObjectRef


class WeightedObjectRouter:
    """Base of the single-object routers; subclasses set ``kind`` and the three hooks."""

    kind: Kind
    #: Which of the Canary's ``service.apex`` metadata the object carries, as Flagger's router
    #: for it writes it.
    apex_labels: ClassVar[bool] = False
    apex_annotations: ClassVar[bool] = False
    #: Reconcile makes the object's labels and annotations the Canary's again (Flagger's gloo and
    #: traefik routers replace them on every update; the others write them on creation only).
    keeps_metadata_current: ClassVar[bool] = False

    def __init__(
        self, cluster: Cluster, *, selector_labels: Iterable[str] = DEFAULT_SELECTOR_LABELS
    ) -> None:
        self._cluster = cluster
        self._services = ClusterIPServices(cluster, selector_labels=selector_labels)

    # ------------------------------------------------------------------ hooks

    def object_name(self, canary: Canary) -> str:
        return canary.spec.service_name

    def desired_spec(self, canary: Canary, weights: Weights) -> Body:
        raise NotImplementedError

    def read_weights(self, canary: Canary, body: Mapping[str, Any]) -> Weights:
        """The weights in ``body``; RoutingError when it has no route to both services."""
        raise NotImplementedError

    def check(self, canary: Canary) -> None:
        """Raise for a Canary this router cannot serve (beyond what the loader checks)."""

    def extra_annotations(self, canary: Canary) -> dict[str, str]:
        """Annotations the object is created with (e.g. an ingress class)."""
        return {}

    def extra_fields(self, canary: Canary) -> Body:
        """Top-level fields besides ``spec`` the object is created with (Kuma's ``mesh``)."""
        return {}

    # ------------------------------------------------------------------ Router

    async def initialize(self, canary: Canary) -> None:
        self.check(canary)
        await self._services.initialize(canary)

    async def reconcile(self, canary: Canary) -> None:
        self.check(canary)
        await self._services.reconcile_apex(canary)
        ref = self.ref(canary)
        existing = await self._cluster.get(ref)
        labels, annotations = self.desired_metadata(canary)
        if existing is None:
            await self._create(
                canary,
                ref,
                labels=labels,
                annotations=annotations,
                spec=self.desired_spec(canary, Weights.all_primary()),
            )
            return
        current = self.current_weights(canary, existing)
        spec_patch = merge_diff(existing.get("spec") or {}, self.desired_spec(canary, current))
        metadata: Body = {}
        if self.keeps_metadata_current:
            metadata = apex_metadata_patch(existing, canary, labels, annotations)
        await patch_changes(self._cluster, ref, spec_patch, metadata)

    def desired_metadata(self, canary: Canary) -> tuple[dict[str, str], dict[str, str]]:
        """The labels and annotations the routing object carries (``apex_labels``,
        ``apex_annotations``, then the router's own)."""
        apex = service_spec(canary).apex
        labels = dict(apex.labels or {}) if apex and self.apex_labels else {}
        annotations = filter_metadata(apex.annotations) if apex and self.apex_annotations else {}
        return labels, {**annotations, **self.extra_annotations(canary)}

    async def set_routes(self, canary: Canary, weights: Weights) -> None:
        self.check(canary)
        ref = self.ref(canary)
        existing = await self._cluster.get(ref)
        if existing is None:
            raise RoutingError(
                f"{self.kind.kind} {ref.name}.{ref.namespace} not found; reconcile creates it"
            )
        await self._patch_spec(ref, existing, self.desired_spec(canary, weights))

    async def get_routes(self, canary: Canary) -> Routes:
        body = await self._cluster.get(self.ref(canary))
        if body is None:
            return Routes(Weights.all_primary())
        return Routes(self.read_weights(canary, body))

    async def finalize(self, canary: Canary) -> None:
        # A namespaced routing object is ours and goes with the Canary (owner reference). A
        # cluster-scoped one cannot name a namespaced owner (the garbage collector refuses the
        # reference and never deletes it), so it is deleted here: left behind, it would keep
        # splitting traffic to the -primary and -canary Services that go with the Canary.
        await self._services.finalize_apex(canary)
        if not self.kind.namespaced:
            ref = self.ref(canary)
            existing = await self._cluster.get(ref)
            # Only one this Canary made: the name carries no namespace, and a user's own object
            # of that name (adopted by reconcile) is theirs to keep.
            if existing is not None and _made_for(existing, canary):
                await self._cluster.delete(ref)

    # ------------------------------------------------------------------ helpers

    def ref(self, canary: Canary) -> ObjectRef:
        namespace = canary.metadata.namespace if self.kind.namespaced else ""
        return ObjectRef(self.kind, namespace, self.object_name(canary))

    def where(self, canary: Canary) -> str:
        return f"{self.kind.kind} {self.object_name(canary)}.{canary.metadata.namespace}"

    def current_weights(self, canary: Canary, existing: Mapping[str, Any]) -> Weights:
        """The weights ``existing`` routes, so reconciling keeps them; all to the primary when
        they cannot be read (an object we have not weighted yet)."""
        try:
            return self.read_weights(canary, existing)
        except RoutingError:
            return Weights.all_primary()

    def weights_from_primary(
        self,
        canary: Canary,
        entries: Iterable[Mapping[str, Any]],
        is_primary: Callable[[Mapping[str, Any]], bool],
    ) -> Weights:
        """Weights from the first of ``entries`` that ``is_primary``: its ``weight`` goes to the
        primary and the rest of 100 to the canary, as Flagger reads them; a RoutingError when no
        entry is the primary's."""
        for entry in entries:
            if is_primary(entry):
                weight = int_weight(entry.get("weight", 0), self.where(canary))
                return self.weights_or_error(canary, weight, 100 - weight)
        return self.weights_or_error(canary, None, None)

    def weights_or_error(
        self, canary: Canary, primary: int | None, canary_w: int | None
    ) -> Weights:
        """Weights from the two values read, or a RoutingError naming the object."""
        name = canary.spec.service_name
        if primary is None or canary_w is None or (primary == 0 and canary_w == 0):
            raise RoutingError(
                f"{self.where(canary)} does not contain routes for {name}-primary and {name}-canary"
            )
        try:
            return Weights(primary, canary_w)
        except ValueError as exc:
            raise RoutingError(f"{self.where(canary)}: {exc}") from None

    async def _create(
        self,
        canary: Canary,
        ref: ObjectRef,
        *,
        labels: Mapping[str, str] | None,
        annotations: Mapping[str, str] | None,
        spec: Body,
    ) -> None:
        """Create the routing object ``ref``, owned by the Canary so it is garbage-collected
        with it (a cluster-scoped one is not: ``finalize`` deletes it)."""
        body = owned_object(canary, ref, spec, labels=labels, annotations=annotations)
        if not self.kind.namespaced:
            metadata = body["metadata"]
            del metadata["ownerReferences"]
            metadata.setdefault("annotations", {})[MADE_FOR_ANNOTATION] = _canary_key(canary)
        await self._cluster.create({**body, **self.extra_fields(canary)})

    async def _patch_spec(self, ref: ObjectRef, existing: Mapping[str, Any], spec: Body) -> None:
        await patch_spec(self._cluster, ref, existing, spec)


#: On a cluster-scoped routing object: the Canary (``<namespace>/<name>``) it was made for, which
#: ``finalize`` deletes it with (no owner reference can say so).
MADE_FOR_ANNOTATION: Final = "canary-engine.io/canary"


def _canary_key(canary: Canary) -> str:
    return f"{canary.metadata.namespace}/{canary.metadata.name}"


def _made_for(body: Mapping[str, Any], canary: Canary) -> bool:
    """Made by canary-engine for ``canary``, or by Flagger (an owner reference to it)."""
    meta = body.get("metadata") or {}
    if (meta.get("annotations") or {}).get(MADE_FOR_ANNOTATION) == _canary_key(canary):
        return True
    # Flagger's owner reference names the Canary but not its namespace: the uid tells them apart
    uid = canary_uid(canary)
    return is_owned_by(body, canary) and any(
        o.get("kind") == "Canary" and (not uid or o.get("uid") == uid)
        for o in meta.get("ownerReferences") or ()
        if o.get("controller")
    )


def int_weight(value: Any, where: str) -> int:
    """A weight as written by a user or a controller (int, or a string such as ``"100"``)."""
    try:
        return int(str(value).strip())
    except ValueError:
        raise RoutingError(f"{where}: weight {value!r} is not an integer") from None
