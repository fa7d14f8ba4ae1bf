"""Provider ``contour``: a Contour ``HTTPProxy`` whose route services carry the weights.

As Flagger's ``contour.go``: an HTTPProxy ``<svc>`` (``projectcontour.io/v1``) in the canary's
namespace with one route: ``conditions: [{prefix}]`` (the first ``service.match`` uri prefix, or
``/``), ``timeoutPolicy`` ``{response: service.timeout, idle: 5m}`` and ``retryPolicy``
``{count: attempts, perTryTimeout}`` when set, and ``services: [<svc>-primary, <svc>-canary]``
on ``service.port`` with their weights; each sets ``l5d-dst-override`` to its own cluster-local
address so the route also works behind Linkerd. The controller's ingress class (Flagger's
``-ingress-class``) is written as ``projectcontour.io/ingress.class`` on creation.

``analysis.match``: route 0 matches every analysis header (exact, or ``contains`` for a
prefix/suffix match) under the prefix and carries the weights; route 1 sends the rest to the
primary. A/B testing routes 0/100 there; in the canary strategy (``stepWeight``/``stepWeights``)
the steps split only the matching requests, as Flagger's SetRoutes does. ``get_routes`` reads
the primary's weight of route 0 (canary = 100 - primary).
No mirroring, no session affinity (Flagger has neither for Contour).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from config import Canary, Capabilities, Problem, RouterRules
from traffic._errors import RoutingError
from traffic._objects import service_spec, service_timeouts, without_none
from traffic._registry import RouterModule, RouterOptions
from traffic._types import Weights
from traffic.cluster import Body, Cluster, Kind
from traffic.routers._weighted_object import WeightedObjectRouter

HTTP_PROXY: Final = Kind("projectcontour.io", "v1", "httpproxies", "HTTPProxy")
INGRESS_CLASS_ANNOTATION: Final = "projectcontour.io/ingress.class"


class ContourRouter(WeightedObjectRouter):
    kind = HTTP_PROXY

    def __init__(self, cluster: Cluster, options: RouterOptions) -> None:
        super().__init__(cluster, selector_labels=options.selector_labels)
        self._ingress_class = options.ingress_class

    def extra_annotations(self, canary: Canary) -> dict[str, str]:
        return {INGRESS_CLASS_ANNOTATION: self._ingress_class} if self._ingress_class else {}

    def desired_spec(self, canary: Canary, weights: Weights) -> Body:
        prefix = _prefix(canary)
        weighted = _route(canary, [{"prefix": prefix}], weights)
        if not canary.spec.effective_analysis.match:
            return {"routes": [weighted]}
        weighted["conditions"] = _header_conditions(canary, prefix)
        return {"routes": [weighted, _route(canary, [{"prefix": prefix}], Weights.all_primary())]}

    def read_weights(self, canary: Canary, body: Mapping[str, Any]) -> Weights:
        routes = (body.get("spec") or {}).get("routes") or []
        services = (routes[0].get("services") or []) if routes else []
        if len(services) < 2:
            raise RoutingError(f"{self.where(canary)} services not found")
        primary = f"{canary.spec.service_name}-primary"
        return self.weights_from_primary(canary, services, lambda s: s.get("name") == primary)


def _route(canary: Canary, conditions: list[Body], weights: Weights) -> Body:
    svc = service_spec(canary)
    name, ns = canary.spec.service_name, canary.metadata.namespace

    def service(host: str, weight: int) -> Body:
        return {
            "name": host,
            "port": svc.port,
            "weight": weight,
            "requestHeadersPolicy": {
                "set": [
                    {
                        "name": "l5d-dst-override",
                        "value": f"{host}.{ns}.svc.cluster.local:{svc.port}",
                    }
                ]
            },
        }

    retries = svc.retries or {}
    return without_none(
        {
            "conditions": conditions,
            "timeoutPolicy": {"response": svc.timeout, "idle": "5m"} if svc.timeout else None,
            "retryPolicy": without_none(
                {
                    "count": int(retries.get("attempts") or 0),
                    "perTryTimeout": retries.get("perTryTimeout"),
                }
            )
            if retries
            else None,
            "services": [
                service(f"{name}-primary", weights.primary),
                service(f"{name}-canary", weights.canary),
            ],
        }
    )


def _prefix(canary: Canary) -> str:
    match = service_spec(canary).match or []
    uri = (match[0].get("uri") or {}) if match else {}
    return str(uri.get("prefix") or "/")


def _header_conditions(canary: Canary, prefix: str) -> list[Body]:
    conditions: list[Body] = []
    for match in canary.spec.effective_analysis.match or ():
        for header, rule in sorted((match.get("headers") or {}).items()):
            rule = rule or {}
            value = rule.get("prefix") or rule.get("suffix")
            condition = (
                {"name": header, "contains": value}
                if value
                else {"name": header, "exact": rule.get("exact", "")}
            )
            conditions.append({"prefix": prefix, "header": condition})
    return conditions


#: The pattern Contour's CRD holds ``timeoutPolicy`` and ``retryPolicy`` durations to.
_CONTOUR_DURATION: Final = re.compile(
    r"(((\d*(\.\d*)?h)|(\d*(\.\d*)?m)|(\d*(\.\d*)?s)|(\d*(\.\d*)?ms)|(\d*(\.\d*)?us)"
    r"|(\d*(\.\d*)?µs)|(\d*(\.\d*)?ns))+|infinity|infinite)"
)


def _check(canary: Canary, analysis_key: str) -> Iterable[Problem]:
    for field, value in service_timeouts(canary).items():
        if not _CONTOUR_DURATION.fullmatch(value):
            # Contour's CRD refuses the HTTPProxy on every write (Flagger passes it on).
            yield Problem(
                field,
                f"Contour takes durations such as 30s, 1.5s or 500ms (or infinity), not {value!r}",
            )
    for i, match in enumerate(canary.spec.effective_analysis.match or ()):
        for header, rule in (match.get("headers") or {}).items():
            if (rule or {}).get("regex"):
                yield Problem(
                    f"{analysis_key}.match[{i}].headers.{header}",
                    "Contour matches headers exactly or by prefix/suffix (contains), not by "
                    "regex; use exact, prefix or suffix",
                )
        if not match.get("headers"):
            yield Problem(
                f"{analysis_key}.match[{i}]",
                "Contour A/B testing routes by headers only; give headers (exact, prefix or "
                "suffix)",
            )


ROUTER = RouterModule(
    names=("contour",),
    rules=RouterRules(
        label="contour",
        capabilities=Capabilities(ab_testing=True, weighted_match=True),
        check=_check,
    ),
    build=lambda cluster, _provider, options: ContourRouter(cluster, options),
    kinds=(HTTP_PROXY,),
)
