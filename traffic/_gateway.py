"""GatewayApiRouter: weights in a Gateway API HTTPRoute (providers ``gatewayapi:v1`` and
``gatewayapi:v1beta1``, flagger-behaviour §3.2).

An HTTPRoute ``<svc>`` in the canary's namespace, besides the ClusterIP services:
``parentRefs = service.gatewayRefs`` (required), ``hostnames = service.hosts``, one rule whose
matches are the mapped ``service.match`` (or ``PathPrefix /``), whose filters are the header
modifiers (sorted), URL rewrite, ``service.mirror`` request mirrors and (``gatewayapi:v1`` only,
as in Flagger) a CORS filter from ``service.corsPolicy``, with timeouts, and whose
``backendRefs`` carry the weights: ``[<svc>-primary weight, <svc>-canary weight]``.

* ``analysis.match``: rule 0 matches the analysis match crossed with the service matches (the
  analysis' headers/queryParams win) and carries the weighted pair; rule 1 sends the service
  matches to the primary only. A/B testing routes 0/100 there; in the canary strategy
  (``stepWeight``/``stepWeights``) the steps split only the matching requests, as in Flagger.
* Mirroring: a RequestMirror filter to ``<svc>-canary`` on the weighted rule, only when
  mirroring is asked for and ``iterations > 0`` (blue/green), as Flagger does.
* ``get_routes`` first checks each parent's ``Accepted`` condition (True and observed at the
  current generation), so the engine never steps on a route the gateway has not taken yet.
* ``reconcile`` rebuilds the route with the weights and mirror currently stored, so it never
  moves traffic; foreign annotations (other controllers') are kept.

Match kinds the Gateway API cannot express (e.g. ``sourceLabels``, header ``prefix``) are a
RoutingError rather than being dropped: a dropped A/B match would send all traffic to the canary.
Session affinity: Flagger's sticky rules before the weighted one, and ``Set-Cookie`` response
header filters on its backends (``traffic._session_affinity``). Imports only ``config``, the
Cluster seam and the shared helpers.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

from config import Canary, parse_duration
from traffic._errors import RoutingError
from traffic._objects import (
    DEFAULT_SELECTOR_LABELS,
    apex_metadata_patch,
    filter_metadata,
    merge_diff,
    owned_object,
    patch_changes,
    patch_spec,
    service_spec,
    without_none,
)
from traffic._services import ClusterIPServices
from traffic._session_affinity import (
    COOKIE_HEADER,
    SET_COOKIE_HEADER,
    affinity,
    canary_cookie,
    cookie_regex,
    cookie_to_expire,
    expire_cookie,
    interval_seconds,
    primary_cookie,
    set_cookie,
)
from traffic._types import Routes, Weights
from traffic.cluster import HTTP_ROUTE, HTTP_ROUTE_V1BETA1, Body, Cluster, ObjectRef

GATEWAY_GROUP: Final = "gateway.networking.k8s.io"
_MATCH_KEYS: Final = frozenset({"uri", "method", "headers", "queryParams", "name"})


class GatewayApiRouter:
    """Router for providers ``gatewayapi:v1`` and ``gatewayapi:v1beta1``."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        version: Literal["v1", "v1beta1"] = "v1",
        selector_labels: Iterable[str] = DEFAULT_SELECTOR_LABELS,
    ) -> None:
        self._cluster = cluster
        self._version: Literal["v1", "v1beta1"] = version
        self._kind = HTTP_ROUTE if version == "v1" else HTTP_ROUTE_V1BETA1
        self._services = ClusterIPServices(cluster, selector_labels=selector_labels)

    async def initialize(self, canary: Canary) -> None:
        _check_supported(canary)
        await self._services.initialize(canary)

    async def reconcile(self, canary: Canary) -> None:
        _check_supported(canary)
        await self._services.reconcile_apex(canary)
        ref = self._ref(canary)
        apex = service_spec(canary).apex
        labels = dict((apex.labels if apex else None) or {})
        annotations = filter_metadata(apex.annotations if apex else None)
        existing = await self._cluster.get(ref)
        if existing is None:
            spec = route_spec(canary, Weights.all_primary(), self._version)
            await self._cluster.create(
                owned_object(canary, ref, spec, labels=labels, annotations=annotations)
            )
            return
        try:
            current = _read_weights(canary, existing)
        except RoutingError:
            current = Weights.all_primary()  # a route we have not weighted yet
        spec_patch = merge_diff(
            existing.get("spec") or {}, route_spec(canary, current, self._version)
        )
        metadata = apex_metadata_patch(
            existing, canary, labels, annotations, merge_annotations=True
        )
        await patch_changes(self._cluster, ref, spec_patch, metadata)

    async def set_routes(self, canary: Canary, weights: Weights) -> None:
        _check_supported(canary)
        ref = self._ref(canary)
        existing = await self._cluster.get(ref)
        if existing is None:
            raise RoutingError(
                f"HTTPRoute {ref.name}.{ref.namespace} not found; reconcile creates it"
            )
        await patch_spec(self._cluster, ref, existing, route_spec(canary, weights, self._version))

    async def get_routes(self, canary: Canary) -> Routes:
        """The weights on the route; RoutingError while a parent has not accepted it."""
        route = await self._cluster.get(self._ref(canary))
        if route is None:
            return Routes(Weights.all_primary())
        _check_accepted(canary, route)
        return Routes(_read_weights(canary, route))

    async def finalize(self, canary: Canary) -> None:
        # The HTTPRoute is ours and goes with the Canary (owner reference); only the apex
        # Service may belong to the user.
        await self._services.finalize_apex(canary)

    def _ref(self, canary: Canary) -> ObjectRef:
        return ObjectRef(self._kind, canary.metadata.namespace, canary.spec.service_name)


def _check_supported(canary: Canary) -> None:
    if not service_spec(canary).gateway_refs:
        raise RoutingError("GatewayRefs must be specified when using Gateway API as a provider.")


def route_spec(canary: Canary, weights: Weights, version: Literal["v1", "v1beta1"] = "v1") -> Body:
    """The HTTPRoute spec that routes ``weights`` (Flagger's Reconcile + SetRoutes)."""
    svc = service_spec(canary)
    analysis = canary.spec.effective_analysis
    name = canary.spec.service_name
    primary, canary_svc = f"{name}-primary", f"{name}-canary"
    where = f"HTTPRoute {name}.{canary.metadata.namespace}"
    service_matches = _map_matches(svc.match, where) or [{"path": dict(_ANY_PATH)}]
    filters = _filters(canary, version)
    timeouts = without_none({"request": svc.timeout or None, "backendRequest": svc.backend_timeout})

    def rule(matches: list[Body], backends: list[Body], extra: list[Body]) -> Body:
        return without_none(
            {
                "matches": matches,
                "filters": [*copy.deepcopy(filters), *extra] or None,
                "backendRefs": backends,
                "timeouts": dict(timeouts) or None,
            }
        )

    mirror: list[Body] = []
    if weights.mirrored and analysis.effective_iterations > 0:
        mirror = [
            {
                "type": "RequestMirror",
                "requestMirror": {"backendRef": _backend(canary_svc, svc.port)},
            }
        ]
    weighted = [
        {**_backend(primary, svc.port), "weight": weights.primary},
        {**_backend(canary_svc, svc.port), "weight": weights.canary},
    ]
    if analysis.match:
        analysis_matches = _map_matches(analysis.match, where)
        if not analysis_matches:
            raise RoutingError(f"{where}: analysis.match has no condition the Gateway API can use")
        rules = [
            rule(_merge_matches(analysis_matches, service_matches), weighted, mirror),
            rule(service_matches, [{**_backend(primary, svc.port), "weight": 100}], []),
        ]
    else:
        weighted_rule = rule(service_matches, weighted, mirror)
        rules = [weighted_rule]
        if affinity(canary) is not None:
            sticky = _sticky_rules(canary, weighted_rule, weights, service_matches)
            rules = [*sticky, weighted_rule]
    return without_none(
        {
            "parentRefs": [_parent_ref(r) for r in svc.gateway_refs or ()],
            "hostnames": list(svc.hosts or ()) or None,
            "rules": rules,
        }
    )


def _with_response_header(filters: list[Body], header: Body) -> list[Body]:
    """``filters`` with ``header`` added to their ResponseHeaderModifier, or one appended.

    Gateway API refuses a rule with two ResponseHeaderModifier filters (a CEL rule of the CRD:
    "ResponseHeaderModifier filter cannot be repeated"), so the cookie expiry joins the one
    ``service.headers.response`` made. Flagger appends a second and the API server refuses every
    write of the route from then on."""
    for i, found in enumerate(filters):
        if found.get("type") == "ResponseHeaderModifier":
            modifier = dict(found.get("responseHeaderModifier") or {})
            modifier["add"] = [*(modifier.get("add") or []), header]
            return [*filters[:i], {**found, "responseHeaderModifier": modifier}, *filters[i + 1 :]]
    return [
        *filters,
        {"type": "ResponseHeaderModifier", "responseHeaderModifier": {"add": [header]}},
    ]


def _sticky_rules(
    canary: Canary, weighted: Body, weights: Weights, service_matches: list[Body]
) -> list[Body]:
    """Session affinity as Flagger's ``getSessionAffinityRouteRules``: with canary traffic, the
    canary backend's responses set its cookie and a rule sends requests carrying it to the canary
    (with ``primaryCookieName``, the same for the primary); at weight 0 a rule deletes the cookie
    (``<cookie>; Max-Age=-1``, Flagger's exact value) of requests carrying it. ``weighted`` is the
    weighted rule, changed in place."""
    sa = affinity(canary)
    assert sa is not None
    name, port = canary.spec.service_name, service_spec(canary).port
    primary, canary_svc = f"{name}-primary", f"{name}-canary"
    cookie = canary_cookie(canary)

    def add_cookie(value: str) -> Body:
        return {
            "type": "ResponseHeaderModifier",
            "responseHeaderModifier": {"add": [{"name": SET_COOKIE_HEADER, "value": value}]},
        }

    def sticky(cookie_value: str, backends: list[Body]) -> Body:
        header = {"name": COOKIE_HEADER, "type": "RegularExpression"}
        header["value"] = cookie_regex(cookie_value)
        matches = _merge_matches([{"headers": [header]}], service_matches)
        return {**copy.deepcopy(weighted), "matches": matches, "backendRefs": backends}

    if weights.canary == 0:
        previous = cookie_to_expire(canary)
        if previous is None:  # no cookie handed out yet: nothing to stick to or delete
            return []
        expiry = sticky(previous, copy.deepcopy(weighted["backendRefs"]))
        expiry["filters"] = _with_response_header(
            expiry.get("filters", []), {"name": SET_COOKIE_HEADER, "value": expire_cookie(previous)}
        )
        return [expiry]
    stay = primary_cookie(canary)
    for backend in weighted["backendRefs"]:
        if backend["name"] == canary_svc:
            backend["filters"] = [add_cookie(set_cookie(canary, cookie, sa.max_age))]
        elif backend["name"] == primary and stay:
            backend["filters"] = [add_cookie(set_cookie(canary, stay, interval_seconds(canary)))]
    rules = [
        sticky(
            cookie,
            [
                {**_backend(primary, port), "weight": 0},
                {**_backend(canary_svc, port), "weight": 100},
            ],
        )
    ]
    if stay:
        rules.append(
            sticky(
                stay,
                [
                    {**_backend(primary, port), "weight": 100},
                    {**_backend(canary_svc, port), "weight": 0},
                ],
            )
        )
    return rules


#: What the CRD defaults an HTTPRouteMatch's path to.
_ANY_PATH: Final = {"type": "PathPrefix", "value": "/"}


def _backend(name: str, port: int) -> Body:
    return {"group": "", "kind": "Service", "name": name, "port": port}


def _parent_ref(ref: Mapping[str, Any]) -> Body:
    # The API server defaults group and kind; writing them keeps reconcile free of false drift.
    return {"group": GATEWAY_GROUP, "kind": "Gateway", **copy.deepcopy(dict(ref))}


def _map_matches(matches: list[dict[str, Any]] | None, where: str) -> list[Body]:
    """Istio-style HTTPMatchRequests as Gateway API HTTPRouteMatches."""
    out: list[Body] = []
    for match in matches or ():
        unknown = sorted(set(match) - _MATCH_KEYS)
        if unknown:
            raise RoutingError(f"{where}: the Gateway API cannot match on {', '.join(unknown)}")
        mapped: Body = {}
        uri = match.get("uri")
        if uri:
            for kind, path_type in (
                ("regex", "RegularExpression"),
                ("exact", "Exact"),
                ("prefix", "PathPrefix"),
            ):
                if uri.get(kind):
                    mapped["path"] = {"type": path_type, "value": uri[kind]}
                    break
            else:
                raise RoutingError(f"{where}: unsupported path match {uri}")
        method = match.get("method")
        if method:
            if not method.get("exact"):
                raise RoutingError(f"{where}: unsupported method match {method}")
            mapped["method"] = method["exact"]
        for field, out_key in (("headers", "headers"), ("queryParams", "queryParams")):
            conditions = []
            for key in sorted(match.get(field) or {}):
                value = match[field][key] or {}
                if value.get("exact"):
                    conditions.append({"name": key, "type": "Exact", "value": value["exact"]})
                elif value.get("regex"):
                    conditions.append(
                        {"name": key, "type": "RegularExpression", "value": value["regex"]}
                    )
                else:
                    raise RoutingError(f"{where}: unsupported {field} match {key}: {value}")
            if conditions:
                mapped[out_key] = conditions
        if mapped:
            # The CRD defaults a match's path to PathPrefix /; writing it keeps a header-only
            # match from differing from the stored route, and being patched, on every tick.
            mapped.setdefault("path", dict(_ANY_PATH))
            out.append(mapped)
    return out


def _merge_matches(analysis: list[Body], service: list[Body]) -> list[Body]:
    merged = []
    for wanted in analysis:
        for base in service:
            match = copy.deepcopy(base)
            for key in ("headers", "queryParams"):
                if wanted.get(key):
                    match[key] = copy.deepcopy(wanted[key])
            merged.append(match)
    return merged


def _filters(canary: Canary, version: Literal["v1", "v1beta1"]) -> list[Body]:
    """Flagger's ``makeFilters``: header modifiers, URL rewrite, request mirrors and, on
    ``gatewayapi:v1`` only (Flagger's v1beta1 router has no CORS filter), CORS."""
    svc = service_spec(canary)
    filters: list[Body] = []
    headers = svc.headers or {}
    for side, kind, key in (
        ("request", "RequestHeaderModifier", "requestHeaderModifier"),
        ("response", "ResponseHeaderModifier", "responseHeaderModifier"),
    ):
        ops = headers.get(side)
        if ops is None:
            continue
        modifier = without_none(
            {
                "add": _pairs(ops.get("add")) or None,
                "set": _pairs(ops.get("set")) or None,
                "remove": list(ops.get("remove") or ()) or None,
            }
        )
        filters.append({"type": kind, key: modifier})
    rewrite = svc.rewrite
    if rewrite:
        url: Body = {}
        if rewrite.get("authority"):
            url["hostname"] = rewrite["authority"]
        if rewrite.get("uri"):
            if rewrite.get("type") == "ReplacePrefixMatch":
                url["path"] = {"type": "ReplacePrefixMatch", "replacePrefixMatch": rewrite["uri"]}
            else:
                url["path"] = {"type": "ReplaceFullPath", "replaceFullPath": rewrite["uri"]}
        filters.append({"type": "URLRewrite", "urlRewrite": url})
    filters.extend(
        {"type": "RequestMirror", "requestMirror": _with_backend_defaults(mirror)}
        for mirror in svc.mirror or ()
    )
    if version == "v1" and svc.cors_policy is not None:
        filters.append({"type": "CORS", "cors": _cors(svc.cors_policy)})
    return filters


def _with_backend_defaults(mirror: Mapping[str, Any]) -> Body:
    """A request mirror as the API server stores it: its backendRef's ``group`` and ``kind``
    default to the core group's Service, and written without them, every reconcile would see a
    difference and patch the route again."""
    out: Body = copy.deepcopy(dict(mirror))
    ref = out.get("backendRef")
    if isinstance(ref, dict):
        out["backendRef"] = {"group": "", "kind": "Service", **ref}
    return out


def _cors(policy: Mapping[str, Any]) -> Body:
    """Flagger's CORS filter from the Istio-style ``service.corsPolicy``: ``allowOrigins`` from the
    legacy ``allowOrigin`` strings (the Istio ``allowOrigins`` StringMatch entries are ignored, as
    Flagger's TestGatewayAPIRouter_makeFilters_CORS asserts), ``allowMethods``, ``allowHeaders``,
    ``exposeHeaders`` as given, ``allowCredentials`` when true and ``maxAge`` as the whole seconds
    of the Go duration (``24h`` -> 86400)."""
    return without_none(
        {
            "allowOrigins": [str(o) for o in policy.get("allowOrigin") or ()] or None,
            "allowMethods": [str(m) for m in policy.get("allowMethods") or ()] or None,
            "allowHeaders": [str(h) for h in policy.get("allowHeaders") or ()] or None,
            "exposeHeaders": [str(h) for h in policy.get("exposeHeaders") or ()] or None,
            "allowCredentials": True if policy.get("allowCredentials") is True else None,
            "maxAge": _cors_max_age(policy.get("maxAge")),
        }
    )


#: What the CRD defaults a CORS filter's ``maxAge`` to.
_CORS_MAX_AGE_DEFAULT: Final = 5


def _cors_max_age(value: Any) -> int:
    """Flagger writes ``int32(time.ParseDuration(maxAge).Seconds())``, an omitempty int32, so a
    missing, zero or unparsable ``maxAge`` is left out and the API server stores its default;
    writing that default keeps reconcile from patching the route on every tick."""
    if not isinstance(value, str) or not value:
        return _CORS_MAX_AGE_DEFAULT
    try:
        seconds = int(parse_duration(value))
    except ValueError:
        return _CORS_MAX_AGE_DEFAULT
    return seconds or _CORS_MAX_AGE_DEFAULT


def _pairs(mapping: Mapping[str, str] | None) -> list[Body]:
    return [{"name": k, "value": v} for k, v in sorted((mapping or {}).items())]


def _normal_parent(ref: Mapping[str, Any], namespace: str) -> tuple[Any, ...]:
    return (
        ref.get("group") or GATEWAY_GROUP,
        ref.get("kind") or "Gateway",
        ref.get("namespace") or namespace,
        ref.get("name"),
        ref.get("sectionName"),
        ref.get("port"),
    )


def _check_accepted(canary: Canary, route: Mapping[str, Any]) -> None:
    """Flagger's parent check: an ``Accepted`` condition must be True and current."""
    namespace = canary.metadata.namespace
    generation = int((route.get("metadata") or {}).get("generation", 0))
    parents = (route.get("status") or {}).get("parents") or ()
    for ref in (route.get("spec") or {}).get("parentRefs") or ():
        for parent in parents:
            if _normal_parent(parent.get("parentRef") or {}, namespace) != _normal_parent(
                ref, namespace
            ):
                continue
            for cond in parent.get("conditions") or ():
                observed = int(cond.get("observedGeneration", 0))
                if cond.get("type") == "Accepted" and (
                    cond.get("status") != "True" or observed < generation
                ):
                    raise RoutingError(
                        f"HTTPRoute {canary.spec.service_name}.{namespace} parent "
                        f"{ref.get('name')} is not ready (status: {cond.get('status')}, "
                        f"observed generation: {observed}, current generation: {generation})"
                    )


def _read_weights(canary: Canary, route: Mapping[str, Any]) -> Weights:
    name = canary.spec.service_name
    primary, canary_svc = f"{name}-primary", f"{name}-canary"
    primary_weight: int | None = None
    canary_weight: int | None = None
    mirrored = False
    for rule in (route.get("spec") or {}).get("rules") or ():
        backends = rule.get("backendRefs") or []
        # Only the weighted rule has two backends; the A/B fallback rule has the primary only.
        if len(backends) == 2:
            for backend in backends:
                if backend.get("name") == primary:
                    primary_weight = int(backend.get("weight", 1))
                elif backend.get("name") == canary_svc:
                    canary_weight = int(backend.get("weight", 1))
        for f in rule.get("filters") or ():
            target = ((f.get("requestMirror") or {}).get("backendRef") or {}).get("name")
            if f.get("type") == "RequestMirror" and target == canary_svc:
                mirrored = True
    where = f"HTTPRoute {name}.{canary.metadata.namespace}"
    if primary_weight is None or canary_weight is None:
        raise RoutingError(f"{where} has no rule routing to {primary} and {canary_svc}")
    try:
        return Weights(primary_weight, canary_weight, mirrored)
    except ValueError as exc:
        raise RoutingError(f"{where}: {exc}") from None
