"""Providers ``appmesh`` (App Mesh controller ``v1beta1``) and ``appmesh:v1beta2``.

As Flagger's ``appmesh.go`` and ``appmesh_v1beta2.go``, in the canary's namespace:

* VirtualNodes ``<svc>-primary`` and ``<svc>-canary`` (v1beta1 also ``<svc>``, discovered at the
  primary's DNS name): one listener on the port (``grpc`` when ``service.portName`` says so, else
  ``http``), DNS service discovery of the matching ClusterIP Service, ``service.backends`` as
  backends (a ``arn:aws...`` backend by ARN in v1beta2); v1beta1 carries ``service.meshName``,
  v1beta2 a pod selector (``<selector label>: <value>-primary`` / ``<value>``) and the container
  port (``targetPort`` when numeric).
* The routing of ``<svc>``: one HTTP route on the first ``service.match`` uri prefix (or ``/``)
  whose ``weightedTargets`` are ``[<svc>-canary weight, <svc>-primary weight]``, with the retry
  policy (``service.retries``; ``gateway-error`` by default) and, in v1beta2, the per-request
  timeout. v1beta1 keeps the routes in VirtualService ``<svc>.<ns>``; v1beta2 in VirtualRouter
  ``<svc>``, with a VirtualService ``<svc>`` provided by it. A second routing object for
  ``<svc>-canary`` sends everything to the canary node.
* ``analysis.match``: route ``<svc>-a`` (priority 10) matches the analysis headers (exact,
  prefix, regex or suffix) and carries the weights; ``<svc>-b`` (priority 20) sends the rest to
  the primary (A/B testing 0/100; the canary strategy's steps split only the matching requests).
* ``service.hosts`` expose the primary VirtualService on the App Mesh gateway
  (``gateway.appmesh.k8s.aws/expose``, ``domain``, ``timeout``, ``retries`` annotations),
  written when the VirtualService is created; v1beta1 rewrites them whenever it updates the
  VirtualService's spec, as Flagger does (a change of ``hosts`` alone is picked up then).

``reconcile`` rebuilds every object with the weights read back, so it never moves traffic.
No mirroring, no session affinity. The builtin queries are App Mesh's (Envoy's) for both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from config import Canary, Capabilities, Problem, RouterRules, parse_duration
from traffic._errors import RoutingError
from traffic._objects import (
    NO_CHANGE,
    merge_diff,
    owned_object,
    patch_changes,
    replace_map,
    service_spec,
    without_none,
)
from traffic._registry import RouterModule, RouterOptions
from traffic._services import ClusterIPServices
from traffic._types import Router, Routes, Weights
from traffic.cluster import Body, Cluster, Kind, ObjectRef, ReadBody

_GROUP: Final = "appmesh.k8s.aws"
VIRTUAL_NODE_V1BETA1: Final = Kind(_GROUP, "v1beta1", "virtualnodes", "VirtualNode")
VIRTUAL_SERVICE_V1BETA1: Final = Kind(_GROUP, "v1beta1", "virtualservices", "VirtualService")
VIRTUAL_NODE_V1BETA2: Final = Kind(_GROUP, "v1beta2", "virtualnodes", "VirtualNode")
VIRTUAL_SERVICE_V1BETA2: Final = Kind(_GROUP, "v1beta2", "virtualservices", "VirtualService")
VIRTUAL_ROUTER_V1BETA2: Final = Kind(_GROUP, "v1beta2", "virtualrouters", "VirtualRouter")


@dataclass(frozen=True, slots=True)
class _Api:
    """How one App Mesh API version spells the same things."""

    v1beta2: bool
    node: Kind
    service: Kind

    @property
    def route_key(self) -> str:
        return "httpRoute" if self.v1beta2 else "http"

    def target(self, node: str, weight: int) -> Body:
        ref: Body = (
            {"virtualNodeRef": {"name": node}} if self.v1beta2 else {"virtualNodeName": node}
        )
        return {**ref, "weight": weight}

    def target_node(self, target: Mapping[str, Any]) -> str:
        if self.v1beta2:
            return str((target.get("virtualNodeRef") or {}).get("name", ""))
        return str(target.get("virtualNodeName", ""))


V1BETA1: Final = _Api(False, VIRTUAL_NODE_V1BETA1, VIRTUAL_SERVICE_V1BETA1)
V1BETA2: Final = _Api(True, VIRTUAL_NODE_V1BETA2, VIRTUAL_SERVICE_V1BETA2)


class AppMeshRouter:
    """Router for ``appmesh`` and ``appmesh:v1beta2``."""

    def __init__(self, cluster: Cluster, *, api: _Api, options: RouterOptions) -> None:
        self._cluster = cluster
        self._api = api
        self._services = ClusterIPServices(cluster, selector_labels=options.selector_labels)

    async def initialize(self, canary: Canary) -> None:
        await self._services.initialize(canary)

    async def reconcile(self, canary: Canary) -> None:
        await self._services.reconcile_apex(canary)
        name, ns = canary.spec.service_name, canary.metadata.namespace
        key, value = await self._services.selector(canary)
        nodes = [
            (f"{name}-primary", f"{name}-primary", f"{value}-primary"),
            (f"{name}-canary", f"{name}-canary", value),
        ]
        if not self._api.v1beta2:
            nodes.insert(0, (name, f"{name}-primary", f"{value}-primary"))
        for node, host, pods in nodes:
            spec = self._node_spec(canary, f"{host}.{ns}", {key: pods})
            await self._apply(canary, ObjectRef(self._api.node, ns, node), spec)
        weighted = await self._weighted(canary)
        current = Weights.all_primary()
        if weighted is not None:
            try:
                current = self._read(canary, weighted)
            except RoutingError:
                pass
        await self._apply_routing(canary, canary_router=False, weights=current, reconciling=True)
        await self._apply_routing(
            canary, canary_router=True, weights=Weights(0, 100), reconciling=True
        )

    async def set_routes(self, canary: Canary, weights: Weights) -> None:
        if await self._weighted(canary) is None:
            ref = self._weighted_ref(canary)
            raise RoutingError(
                f"{ref.kind.kind} {ref.name}.{ref.namespace} not found; reconcile creates it"
            )
        await self._apply_routing(canary, canary_router=False, weights=weights)

    async def get_routes(self, canary: Canary) -> Routes:
        body = await self._weighted(canary)
        if body is None:
            return Routes(Weights.all_primary())
        return Routes(self._read(canary, body))

    async def finalize(self, canary: Canary) -> None:
        await self._services.finalize_apex(canary)

    # ------------------------------------------------------------------ objects

    def _weighted_ref(self, canary: Canary) -> ObjectRef:
        name, ns = canary.spec.service_name, canary.metadata.namespace
        if self._api.v1beta2:
            return ObjectRef(VIRTUAL_ROUTER_V1BETA2, ns, name)
        return ObjectRef(VIRTUAL_SERVICE_V1BETA1, ns, f"{name}.{ns}")

    async def _weighted(self, canary: Canary) -> ReadBody | None:
        return await self._cluster.get(self._weighted_ref(canary))

    def _read(self, canary: Canary, body: Mapping[str, Any]) -> Weights:
        name = canary.spec.service_name
        ref = self._weighted_ref(canary)
        where = f"{ref.kind.kind} {ref.name}"
        routes = (body.get("spec") or {}).get("routes") or []
        route = (routes[0].get(self._api.route_key) or {}) if routes else {}
        targets = (route.get("action") or {}).get("weightedTargets") or []
        if len(targets) != 2:
            raise RoutingError(f"{where} routes not found")
        found = {self._api.target_node(t): int(t.get("weight", 0)) for t in targets}
        primary, canary_w = found.get(f"{name}-primary", 0), found.get(f"{name}-canary", 0)
        if primary == 0 and canary_w == 0:
            raise RoutingError(
                f"{where} does not contain routes for {name}-primary and {name}-canary"
            )
        try:
            return Weights(primary, canary_w)
        except ValueError as exc:
            raise RoutingError(f"{where}: {exc}") from None

    async def _apply_routing(
        self, canary: Canary, *, canary_router: bool, weights: Weights, reconciling: bool = False
    ) -> None:
        """``reconciling``: called by ``reconcile`` (its weights read back, so only a change of
        the spec makes a difference), where Flagger's v1beta1 router rewrites the gateway
        annotations; a weight change (``set_routes``) keeps them, as Flagger's SetRoutes does."""
        name, ns = canary.spec.service_name, canary.metadata.namespace
        router_name = f"{name}-canary" if canary_router else name
        routes = self._routes(canary, router_name, canary_router, weights)
        listeners = [{"portMapping": self._port_mapping(canary)}]
        annotations = {} if canary_router else _gateway_annotations(canary)
        if self._api.v1beta2:
            await self._apply(
                canary,
                ObjectRef(VIRTUAL_ROUTER_V1BETA2, ns, router_name),
                {"listeners": listeners, "routes": routes},
            )
            provider = {"virtualRouter": {"virtualRouterRef": {"name": router_name}}}
            await self._apply(
                canary,
                ObjectRef(VIRTUAL_SERVICE_V1BETA2, ns, router_name),
                {"provider": provider},
                annotations=annotations,
            )
            return
        spec = {
            "meshName": service_spec(canary).mesh_name,
            "virtualRouter": {"name": router_name, "listeners": listeners},
            "routes": routes,
        }
        await self._apply(
            canary,
            ObjectRef(VIRTUAL_SERVICE_V1BETA1, ns, f"{router_name}.{ns}"),
            spec,
            annotations=annotations,
            refresh_annotations=reconciling,
        )

    async def _apply(
        self,
        canary: Canary,
        ref: ObjectRef,
        spec: Body,
        *,
        annotations: Mapping[str, str] | None = None,
        refresh_annotations: bool = False,
    ) -> None:
        existing = await self._cluster.get(ref)
        if existing is None:
            await self._cluster.create(owned_object(canary, ref, spec, annotations=annotations))
            return
        # The App Mesh controller fills awsName and meshRef in v1beta2: keep them.
        have = existing.get("spec") or {}
        wanted = {**{k: have[k] for k in ("awsName", "meshRef") if k in have}, **spec}
        spec_patch = merge_diff(have, wanted)
        metadata: Body = {}
        if refresh_annotations and spec_patch is not NO_CHANGE and annotations:
            # Flagger's v1beta1 Reconcile rewrites the primary VirtualService's annotations as
            # the gateway ones (a whole new map) when it updates the spec, and only then; its
            # v1beta2 router writes them on creation only.
            have_annotations = (existing.get("metadata") or {}).get("annotations") or {}
            changed = replace_map(have_annotations, annotations)
            metadata = {"annotations": changed} if changed else {}
        await patch_changes(self._cluster, ref, spec_patch, metadata)

    # ------------------------------------------------------------------ specs

    def _port_mapping(self, canary: Canary) -> Body:
        svc = service_spec(canary)
        port = svc.port
        if self._api.v1beta2 and isinstance(svc.target_port, int) and svc.target_port > 0:
            port = svc.target_port
        protocol = "grpc" if "grpc" in (svc.port_name or "") else "http"
        return {"port": port, "protocol": protocol}

    def _node_spec(self, canary: Canary, host: str, pods: Mapping[str, str]) -> Body:
        svc = service_spec(canary)
        listener: Body = {"portMapping": self._port_mapping(canary)}
        backends: list[Body] = []
        for backend in svc.backends or ():
            if not self._api.v1beta2:
                backends.append({"virtualService": {"virtualServiceName": backend}})
            elif backend.startswith("arn:aws"):
                backends.append({"virtualService": {"virtualServiceARN": backend}})
            else:
                backends.append({"virtualService": {"virtualServiceRef": {"name": backend}}})
        if not self._api.v1beta2:
            return without_none(
                {
                    "meshName": svc.mesh_name,
                    "listeners": [listener],
                    "serviceDiscovery": {"dns": {"hostName": f"{host}"}},
                    "backends": backends or None,
                }
            )
        timeout = _per_request(canary)
        if timeout is not None:
            listener["timeout"] = {"http": timeout}
        return without_none(
            {
                "listeners": [listener],
                "serviceDiscovery": {"dns": {"hostname": f"{host}.svc.cluster.local."}},
                "podSelector": {"matchLabels": dict(pods)},
                "backends": backends or None,
            }
        )

    def _routes(
        self, canary: Canary, router_name: str, canary_router: bool, weights: Weights
    ) -> list[Body]:
        name = canary.spec.service_name
        prefix = _prefix(canary)

        def route(route_name: str, targets: list[Body], headers: list[Body] | None) -> Body:
            http: Body = {
                "match": without_none({"prefix": prefix, "headers": headers}),
                "action": {"weightedTargets": targets},
            }
            retry = self._retry_policy(canary)
            if retry is not None:
                http["retryPolicy"] = retry
            timeout = _per_request(canary)
            if self._api.v1beta2 and timeout is not None:
                http["timeout"] = timeout
            return {"name": route_name, self._api.route_key: http}

        if canary_router:
            weights = Weights(0, 100)
        weighted = [
            self._api.target(f"{name}-canary", weights.canary),
            self._api.target(f"{name}-primary", weights.primary),
        ]
        if canary.spec.effective_analysis.match and not canary_router:
            first = route(f"{name}-a", weighted, _headers(canary))
            rest = route(f"{name}-b", [self._api.target(f"{name}-primary", 100)], None)
            return [{**first, "priority": 10}, {**rest, "priority": 20}]
        return [route(router_name, weighted, None)]

    def _retry_policy(self, canary: Canary) -> Body | None:
        retries = service_spec(canary).retries
        if not retries:
            return None
        try:
            timeout_ms = int(parse_duration(str(retries.get("perTryTimeout", ""))) * 1000)
        except ValueError:
            timeout_ms = 250
        attempts = int(retries.get("attempts") or 0) or 1
        events = [e for e in str(retries.get("retryOn") or "gateway-error").split(",") if e]
        if self._api.v1beta2:
            return {
                "perRetryTimeout": {"unit": "ms", "value": timeout_ms},
                "maxRetries": attempts,
                "httpRetryEvents": events,
            }
        return {
            "perRetryTimeoutMillis": timeout_ms,
            "maxRetries": attempts,
            "httpRetryPolicyEvents": events,
        }


def _per_request(canary: Canary) -> Body | None:
    timeout = service_spec(canary).timeout
    if not timeout:
        return None
    try:
        return {"perRequest": {"unit": "ms", "value": int(parse_duration(timeout) * 1000)}}
    except ValueError:
        return None


def _prefix(canary: Canary) -> str:
    match = service_spec(canary).match or []
    uri = (match[0].get("uri") or {}) if match else {}
    return str(uri.get("prefix") or "/")


def _headers(canary: Canary) -> list[Body]:
    headers: list[Body] = []
    for match in canary.spec.effective_analysis.match or ():
        for name, rule in sorted((match.get("headers") or {}).items()):
            rule = rule or {}
            method = {k: rule[k] for k in ("exact", "prefix", "regex", "suffix") if rule.get(k)}
            headers.append({"name": name, "match": method})
    return headers


def _gateway_annotations(canary: Canary) -> dict[str, str]:
    svc = service_spec(canary)
    if not svc.hosts:
        return {}
    out = {
        "gateway.appmesh.k8s.aws/expose": "true",
        "gateway.appmesh.k8s.aws/domain": "".join(f"{h}," for h in svc.hosts),
    }
    if svc.timeout:
        out["gateway.appmesh.k8s.aws/timeout"] = svc.timeout
    attempts = int((svc.retries or {}).get("attempts") or 0)
    if attempts > 0:
        out["gateway.appmesh.k8s.aws/retries"] = str(attempts)
    return out


#: The HTTP retry events App Mesh's CRDs accept (``httpRetryEvents`` / ``httpRetryPolicyEvents``).
APP_MESH_RETRY_EVENTS: Final = ("server-error", "gateway-error", "client-error", "stream-error")


def _check(canary: Canary, analysis_key: str) -> Iterable[Problem]:
    analysis = canary.spec.effective_analysis
    if not analysis.effective_iterations:  # (A/B testing: as before)
        for i, match in enumerate(analysis.match or ()):
            if not match.get("headers"):
                # Flagger's makeHeaders reads headers only: route <svc>-a would then match
                # every request, not just these.
                yield Problem(
                    f"{analysis_key}.match[{i}]",
                    "the App Mesh router matches requests by headers only; without them this "
                    "condition would match every request, so every request would be stepped. "
                    "Give headers",
                )
    retries = canary.spec.service.retries if canary.spec.service else None
    retry_on = (retries or {}).get("retryOn")
    if retry_on:
        # Split as Flagger splits it (on commas, spaces kept); App Mesh's CRDs take these only,
        # and refuse the whole router on every write otherwise (Istio's 5xx, reset, ...).
        unknown = [e for e in str(retry_on).split(",") if e not in APP_MESH_RETRY_EVENTS]
        if unknown:
            yield Problem(
                "spec.service.retries.retryOn",
                f"App Mesh retries on {', '.join(APP_MESH_RETRY_EVENTS)} only (comma "
                f"separated, no spaces), not {', '.join(repr(e) for e in unknown)}: its API "
                "would refuse the route",
            )
    provider = canary.spec.provider or ""
    if not provider.startswith("appmesh:v1beta2") and not (
        canary.spec.service and canary.spec.service.mesh_name
    ):
        yield Problem(
            "spec.service.meshName",
            "required with provider appmesh (App Mesh v1beta1); or use appmesh:v1beta2",
        )


def _build(cluster: Cluster, provider: str, options: RouterOptions) -> Router:
    api = V1BETA2 if provider.startswith("appmesh:v1beta2") else V1BETA1
    return AppMeshRouter(cluster, api=api, options=options)


def _builtin_metrics(provider: str) -> str | None:
    return "appmesh:v1beta2" if provider.startswith("appmesh:v1beta2") else "appmesh"


ROUTER = RouterModule(
    names=("appmesh", "appmesh:v1beta2"),
    rules=RouterRules(
        label="App Mesh",
        capabilities=Capabilities(ab_testing=True, weighted_match=True),
        check=_check,
    ),
    build=_build,
    kinds=(
        VIRTUAL_NODE_V1BETA1,
        VIRTUAL_SERVICE_V1BETA1,
        VIRTUAL_NODE_V1BETA2,
        VIRTUAL_SERVICE_V1BETA2,
        VIRTUAL_ROUTER_V1BETA2,
    ),
    builtin_metrics=_builtin_metrics,
)
