"""Provider ``knative``: the weights in the Knative Service's ``spec.traffic``.

As Flagger's ``knative.go``: ``spec.traffic`` of the target Knative Service sends ``percent`` to
the latest revision (``latestRevision: true``, the canary) and the rest to the revision named by
``flagger.app/primary-revision`` (the primary, see ``traffic._knative``). Knative itself routes:
no ClusterIP services are generated. As Flagger's, ``reconcile`` names the latest created revision
the primary when the annotation is missing (``spec.traffic`` untouched) and ``finalize`` removes
the annotation, so a Canary deleted and created again pins the revision current then instead of
the old one. ``get_routes`` reads ``spec.traffic`` (the weights asked for, as every other router
reads its own object; Flagger reads ``status.traffic``, which the Knative controller copies once
it has applied them). Weighted canary and blue/green only. The builtin queries are Flagger's
Knative (Envoy) ones, on the latest revision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from config import Canary, Capabilities, Problem, RouterRules
from traffic._errors import RoutingError, WorkloadError
from traffic._knative import (
    is_knative_target,
    knative_ref,
    knative_where,
    pin_latest_revision,
    primary_revision,
    traffic_for,
    unpin_primary_revision,
)
from traffic._objects import NO_CHANGE, merge_diff
from traffic._registry import RouterModule
from traffic._types import Routes, Weights
from traffic.cluster import KNATIVE_REVISION, KNATIVE_SERVICE, Cluster, ReadBody
from traffic.routers._weighted_object import int_weight


class KnativeRouter:
    """Router for provider ``knative``."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster

    async def initialize(self, canary: Canary) -> None:
        _check_target(canary)

    async def reconcile(self, canary: Canary) -> None:
        _check_target(canary)
        service = await self._service(canary)
        try:
            await pin_latest_revision(self._cluster, canary, service, route=False)
        except WorkloadError as exc:
            raise RoutingError(str(exc)) from None

    async def set_routes(self, canary: Canary, weights: Weights) -> None:
        ref = knative_ref(canary)
        service = await self._service(canary)
        wanted = traffic_for(primary_revision(service, knative_where(canary)), weights.canary)
        if merge_diff((service.get("spec") or {}).get("traffic"), wanted) is not NO_CHANGE:
            await self._cluster.patch(ref, {"spec": {"traffic": wanted}})

    async def get_routes(self, canary: Canary) -> Routes:
        service = await self._cluster.get(knative_ref(canary))
        if service is None:
            return Routes(Weights.all_primary())
        return Routes(_read(canary, service))

    async def finalize(self, canary: Canary) -> None:
        await unpin_primary_revision(self._cluster, canary)

    async def _service(self, canary: Canary) -> ReadBody:
        ref = knative_ref(canary)
        service = await self._cluster.get(ref)
        if service is None:
            raise RoutingError(f"Knative Service {ref.name}.{ref.namespace} not found")
        return service


def _read(canary: Canary, service: Mapping[str, Any]) -> Weights:
    """The latest revision's percent is the canary's, the pinned revision's the primary's. Right
    after a promotion the pinned revision is still the previous primary until the next
    ``set_routes`` pins the new one: the split as written is reported all the same."""
    where = knative_where(canary)
    canary_w = primary_w = None
    for target in (service.get("spec") or {}).get("traffic") or ():
        if target.get("latestRevision") is True:
            canary_w = int_weight(target.get("percent", 0), where)
        elif target.get("revisionName") and primary_w is None:
            primary_w = int_weight(target.get("percent", 0), where)
    if canary_w is None or primary_w is None:
        raise RoutingError(
            f"{where}: spec.traffic has no latest revision and pinned (primary) revision"
        )
    try:
        return Weights(primary_w, canary_w)
    except ValueError as exc:
        raise RoutingError(f"{where}: {exc}") from None


def _check_target(canary: Canary) -> None:
    if not is_knative_target(canary):
        raise RoutingError(f"canary {canary.dotted}: {_TARGET_NEEDED}")


_TARGET_NEEDED = (
    "provider knative needs a Knative Service target (targetRef apiVersion "
    "serving.knative.dev/v1, kind Service), as in Flagger"
)


def _check(canary: Canary, analysis_key: str) -> Iterable[Problem]:
    if not is_knative_target(canary):
        yield Problem("spec.targetRef", _TARGET_NEEDED)


ROUTER = RouterModule(
    names=("knative",),
    rules=RouterRules(label="knative", capabilities=Capabilities(), check=_check),
    build=lambda cluster, _provider, _options: KnativeRouter(cluster),
    kinds=(KNATIVE_SERVICE, KNATIVE_REVISION),
)
