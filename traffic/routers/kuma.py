"""Provider ``kuma``: a Kuma ``TrafficRoute`` splitting ``<svc>`` between primary and canary.

As Flagger's ``kuma.go``: a cluster-scoped TrafficRoute ``<svc>`` (``kuma.io/v1alpha1``) in the
mesh named by the Canary's ``kuma.io/mesh`` annotation (default ``default``), from every service
(``kuma.io/service: *``) to ``<svc>_<ns>_svc_<port>``, whose ``conf.split`` sends ``weight`` to
``<svc>-primary_<ns>_svc_<port>`` and ``<svc>-canary_<ns>_svc_<port>``. Annotations: the
``service.apex`` ones, or ``<port>.service.kuma.io: http`` when there are none. ``get_routes``
reads the primary's weight (canary = 100 - primary). Weighted canary and blue/green only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from config import Canary, Capabilities, RouterRules
from traffic._objects import service_spec
from traffic._registry import RouterModule
from traffic._types import Weights
from traffic.cluster import Body, Kind
from traffic.routers._weighted_object import WeightedObjectRouter

TRAFFIC_ROUTE: Final = Kind(
    "kuma.io", "v1alpha1", "trafficroutes", "TrafficRoute", namespaced=False
)
MESH_ANNOTATION: Final = "kuma.io/mesh"
SERVICE_TAG: Final = "kuma.io/service"


class KumaRouter(WeightedObjectRouter):
    kind = TRAFFIC_ROUTE
    apex_annotations = True

    def desired_spec(self, canary: Canary, weights: Weights) -> Body:
        name = canary.spec.service_name
        return {
            "sources": [{"match": {SERVICE_TAG: "*"}}],
            "destinations": [{"match": {SERVICE_TAG: _service(canary, name)}}],
            "conf": {
                "split": [
                    {
                        "weight": weights.primary,
                        "destination": {SERVICE_TAG: _service(canary, f"{name}-primary")},
                    },
                    {
                        "weight": weights.canary,
                        "destination": {SERVICE_TAG: _service(canary, f"{name}-canary")},
                    },
                ]
            },
        }

    def read_weights(self, canary: Canary, body: Mapping[str, Any]) -> Weights:
        primary = f"{canary.spec.service_name}-primary"
        split = (((body.get("spec") or {}).get("conf")) or {}).get("split") or []
        return self.weights_from_primary(
            canary, split, lambda entry: _destination_service(entry) == primary
        )

    def where(self, canary: Canary) -> str:
        return f"TrafficRoute {self.object_name(canary)}"  # cluster-scoped: no namespace

    def extra_annotations(self, canary: Canary) -> dict[str, str]:
        apex = service_spec(canary).apex
        if apex is not None and apex.annotations is not None:
            return {}
        return {f"{service_spec(canary).port}.service.kuma.io": "http"}

    def extra_fields(self, canary: Canary) -> Body:
        return {"mesh": (canary.metadata.annotations or {}).get(MESH_ANNOTATION, "default")}


def _service(canary: Canary, name: str) -> str:
    return f"{name}_{canary.metadata.namespace}_svc_{service_spec(canary).port}"


def _destination_service(entry: Mapping[str, Any]) -> str:
    """The Kubernetes Service a split entry sends to: ``<name>`` of ``<name>_<ns>_svc_<port>``."""
    return str((entry.get("destination") or {}).get(SERVICE_TAG, "")).split("_")[0]


ROUTER = RouterModule(
    names=("kuma",),
    rules=RouterRules(label="kuma", capabilities=Capabilities()),
    build=lambda cluster, _provider, options: KumaRouter(
        cluster, selector_labels=options.selector_labels
    ),
    kinds=(TRAFFIC_ROUTE,),
)
