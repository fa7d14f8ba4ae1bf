"""Provider ``traefik``: a ``TraefikService`` weighted round robin over primary and canary.

As Flagger's ``traefik.go``: a TraefikService ``<svc>`` (``traefik.io/v1alpha1``) whose
``spec.weighted.services`` are ``<svc>-primary`` (and ``<svc>-canary`` while it has a weight) on
``service.port`` in the canary's namespace; the user's IngressRoute points at it
(``kind: TraefikService``). ``service.apex`` labels and annotations go on it. ``get_routes``
reads the primary's weight (canary = 100 - primary). Weighted canary and blue/green only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from config import Canary, Capabilities, RouterRules
from traffic._errors import RoutingError
from traffic._objects import service_spec
from traffic._registry import RouterModule
from traffic._types import Weights
from traffic.cluster import Body, Kind
from traffic.routers._weighted_object import WeightedObjectRouter

TRAEFIK_SERVICE: Final = Kind("traefik.io", "v1alpha1", "traefikservices", "TraefikService")


class TraefikRouter(WeightedObjectRouter):
    kind = TRAEFIK_SERVICE
    apex_labels = True
    apex_annotations = True
    keeps_metadata_current = True

    def desired_spec(self, canary: Canary, weights: Weights) -> Body:
        name, ns = canary.spec.service_name, canary.metadata.namespace
        port = service_spec(canary).port
        services = [
            {"name": f"{name}-primary", "namespace": ns, "port": port, "weight": weights.primary}
        ]
        if weights.canary > 0:
            services.append(
                {"name": f"{name}-canary", "namespace": ns, "port": port, "weight": weights.canary}
            )
        return {"weighted": {"services": services}}

    def read_weights(self, canary: Canary, body: Mapping[str, Any]) -> Weights:
        services = ((body.get("spec") or {}).get("weighted") or {}).get("services") or []
        if not services:
            raise RoutingError(f"{self.where(canary)} services not found")
        primary = f"{canary.spec.service_name}-primary"
        return self.weights_from_primary(canary, services, lambda s: s.get("name") == primary)


ROUTER = RouterModule(
    names=("traefik",),
    rules=RouterRules(label="traefik", capabilities=Capabilities()),
    build=lambda cluster, _provider, options: TraefikRouter(
        cluster, selector_labels=options.selector_labels
    ),
    kinds=(TRAEFIK_SERVICE,),
)
