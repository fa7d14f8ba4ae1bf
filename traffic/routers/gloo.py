"""Provider ``gloo``: a Gloo Edge ``RouteTable`` over two generated ``Upstream``s.

As Flagger's ``gloo.go``: Upstreams (``gloo.solo.io/v1``) ``<ns>-<svc>-primaryupstream-<port>``
and ``<ns>-<svc>-canaryupstream-<port>`` are created once (never updated), each a ``kube``
upstream of the ``-primary`` / ``-canary`` Service (its selector, ``service.port``), with the
connection settings (TLS, circuit breakers, load balancing, HTTP/2...) copied from the Upstream
named by ``spec.upstreamRef`` when given; so Gloo's discovery is not needed. The RouteTable
``<svc>`` (``gateway.solo.io/v1``) has one route, ``inheritablePathMatchers: true``, whose
``action.multi.destinations`` are the two upstreams with their weights; the user's
VirtualService delegates to it. ``service.apex`` labels and annotations go on the RouteTable.

``analysis.match``: the analysis' header matches (exact or regex) and methods become the route's
``matchers``, as in Flagger, so the RouteTable routes only the matching requests (A/B testing
0/100, the canary strategy's steps on them; requests that do not match are left to the rest of
the user's VirtualService). No mirroring, no session affinity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from config import Canary, Capabilities, Problem, RouterRules
from traffic._errors import RoutingError
from traffic._objects import owned_metadata, service_spec, without_none
from traffic._registry import RouterModule, RouterOptions
from traffic._types import Weights
from traffic.cluster import SERVICE, Body, Cluster, Kind, ObjectRef
from traffic.routers._weighted_object import WeightedObjectRouter

ROUTE_TABLE: Final = Kind("gateway.solo.io", "v1", "routetables", "RouteTable")
UPSTREAM: Final = Kind("gloo.solo.io", "v1", "upstreams", "Upstream")

#: Upstream settings Flagger copies from the ``upstreamRef`` Upstream.
_COPIED: Final = (
    "labels",
    "sslConfig",
    "circuitBreakers",
    "connectionConfig",
    "loadBalancerConfig",
    "useHttp2",
    "initialStreamWindowSize",
    "initialConnectionWindowSize",
    "httpProxyHostname",
)


class GlooRouter(WeightedObjectRouter):
    kind = ROUTE_TABLE
    apex_labels = True
    apex_annotations = True
    keeps_metadata_current = True

    def __init__(self, cluster: Cluster, options: RouterOptions) -> None:
        super().__init__(cluster, selector_labels=options.selector_labels)

    async def reconcile(self, canary: Canary) -> None:
        await self._create_upstream(canary, "primary")
        await self._create_upstream(canary, "canary")
        await super().reconcile(canary)

    def desired_spec(self, canary: Canary, weights: Weights) -> Body:
        ns = canary.metadata.namespace

        def destination(role: str, weight: int) -> Body:
            name = upstream_name(canary, role)
            return {"destination": {"upstream": {"name": name, "namespace": ns}}, "weight": weight}

        route: Body = {
            "inheritablePathMatchers": True,
            "action": {
                "multi": {
                    "destinations": [
                        destination("primary", weights.primary),
                        destination("canary", weights.canary),
                    ]
                }
            },
        }
        matchers = _matchers(canary)
        if matchers:
            route["matchers"] = matchers
        return {"routes": [route]}

    def read_weights(self, canary: Canary, body: Mapping[str, Any]) -> Weights:
        routes = (body.get("spec") or {}).get("routes") or []
        action = (routes[0].get("action") or {}) if routes else {}
        destinations = (action.get("multi") or {}).get("destinations") or []
        if len(destinations) < 2:
            raise RoutingError(f"{self.where(canary)} destinations not found")
        primary = upstream_name(canary, "primary")
        return self.weights_from_primary(
            canary,
            destinations,
            lambda d: ((d.get("destination") or {}).get("upstream") or {}).get("name") == primary,
        )

    async def _create_upstream(self, canary: Canary, role: str) -> None:
        ns = canary.metadata.namespace
        ref = ObjectRef(UPSTREAM, ns, upstream_name(canary, role))
        if await self._cluster.get(ref) is not None:
            return  # create-only, as Flagger
        svc_name = f"{canary.spec.service_name}-{role}"
        svc = await self._cluster.get(ObjectRef(SERVICE, ns, svc_name))
        if svc is None:
            raise RoutingError(f"service {svc_name}.{ns} not found; initialize creates it")
        spec: Body = {}
        config_ref = canary.spec.upstream_ref
        if config_ref is not None:
            config_ns = config_ref.namespace or ns
            config = await self._cluster.get(ObjectRef(UPSTREAM, config_ns, config_ref.name))
            if config is None:
                raise RoutingError(
                    f"config upstream {config_ref.name}.{config_ns} (spec.upstreamRef) not found"
                )
            found = config.get("spec") or {}
            spec = {key: found[key] for key in _COPIED if key in found}
        spec["kube"] = {
            "serviceName": svc_name,
            "serviceNamespace": ns,
            "servicePort": service_spec(canary).port,
            "selector": dict((svc.get("spec") or {}).get("selector") or {}),
        }
        await self._cluster.create(
            {
                "apiVersion": UPSTREAM.api_version,
                "kind": UPSTREAM.kind,
                "metadata": owned_metadata(canary, ref.name, ns),
                "spec": spec,
            }
        )


def upstream_name(canary: Canary, role: str) -> str:
    port = service_spec(canary).port
    return f"{canary.metadata.namespace}-{canary.spec.service_name}-{role}upstream-{port}"


def _matchers(canary: Canary) -> list[Body]:
    headers: list[Body] = []
    methods: list[str] = []
    for match in canary.spec.effective_analysis.match or ():
        for name, rule in sorted((match.get("headers") or {}).items()):
            rule = rule or {}
            if rule.get("regex"):
                headers.append({"name": name, "value": rule["regex"], "regex": True})
            else:
                headers.append({"name": name, "value": rule.get("exact", "")})
        method = (match.get("method") or {}).get("exact")
        if method:
            methods.append(method)
    if not headers and not methods:
        return []
    return [without_none({"headers": headers or None, "methods": methods or None})]


def _check(canary: Canary, analysis_key: str) -> Iterable[Problem]:
    analysis = canary.spec.effective_analysis
    if analysis.effective_iterations:
        return  # A/B testing: as before
    for i, match in enumerate(analysis.match or ()):
        if not match.get("headers") and not (match.get("method") or {}).get("exact"):
            # Flagger's getMatchers reads headers and methods only: without either the weighted
            # route would match every request, not just these.
            yield Problem(
                f"{analysis_key}.match[{i}]",
                "the gloo router matches requests by headers (exact or regex) and method only; "
                "without either this condition would match every request, so every request "
                "would be stepped. Give headers or a method",
            )


ROUTER = RouterModule(
    names=("gloo",),
    rules=RouterRules(
        label="gloo",
        capabilities=Capabilities(ab_testing=True, weighted_match=True),
        check=_check,
    ),
    build=lambda cluster, _provider, options: GlooRouter(cluster, options),
    kinds=(ROUTE_TABLE, UPSTREAM),
    # Flagger's observer factory matches the prefix: "gloo:<anything>" runs gloo's queries too.
    builtin_metrics=lambda _provider: "gloo",
)
