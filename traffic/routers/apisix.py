"""Provider ``apisix``: a canary copy of the user's ``ApisixRoute`` with weighted backends.

As Flagger's ``apisix.go``: ``spec.routeRef`` names the user's ApisixRoute
(``apisix.apache.org/v2``); its first HTTP route with a backend ``<svc>`` is the one split, and
must have that one backend. canary-engine writes ``<route>-<svc>-canary`` (Flagger's name, which
its builtin queries select): the user's spec (labels and annotations copied) with only that HTTP
route, its ``priority`` set to 10000, so it wins over the user's, and its backends
``[<svc>-primary weight, <svc>-canary weight]`` on the user's backend port
(``resolveGranularity`` and ``subset`` kept). The user's route is never changed. Flagger
creates the copy once; here ``reconcile`` also brings it back in line with the user's route,
keeping the current weights. ``get_routes`` reads the primary's weight (canary = 100 - primary).
Weighted canary and blue/green only.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, Final

from config import Canary, Capabilities, Problem, RouterRules
from traffic._errors import RoutingError
from traffic._objects import filter_metadata
from traffic._registry import RouterModule, RouterOptions
from traffic._types import Weights
from traffic.cluster import Body, Cluster, Kind, ObjectRef, ReadBody
from traffic.routers._weighted_object import WeightedObjectRouter

APISIX_ROUTE: Final = Kind("apisix.apache.org", "v2", "apisixroutes", "ApisixRoute")
MAX_PRIORITY: Final = 10000


class ApisixRouter(WeightedObjectRouter):
    kind = APISIX_ROUTE

    def __init__(self, cluster: Cluster, options: RouterOptions) -> None:
        super().__init__(cluster, selector_labels=options.selector_labels)

    def object_name(self, canary: Canary) -> str:
        return f"{_route_name(canary)}-{canary.spec.service_name}-canary"

    async def reconcile(self, canary: Canary) -> None:
        await self._services.reconcile_apex(canary)
        user = await self._user_route(canary)
        ref = self.ref(canary)
        existing = await self._cluster.get(ref)
        if existing is None:
            meta = user.get("metadata") or {}
            await self._create(
                canary,
                ref,
                labels=meta.get("labels"),
                annotations=filter_metadata(meta.get("annotations")),
                spec=_canary_spec(canary, user, Weights.all_primary()),
            )
            return
        current = self.current_weights(canary, existing)
        await self._patch_spec(ref, existing, _canary_spec(canary, user, current))

    async def set_routes(self, canary: Canary, weights: Weights) -> None:
        ref = self.ref(canary)
        existing = await self._cluster.get(ref)
        if existing is None:
            raise RoutingError(
                f"apisix route {ref.name}.{ref.namespace} not found; reconcile creates it"
            )
        spec = copy.deepcopy(existing.get("spec") or {})
        name = canary.spec.service_name
        for backend in _backends(spec):
            if backend.get("serviceName") == f"{name}-primary":
                backend["weight"] = weights.primary
            elif backend.get("serviceName") == f"{name}-canary":
                backend["weight"] = weights.canary
        await self._patch_spec(ref, existing, spec)

    def read_weights(self, canary: Canary, body: Mapping[str, Any]) -> Weights:
        primary = f"{canary.spec.service_name}-primary"
        return self.weights_from_primary(
            canary, _backends(body.get("spec") or {}), lambda b: b.get("serviceName") == primary
        )

    def where(self, canary: Canary) -> str:
        return f"apisix route {self.object_name(canary)}.{canary.metadata.namespace}"

    async def _user_route(self, canary: Canary) -> ReadBody:
        ref = ObjectRef(APISIX_ROUTE, canary.metadata.namespace, _route_name(canary))
        user = await self._cluster.get(ref)
        if user is None:
            raise RoutingError(f"apisix route {ref.name}.{ref.namespace} (spec.routeRef) not found")
        http = (user.get("spec") or {}).get("http") or []
        if not http:
            raise RoutingError(f"apisix route {ref.name}.{ref.namespace}: spec.http is empty")
        target = _target_route(canary, user)
        if target is None:
            raise RoutingError(
                f"apisix route {ref.name}.{ref.namespace}: no http route has the backend "
                f"{canary.spec.service_name}"
            )
        if len(target.get("backends") or []) != 1:
            raise RoutingError(
                f"apisix route {ref.name}.{ref.namespace}: http route {target.get('name')!r} "
                "must have one backend"
            )
        return user


def _target_route(canary: Canary, user: Mapping[str, Any]) -> Body | None:
    """The user's first HTTP route with a backend ``<svc>`` (Flagger's getTargetHttpRoute)."""
    for route in (user.get("spec") or {}).get("http") or ():
        if any(
            b.get("serviceName") == canary.spec.service_name for b in route.get("backends") or ()
        ):
            return dict(route)
    return None


def _route_name(canary: Canary) -> str:
    ref = canary.spec.route_ref
    if ref is None:
        raise RoutingError(f"canary {canary.dotted}: spec.routeRef is required for apisix")
    return ref.name


def _backends(spec: Mapping[str, Any]) -> list[Body]:
    http = spec.get("http") or []
    return list(http[0].get("backends") or []) if http else []


def _canary_spec(canary: Canary, user: Mapping[str, Any], weights: Weights) -> Body:
    spec: Body = copy.deepcopy(dict(user.get("spec") or {}))
    target = _target_route(canary, user)
    assert target is not None  # _user_route checked it
    route = copy.deepcopy(target)
    spec["http"] = [route]  # only the split route, as Flagger writes it
    route["priority"] = MAX_PRIORITY
    (original,) = route["backends"]
    name = canary.spec.service_name
    primary = {**original, "serviceName": f"{name}-primary", "weight": weights.primary}
    canary_backend = {
        k: v
        for k, v in {
            "serviceName": f"{name}-canary",
            "servicePort": original.get("servicePort"),
            "resolveGranularity": original.get("resolveGranularity"),
            "weight": weights.canary,
            "subset": original.get("subset"),
        }.items()
        if v is not None
    }
    route["backends"] = [primary, canary_backend]
    return spec


def _check(canary: Canary, analysis_key: str) -> Iterable[Problem]:
    if canary.spec.route_ref is None:
        yield Problem("spec.routeRef", "required when provider is apisix (the ApisixRoute to copy)")


ROUTER = RouterModule(
    names=("apisix",),
    rules=RouterRules(label="apisix", capabilities=Capabilities(), check=_check),
    build=lambda cluster, _provider, options: ApisixRouter(cluster, options),
    kinds=(APISIX_ROUTE,),
)
