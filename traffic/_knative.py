"""Knative: ``KnativeWorkload`` for a Knative ``Service`` target (``serving.knative.dev/v1``).

As Flagger's ``knative_controller.go``: Knative keeps every revision, so there is no ``-primary``
copy. The primary is the revision named by the Service's annotation
``flagger.app/primary-revision``; the canary is the latest created revision
(``status.latestCreatedRevisionName``), which is also the release identity (a new revision is a
new release). Initialisation records the current revision as the primary and pins all traffic to
it (``spec.traffic``: the latest revision at 0 %, the primary at 100 %); promotion moves the
annotation to the latest revision. Readiness is the revision's ``Ready`` condition. Knative
scales revisions itself: nothing to scale.

The router of provider ``knative`` (``traffic.routers.knative``) writes the weights into the same
``spec.traffic``; as Flagger's ``KnativeRouter`` its ``reconcile`` names the latest revision the
primary when the annotation is missing (``pin_latest_revision``, shared with initialisation) and
its ``finalize`` removes the annotation (``unpin_primary_revision``), so a Canary created again
pins the revision current then. Imports only ``config``, the Cluster seam and the shared object
helpers.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from config import Canary, Phase
from traffic._deployment import template_hash
from traffic._errors import WorkloadError
from traffic._objects import NO_CHANGE, merge_diff
from traffic._types import Readiness, Revision
from traffic.cluster import KNATIVE_REVISION, KNATIVE_SERVICE, Body, Cluster, ObjectRef, ReadBody

PRIMARY_REVISION_ANNOTATION: Final = "flagger.app/primary-revision"
#: Key of the analysed revision's name in ``status.trackedConfigs`` (Knative has no configs).
REVISION_KEY: Final = "knative/revision"


def is_knative_target(canary: Canary) -> bool:
    return canary.spec.target_ref.api_version.startswith(f"{KNATIVE_SERVICE.group}/")


def knative_ref(canary: Canary) -> ObjectRef:
    return ObjectRef(KNATIVE_SERVICE, canary.metadata.namespace, canary.spec.target_ref.name)


def traffic_for(primary_revision: str, canary_weight: int) -> list[Body]:
    """Flagger's ``spec.traffic``: the latest revision first, then the primary revision.
    (Knative's webhook defaults ``latestRevision`` to false on an entry naming a revision; writing
    it keeps the stored traffic equal to this, so an unchanged weight sends no patch.)"""
    return [
        {"latestRevision": True, "percent": canary_weight},
        {"revisionName": primary_revision, "latestRevision": False, "percent": 100 - canary_weight},
    ]


def primary_revision(service: Mapping[str, Any], where: str) -> str:
    found = _annotations(service).get(PRIMARY_REVISION_ANNOTATION)
    if not found:
        raise WorkloadError(f"{where}: annotation {PRIMARY_REVISION_ANNOTATION} not found")
    return str(found)


async def pin_latest_revision(
    cluster: Cluster,
    canary: Canary,
    service: Mapping[str, Any],
    *,
    route: bool,
    replace: bool = False,
) -> None:
    """Name the latest created revision the primary (``flagger.app/primary-revision``) when
    ``service`` names none yet (an empty value counts as none, as ``primary_revision`` reads it);
    with ``route``, also send it all the traffic (initialisation: Flagger's ``Initialize`` writes
    both, while Initializing, whatever was pinned). Without ``route``, Flagger's
    ``KnativeRouter.Reconcile``: the annotation only, when missing. A Service without a revision
    yet is a ``WorkloadError`` (Flagger would write an empty name). ``replace``: pin the latest
    even over a pinned one (Flagger's ``Initialize`` of a Canary that is new or Initializing)."""
    if not replace and _annotations(service).get(PRIMARY_REVISION_ANNOTATION):
        return
    latest = _latest(service, canary)
    patch: Body = {}
    if _annotations(service).get(PRIMARY_REVISION_ANNOTATION) != latest:
        patch["metadata"] = {"annotations": {PRIMARY_REVISION_ANNOTATION: latest}}
    wanted = traffic_for(latest, 0)
    if route and merge_diff((service.get("spec") or {}).get("traffic"), wanted) is not NO_CHANGE:
        patch["spec"] = {"traffic": wanted}
    if patch:  # re-pinned on every Initializing tick: written only when it changes something
        await cluster.patch(knative_ref(canary), patch)


async def unpin_primary_revision(cluster: Cluster, canary: Canary) -> None:
    """Remove ``flagger.app/primary-revision`` from the Canary's Knative Service, if there
    (Flagger's ``KnativeRouter.Finalize``); ``spec.traffic`` is left as it is, as in Flagger. A
    Service that no longer exists is not an error (every ``finalize`` here; Flagger's fails)."""
    ref = knative_ref(canary)
    service = await cluster.get(ref)
    if service is not None and PRIMARY_REVISION_ANNOTATION in _annotations(service):
        await cluster.patch(ref, {"metadata": {"annotations": {PRIMARY_REVISION_ANNOTATION: None}}})


def _annotations(service: Mapping[str, Any]) -> Mapping[str, Any]:
    return (service.get("metadata") or {}).get("annotations") or {}


class KnativeWorkload:
    """The ``Workload`` for a Knative Service target (see the module docs)."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster

    async def revision(self, canary: Canary) -> Revision:
        """The latest created revision: hashed as the release identity (so the engine tells it
        from a hash Flagger wrote), and by name under ``REVISION_KEY`` in the tracked configs, so
        the status keeps the revision under analysis (the builtin queries' ``{{ route }}``)."""
        latest = _latest(await self._service(canary), canary)
        return Revision(
            spec_hash=template_hash({"revision": latest}), configs={REVISION_KEY: latest}
        )

    async def initialize(self, canary: Canary) -> None:
        # Flagger's Initialize: while the Canary is new or Initializing, the latest revision is
        # the primary and takes all the traffic, whatever an earlier Canary of this Service left
        # pinned (deleted without revertOnDeletion, then created again); after that a revision
        # pinned (the last promoted) stays the primary
        phase = str((canary.status or {}).get("phase") or "")
        await pin_latest_revision(
            self._cluster,
            canary,
            await self._service(canary),
            route=True,
            replace=phase in ("", Phase.INITIALIZING.value),
        )

    async def readiness(self, canary: Canary, *, primary: bool, now: datetime) -> Readiness:
        service = await self._service(canary)
        where = knative_where(canary)
        try:
            name = primary_revision(service, where) if primary else _latest(service, canary)
        except WorkloadError as exc:
            return Readiness(ready=False, message=str(exc))
        ref = ObjectRef(KNATIVE_REVISION, canary.metadata.namespace, name)
        revision = await self._cluster.get(ref)
        if revision is None:
            return Readiness(
                ready=False, message=f"Knative Revision {name}.{ref.namespace} not found"
            )
        for condition in (revision.get("status") or {}).get("conditions") or ():
            if condition.get("type") == "Ready" and condition.get("status") == "True":
                return Readiness(ready=True)
        return Readiness(
            ready=False, message=f"Knative Revision {name}.{ref.namespace} is not ready"
        )

    async def promote(self, canary: Canary) -> None:
        latest = _latest(await self._service(canary), canary)
        await self._cluster.patch(
            knative_ref(canary),
            {"metadata": {"annotations": {PRIMARY_REVISION_ANNOTATION: latest}}},
        )

    async def primary_runs(self, canary: Canary, revision: Revision) -> bool | None:
        """The revision pinned as the primary is ``revision``'s (its name, ``REVISION_KEY``)."""
        name = revision.configs.get(REVISION_KEY)
        if not name:
            return None
        return bool(
            _annotations(await self._service(canary)).get(PRIMARY_REVISION_ANNOTATION) == name
        )

    async def scale_to_zero(self, canary: Canary) -> None:
        return None  # Knative scales revisions itself

    async def scale_from_zero(self, canary: Canary) -> None:
        return None

    async def finalize(self, canary: Canary) -> None:
        return None

    async def _service(self, canary: Canary) -> ReadBody:
        body = await self._cluster.get(knative_ref(canary))
        if body is None:
            raise WorkloadError(f"{knative_where(canary)} not found")
        return body


def knative_where(canary: Canary) -> str:
    """How messages name the Canary's Knative Service."""
    return f"Knative Service {canary.spec.target_ref.name}.{canary.metadata.namespace}"


def _latest(service: Mapping[str, Any], canary: Canary) -> str:
    latest = (service.get("status") or {}).get("latestCreatedRevisionName")
    if not latest:
        raise WorkloadError(
            f"{knative_where(canary)} has no revision yet (status.latestCreatedRevisionName)"
        )
    return str(latest)
