"""Providers ``linkerd``, ``osm`` and ``smi:v1alpha1|2|3[:<mesh>]``: an SMI ``TrafficSplit``.

As Flagger's ``smi.go`` / ``smi_v1alpha2.go`` / ``smi_v1alpha3.go``: a TrafficSplit named
``<svc>`` in the canary's namespace, ``spec.service`` = the first of ``service.hosts`` or
``<svc>``, and ``spec.backends`` = ``[{service: <svc>-canary, weight}, {service: <svc>-primary,
weight}]`` (canary first, as Flagger writes them), created at 0/100. The API version follows the
provider: ``linkerd`` and ``smi:v1alpha1`` use ``split.smi-spec.io/v1alpha1``, whose weights are
Kubernetes quantities (written ``"100"``, read back in any quantity form such as ``"500m"``);
``osm`` and ``smi:v1alpha2`` use v1alpha2, ``smi:v1alpha3`` v1alpha3 (integer weights). For a
``smi:...:istio`` target mesh, ``service.gateways`` go into the annotation Istio's SMI adapter
reads. Weighted canary and blue/green only (no header matches, no mirroring), as in Flagger.

Builtin metrics: ``linkerd`` the Linkerd observer, ``osm`` OSM's; ``smi:<v>:<mesh>`` the mesh's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from config import Canary, Capabilities, RouterRules
from traffic._errors import RoutingError
from traffic._objects import service_spec
from traffic._registry import RouterModule, RouterOptions
from traffic._types import Router, Weights
from traffic.cluster import Body, Cluster, Kind
from traffic.routers._weighted_object import WeightedObjectRouter

TRAFFIC_SPLIT_V1ALPHA1: Final = Kind(
    "split.smi-spec.io", "v1alpha1", "trafficsplits", "TrafficSplit"
)
TRAFFIC_SPLIT_V1ALPHA2: Final = Kind(
    "split.smi-spec.io", "v1alpha2", "trafficsplits", "TrafficSplit"
)
TRAFFIC_SPLIT_V1ALPHA3: Final = Kind(
    "split.smi-spec.io", "v1alpha3", "trafficsplits", "TrafficSplit"
)
ISTIO_GATEWAYS_ANNOTATION: Final = "VirtualService.v1alpha3.networking.istio.io/spec.gateways"

_QUANTITY_SUFFIXES: Final = {"m": Decimal("0.001"), "k": Decimal(1000), "": Decimal(1)}


class SmiRouter(WeightedObjectRouter):
    """A TrafficSplit of one SMI version, for one target mesh."""

    def __init__(self, cluster: Cluster, *, kind: Kind, mesh: str, options: RouterOptions) -> None:
        super().__init__(cluster, selector_labels=options.selector_labels)
        self.kind = kind
        self._mesh = mesh

    def desired_spec(self, canary: Canary, weights: Weights) -> Body:
        name = canary.spec.service_name
        hosts = service_spec(canary).hosts or []
        return {
            "service": hosts[0] if hosts else name,
            "backends": [
                {"service": f"{name}-canary", "weight": self._weight(weights.canary)},
                {"service": f"{name}-primary", "weight": self._weight(weights.primary)},
            ],
        }

    def read_weights(self, canary: Canary, body: Mapping[str, Any]) -> Weights:
        name = canary.spec.service_name
        found: dict[str, int] = {}
        for backend in (body.get("spec") or {}).get("backends") or ():
            if backend.get("service") in (f"{name}-primary", f"{name}-canary"):
                found[backend["service"]] = self._read(backend.get("weight"), canary)
        return self.weights_or_error(
            canary, found.get(f"{name}-primary", 0), found.get(f"{name}-canary", 0)
        )

    def extra_annotations(self, canary: Canary) -> dict[str, str]:
        gateways = service_spec(canary).gateways or []
        if self._mesh == "istio" and gateways:
            return {ISTIO_GATEWAYS_ANNOTATION: json.dumps(gateways, separators=(",", ":"))}
        return {}

    def _weight(self, value: int) -> int | str:
        # v1alpha1 weights are resource.Quantity, serialised as strings.
        return str(value) if self.kind is TRAFFIC_SPLIT_V1ALPHA1 else value

    def _read(self, raw: Any, canary: Canary) -> int:
        where = self.where(canary)
        if isinstance(raw, bool):
            raise RoutingError(f"{where}: weight {raw!r} is not a number")
        if isinstance(raw, int):
            return raw
        text = str(raw).strip()
        suffix = text[-1:] if text[-1:] in ("m", "k") else ""
        try:
            value = Decimal(text[: len(text) - len(suffix)]) * _QUANTITY_SUFFIXES[suffix]
        except InvalidOperation:
            raise RoutingError(f"{where}: weight {raw!r} is not a quantity") from None
        return int(value)


def _version_and_mesh(provider: str) -> tuple[Kind, str]:
    if provider == "linkerd":
        return TRAFFIC_SPLIT_V1ALPHA1, "linkerd"
    if provider == "osm":
        return TRAFFIC_SPLIT_V1ALPHA2, "osm"
    _, version, *mesh = provider.split(":", 2)
    kind = {
        "v1alpha1": TRAFFIC_SPLIT_V1ALPHA1,
        "v1alpha2": TRAFFIC_SPLIT_V1ALPHA2,
        "v1alpha3": TRAFFIC_SPLIT_V1ALPHA3,
    }[version]
    return kind, mesh[0] if mesh else ""


def _build(cluster: Cluster, provider: str, options: RouterOptions) -> Router:
    kind, mesh = _version_and_mesh(provider)
    return SmiRouter(cluster, kind=kind, mesh=mesh, options=options)


def _builtin_metrics(provider: str) -> str | None:
    """``linkerd``/``osm`` have their own queries; ``smi:<v>:<mesh>`` uses the mesh's."""
    if provider in ("linkerd", "osm"):
        return provider
    mesh = provider.split(":", 2)[2] if provider.count(":") >= 2 else ""
    return mesh or None  # a bare smi:<version> names no mesh: MetricTemplates only


ROUTER = RouterModule(
    names=("linkerd", "osm", "smi:v1alpha1", "smi:v1alpha2", "smi:v1alpha3"),
    rules=RouterRules(label="SMI (linkerd, osm)", capabilities=Capabilities()),
    build=_build,
    kinds=(TRAFFIC_SPLIT_V1ALPHA1, TRAFFIC_SPLIT_V1ALPHA2, TRAFFIC_SPLIT_V1ALPHA3),
    builtin_metrics=_builtin_metrics,
)
