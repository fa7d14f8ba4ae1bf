"""NginxRouter: weights in an ingress-nginx canary Ingress (provider ``nginx``, §3.3).

Besides the ClusterIP services, the router keeps a copy of the user's Ingress
(``spec.ingressRef``) named ``<ingress>-canary`` whose backends point at ``<svc>-canary``
instead of ``<svc>``; the user's Ingress is never touched and keeps serving ``<svc>`` (= the
primary). ingress-nginx splits traffic between the two by annotations on the canary Ingress:

* weight: ``<prefix>/canary: "true"`` and ``<prefix>/canary-weight: "<w>"`` (primary is
  ``100 - w``); at weight 0 the annotations are reset to canary ``"true"``, weight ``"0"``;
* A/B testing (``analysis.match``): ``canary-by-cookie`` (a ``cookie`` header match; NGINX
  routes the cookie value ``always``), ``canary-by-header`` + ``canary-by-header-value`` (exact)
  or ``canary-by-header-pattern`` (regex). ``get_routes`` reports 0/100 while they are set.

``<prefix>`` is ``nginx.ingress.kubernetes.io`` unless configured (Flagger's
``-ingress-annotations-prefix``). ``reconcile`` only corrects the canary Ingress's spec, so it
never moves traffic. No mirroring (the flag is ignored) and no session affinity.

Imports only ``config``, the Cluster seam and the shared helpers.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, Final

from config import Canary
from traffic._errors import RoutingError
from traffic._ingress import (
    MADE_BY_RECONCILE,
    ingress_refs,
    patch_annotations,
    require_ingress,
    write_canary_ingress,
)
from traffic._objects import DEFAULT_SELECTOR_LABELS, KUBECTL_ANNOTATION, filter_metadata
from traffic._services import ClusterIPServices
from traffic._types import Routes, Weights
from traffic.cluster import Body, Cluster, ObjectRef

DEFAULT_ANNOTATIONS_PREFIX: Final = "nginx.ingress.kubernetes.io"


class NginxRouter:
    """Router for provider ``nginx``."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        selector_labels: Iterable[str] = DEFAULT_SELECTOR_LABELS,
        annotations_prefix: str = DEFAULT_ANNOTATIONS_PREFIX,
    ) -> None:
        self._cluster = cluster
        self._prefix = annotations_prefix
        self._services = ClusterIPServices(cluster, selector_labels=selector_labels)

    async def initialize(self, canary: Canary) -> None:
        await self._services.initialize(canary)

    async def reconcile(self, canary: Canary) -> None:
        user_ref, canary_ref = self._refs(canary)
        await self._services.reconcile_apex(canary)
        user = await require_ingress(self._cluster, user_ref)
        await write_canary_ingress(
            self._cluster,
            canary,
            canary_ref,
            user=user,
            spec=self._canary_spec(canary, user),
            annotations=self._reset,
        )

    async def set_routes(self, canary: Canary, weights: Weights) -> None:
        _, canary_ref = self._refs(canary)
        existing = await require_ingress(self._cluster, canary_ref, why_missing=MADE_BY_RECONCILE)
        await patch_annotations(
            self._cluster,
            canary_ref,
            existing,
            lambda have: self._routing_annotations(have, canary, weights),
        )

    async def get_routes(self, canary: Canary) -> Routes:
        _, canary_ref = self._refs(canary)
        existing = await self._cluster.get(canary_ref)
        if existing is None:
            return Routes(Weights.all_primary())
        annotations = (existing.get("metadata") or {}).get("annotations") or {}
        if canary.spec.effective_analysis.match and (
            self._key("canary-by-cookie") in annotations
            or self._key("canary-by-header") in annotations
        ):
            return Routes(Weights(0, 100))
        raw = annotations.get(self._key("canary-weight"), "0")
        where = f"ingress {canary_ref.name}.{canary_ref.namespace}"
        try:
            weight = int(raw)
            return Routes(Weights(100 - weight, weight))
        except ValueError:
            raise RoutingError(
                f"{where}: annotation {self._key('canary-weight')} must be 0..100, got {raw!r}"
            ) from None

    async def finalize(self, canary: Canary) -> None:
        # The canary Ingress goes with the Canary (owner reference); the user's is untouched.
        await self._services.finalize_apex(canary)

    # ------------------------------------------------------------------ internals

    def _key(self, suffix: str) -> str:
        return f"{self._prefix}/{suffix}"

    def _refs(self, canary: Canary) -> tuple[ObjectRef, ObjectRef]:
        return ingress_refs(canary, "nginx")

    def _canary_spec(self, canary: Canary, user: Mapping[str, Any]) -> Body:
        """The user's Ingress spec with ``<svc>`` backends renamed to ``<svc>-canary``."""
        apex = canary.spec.service_name
        spec: Body = copy.deepcopy(user.get("spec") or {})
        found = False
        for rule in spec.get("rules") or ():
            for path in (rule.get("http") or {}).get("paths") or ():
                service = (path.get("backend") or {}).get("service")
                if isinstance(service, dict) and service.get("name") == apex:
                    service["name"] = f"{apex}-canary"
                    found = True
        if not found:
            name = (user.get("metadata") or {}).get("name")
            raise RoutingError(f"backend {apex} not found in ingress {name}")
        return spec

    def _routing_annotations(
        self, have: Mapping[str, str], canary: Canary, weights: Weights
    ) -> dict[str, str]:
        """``have`` routing ``weights`` to the canary (by header or cookie under A/B testing)."""
        match = canary.spec.effective_analysis.match
        if match:
            wanted = self._header_annotations(have, match)
        else:
            wanted = dict(have)
            wanted[self._key("canary-weight")] = str(weights.canary)
        if weights.canary > 0:
            wanted[self._key("canary")] = "true"
        else:
            wanted = self._reset(wanted)
        return wanted

    def _is_canary_key(self, key: str) -> bool:
        return self._key("canary") in key or KUBECTL_ANNOTATION in key

    def _reset(self, annotations: Mapping[str, str] | None) -> dict[str, str]:
        """Annotations with every canary key removed, then canary on at weight 0."""
        out = {k: v for k, v in filter_metadata(annotations).items() if not self._is_canary_key(k)}
        out[self._key("canary")] = "true"
        out[self._key("canary-weight")] = "0"
        return out

    def _header_annotations(
        self, annotations: Mapping[str, str], match: list[dict[str, Any]]
    ) -> dict[str, str]:
        cookie = header = value = pattern = ""
        for condition in match:
            for name, rule in (condition.get("headers") or {}).items():
                rule = rule or {}
                if name == "cookie":
                    cookie = str(rule.get("exact") or "")
                else:
                    header = name
                    value = str(rule.get("exact") or "")
                    pattern = str(rule.get("regex") or "")
        have = filter_metadata(annotations)
        out = {k: v for k, v in have.items() if not self._is_canary_key(k)}
        out[self._key("canary")] = "true"
        # Flagger's makeHeaderAnnotations filters on the values, not the keys, so the weight
        # reconcile set ("0") stays beside the header rules; ingress-nginx gives the header
        # precedence either way. (Stale header keys, which its filter also keeps, are dropped.)
        weight = self._key("canary-weight")
        if weight in have:
            out[weight] = have[weight]
        for suffix, setting in (
            ("canary-by-cookie", cookie),
            ("canary-by-header", header),
            ("canary-by-header-value", value),
            ("canary-by-header-pattern", pattern),
        ):
            if setting:
                out[self._key(suffix)] = setting
        return out
