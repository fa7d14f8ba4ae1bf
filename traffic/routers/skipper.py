"""Provider ``skipper``: a ``-canary`` Ingress whose backend-weights annotation splits traffic.

As Flagger's ``skipper.go``: ``spec.ingressRef`` names the user's Ingress, which is never changed.
canary-engine writes ``<ingress>-canary``: the user's spec where each path to ``<svc>`` goes to
``<svc>-primary`` and a copy of it to ``<svc>-canary``, with the annotations

* ``zalando.org/backend-weights``: ``{"<svc>-canary": w, "<svc>-primary": 100 - w}`` (JSON, keys
  sorted as Go writes them);
* ``zalando.org/skipper-predicate``: ``Weight(100)`` first (the canary Ingress' routes outrank the
  user's), then the user's own predicates; at canary weight 0 ``False()`` replaces it, which
  switches the canary Ingress off so the user's Ingress serves again.

Flagger deletes the canary Ingress on finalize; canary-engine has no delete permission (generated
objects go with the Canary by owner reference), so ``finalize`` switches it off with ``False()``.
Weighted canary and blue/green only; the builtin queries are Skipper's.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from config import Canary, Capabilities, Problem, RouterRules
from traffic._errors import RoutingError
from traffic._ingress import (
    MADE_BY_RECONCILE,
    ingress_refs,
    patch_annotations,
    require_ingress,
    write_canary_ingress,
)
from traffic._objects import KUBECTL_ANNOTATION, filter_metadata
from traffic._registry import RouterModule, RouterOptions
from traffic._services import ClusterIPServices
from traffic._types import Routes, Weights
from traffic.cluster import INGRESS, Body, Cluster, ObjectRef

WEIGHTS_ANNOTATION: Final = "zalando.org/backend-weights"
PREDICATE_ANNOTATION: Final = "zalando.org/skipper-predicate"
ROUTE_WEIGHT: Final = "Weight(100)"
ROUTE_DISABLE: Final = "False()"


class SkipperRouter:
    """Router for provider ``skipper``."""

    def __init__(self, cluster: Cluster, options: RouterOptions) -> None:
        self._cluster = cluster
        self._services = ClusterIPServices(cluster, selector_labels=options.selector_labels)

    async def initialize(self, canary: Canary) -> None:
        await self._services.initialize(canary)

    async def reconcile(self, canary: Canary) -> None:
        await self._services.reconcile_apex(canary)
        user_ref, canary_ref = _refs(canary)
        user = await require_ingress(self._cluster, user_ref)
        await write_canary_ingress(
            self._cluster,
            canary,
            canary_ref,
            user=user,
            spec=_canary_spec(canary, user),
            annotations=lambda have: _annotations(
                filter_metadata(have), canary, Weights(100, 0), created=True
            ),
            annotations_on_change=_recopied,
        )

    async def set_routes(self, canary: Canary, weights: Weights) -> None:
        _, canary_ref = _refs(canary)
        existing = await require_ingress(self._cluster, canary_ref, why_missing=MADE_BY_RECONCILE)
        await patch_annotations(
            self._cluster, canary_ref, existing, lambda have: _annotations(have, canary, weights)
        )

    async def get_routes(self, canary: Canary) -> Routes:
        _, canary_ref = _refs(canary)
        existing = await self._cluster.get(canary_ref)
        if existing is None:
            return Routes(Weights.all_primary())
        where = f"ingress {canary_ref.name}.{canary_ref.namespace}"
        raw = ((existing.get("metadata") or {}).get("annotations") or {}).get(WEIGHTS_ANNOTATION)
        try:
            found = json.loads(raw) if raw is not None else None
        except ValueError:
            found = None
        if not isinstance(found, dict):
            raise RoutingError(f"{where}: annotation {WEIGHTS_ANNOTATION} is missing or not JSON")
        name = canary.spec.service_name
        try:
            return Routes(Weights(int(found[f"{name}-primary"]), int(found[f"{name}-canary"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise RoutingError(
                f"{where}: {WEIGHTS_ANNOTATION} has no usable weights ({exc})"
            ) from None

    async def finalize(self, canary: Canary) -> None:
        """Switch the canary Ingress off (``False()``) so the user's Ingress serves again."""
        _, canary_ref = _refs(canary)
        existing = await self._cluster.get(canary_ref)
        if existing is not None:
            await patch_annotations(self._cluster, canary_ref, existing, _switched_off)
        await self._services.finalize_apex(canary)


def _refs(canary: Canary) -> tuple[ObjectRef, ObjectRef]:
    return ingress_refs(canary, "skipper")


def _canary_spec(canary: Canary, user: Mapping[str, Any]) -> Body:
    """The user's spec with every ``<svc>`` path sent to the primary, plus a canary copy."""
    apex = canary.spec.service_name
    spec: Body = copy.deepcopy(dict(user.get("spec") or {}))
    found = False
    for rule in spec.get("rules") or ():
        http = rule.get("http") or {}
        paths: list[Body] = list(http.get("paths") or ())
        twins: list[Body] = []
        for path in paths:
            service = (path.get("backend") or {}).get("service")
            if isinstance(service, dict) and service.get("name") == apex:
                found = True
                service["name"] = f"{apex}-primary"
                twin = copy.deepcopy(path)
                twin["backend"]["service"]["name"] = f"{apex}-canary"
                twins.append(twin)
        if http:
            # the canary copies after all the user's paths, in their order, as Flagger appends them
            http["paths"] = paths + twins
    if not found:
        name = (user.get("metadata") or {}).get("name")
        raise RoutingError(f"backend {apex} not found in ingress {name}")
    return spec


def _annotations(
    have: Mapping[str, str], canary: Canary, weights: Weights, *, created: bool = False
) -> dict[str, str]:
    """The weight annotations; ``created``: as Flagger creates the Ingress (``Weight(100)`` even at
    0 %, all of it to the primary), before any ``set_routes`` switched it off."""
    name = canary.spec.service_name
    out = {k: v for k, v in have.items() if k != KUBECTL_ANNOTATION}
    out[WEIGHTS_ANNOTATION] = json.dumps(
        {f"{name}-primary": weights.primary, f"{name}-canary": weights.canary},
        sort_keys=True,
        separators=(",", ":"),
    )
    first = ROUTE_DISABLE if weights.canary == 0 and not created else ROUTE_WEIGHT
    out[PREDICATE_ANNOTATION] = _insert(have.get(PREDICATE_ANNOTATION), first)
    return out


def _recopied(user: Mapping[str, str], have: Mapping[str, str]) -> dict[str, str]:
    """The canary Ingress' annotations when the user's Ingress changed its spec: the user's
    annotations again (Flagger's skipper.go copies them with the spec), with the routing ones
    kept as they are (Flagger also resets the weights to 100/0 there; a reconcile here never
    moves traffic)."""
    out = {k: v for k, v in filter_metadata(user).items() if k != KUBECTL_ANNOTATION}
    if WEIGHTS_ANNOTATION in have:
        out[WEIGHTS_ANNOTATION] = have[WEIGHTS_ANNOTATION]
    switched_off = ROUTE_DISABLE in _predicates(have.get(PREDICATE_ANNOTATION))
    out[PREDICATE_ANNOTATION] = _insert(
        user.get(PREDICATE_ANNOTATION), ROUTE_DISABLE if switched_off else ROUTE_WEIGHT
    )
    return out


def _switched_off(have: Mapping[str, str]) -> dict[str, str]:
    """``have`` with ``False()`` leading the predicate, which takes the canary Ingress' routes
    out of Skipper."""
    return {**have, PREDICATE_ANNOTATION: _insert(have.get(PREDICATE_ANNOTATION), ROUTE_DISABLE)}


def _insert(raw: str | None, first: str) -> str:
    """Flagger's ``insertPredicate``: ``first`` first, then the user's predicates; our own
    ``Weight(100)`` and ``False()`` are dropped (they conflict)."""
    kept = [p for p in _predicates(raw) if p not in (ROUTE_WEIGHT, ROUTE_DISABLE)]
    return " && ".join([first, *kept])


def _predicates(raw: str | None) -> list[str]:
    """The predicates of a ``zalando.org/skipper-predicate`` annotation (``A && B``)."""
    return [p.strip() for p in (raw or "").split("&&") if p.strip()]


def _check(canary: Canary, analysis_key: str) -> Iterable[Problem]:
    if canary.spec.ingress_ref is None:
        yield Problem("spec.ingressRef", "required when provider is skipper")


ROUTER = RouterModule(
    names=("skipper",),
    rules=RouterRules(label="skipper", capabilities=Capabilities(), check=_check),
    build=lambda cluster, _provider, options: SkipperRouter(cluster, options),
    kinds=(INGRESS,),
)
