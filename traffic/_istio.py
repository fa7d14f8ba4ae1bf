"""IstioRouter: weights in an Istio VirtualService (provider ``istio``, flagger-behaviour §3.4).

Objects in the canary's namespace, besides the ClusterIP services:

* DestinationRules ``<svc>-canary`` and ``<svc>-primary`` (host = own name, ``trafficPolicy``
  from ``spec.service``);
* VirtualService ``<svc>``: hosts = ``service.hosts`` + ``<svc>`` (unless present or ``*``),
  gateways = ``service.gateways`` or ``[mesh]`` (both empty with ``delegation``); one HTTP route
  carrying match/rewrite/timeout/retries/corsPolicy/headers and
  ``route: [{destination.host: <svc>-primary, weight}, {destination.host: <svc>-canary, weight}]``.
  Mirroring sets ``http[0].mirror.host = <svc>-canary`` (+ ``mirrorPercentage`` from
  ``analysis.mirrorWeight``). With ``analysis.match`` it writes two HTTP routes: the analysis
  match (crossed with the service match) to the weighted pair, then the service match to the
  primary only. A/B testing routes 0/100 there; with ``stepWeight``/``stepWeights`` instead of
  ``iterations`` (the canary strategy) the steps split only the matching requests, as Flagger's
  SetRoutes does.

``reconcile`` rebuilds the desired VirtualService with the weights and mirror currently stored,
so it corrects drift without ever moving traffic; when it changes a pre-existing VirtualService
it did not create, it keeps the user's spec in ``flagger.kubernetes.io/original-configuration``
(unless kubectl's last-applied annotation already has it) and ``finalize`` restores from there.

Session affinity (``analysis.sessionAffinity``, ``traffic._session_affinity``): sticky routes
named ``sticky-route`` before the weighted one, and ``Set-Cookie`` response headers on its
destinations, as Flagger writes them.

TCP services (``service.appProtocol: tcp``, as Flagger's ``isTcp``): one ``tcp`` route instead,
matching the ports of ``service.match`` (L4), with the weighted pair; no mirror, A/B match or
session affinity (Flagger ignores them there too).

Imports only ``config``, the Cluster seam and the shared helpers.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from config import Canary
from traffic._errors import RoutingError
from traffic._objects import (
    DEFAULT_SELECTOR_LABELS,
    KUBECTL_ANNOTATION,
    NO_CHANGE,
    apex_metadata_patch,
    filter_metadata,
    is_owned_by,
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
from traffic.cluster import DESTINATION_RULE, VIRTUAL_SERVICE, Body, Cluster, ObjectRef

ORIGINAL_CONFIGURATION_ANNOTATION: Final = "flagger.kubernetes.io/original-configuration"
#: Name of the session-affinity route(s) (Flagger's ``stickyRouteName``).
STICKY_ROUTE: Final = "sticky-route"


class IstioRouter:
    """Router for provider ``istio``."""

    def __init__(
        self, cluster: Cluster, *, selector_labels: Iterable[str] = DEFAULT_SELECTOR_LABELS
    ) -> None:
        self._cluster = cluster
        self._services = ClusterIPServices(cluster, selector_labels=selector_labels)

    async def initialize(self, canary: Canary) -> None:
        _check_supported(canary)
        await self._services.initialize(canary)

    async def reconcile(self, canary: Canary) -> None:
        _check_supported(canary)
        await self._services.reconcile_apex(canary)
        name = canary.spec.service_name
        for host in (f"{name}-canary", f"{name}-primary"):
            await self._reconcile_destination_rule(canary, host)
        await self._reconcile_virtual_service(canary)

    async def set_routes(self, canary: Canary, weights: Weights) -> None:
        _check_supported(canary)
        ref = _vs_ref(canary)
        vs = await self._cluster.get(ref)
        if vs is None:
            raise RoutingError(
                f"VirtualService {ref.name}.{ref.namespace} not found; reconcile creates it"
            )
        await patch_spec(self._cluster, ref, vs, _vs_spec(canary, weights))

    async def get_routes(self, canary: Canary) -> Routes:
        vs = await self._cluster.get(_vs_ref(canary))
        if vs is None:
            return Routes(Weights.all_primary())
        return Routes(_read_weights(canary, vs))

    async def finalize(self, canary: Canary) -> None:
        """Restore a pre-existing VirtualService's spec, and hand the apex Service back."""
        ref = _vs_ref(canary)
        vs = await self._cluster.get(ref)
        if vs is not None:
            annotations = (vs.get("metadata") or {}).get("annotations") or {}
            stored: Any = None
            try:
                if KUBECTL_ANNOTATION in annotations:
                    stored = json.loads(annotations[KUBECTL_ANNOTATION]).get("spec")
                elif ORIGINAL_CONFIGURATION_ANNOTATION in annotations:
                    stored = json.loads(annotations[ORIGINAL_CONFIGURATION_ANNOTATION])
            except (ValueError, AttributeError):
                raise RoutingError(
                    f"VirtualService {ref.name}.{ref.namespace}: the stored original "
                    "configuration is not valid JSON; cannot restore it"
                ) from None
            if isinstance(stored, dict):
                await patch_spec(self._cluster, ref, vs, stored)
        await self._services.finalize_apex(canary)

    # ------------------------------------------------------------------ internals

    async def _reconcile_destination_rule(self, canary: Canary, host: str) -> None:
        ref = ObjectRef(DESTINATION_RULE, canary.metadata.namespace, host)
        desired = without_none({"host": host, "trafficPolicy": service_spec(canary).traffic_policy})
        existing = await self._cluster.get(ref)
        if existing is None:
            await self._cluster.create(owned_object(canary, ref, desired))
        else:
            await patch_spec(self._cluster, ref, existing, desired)

    async def _reconcile_virtual_service(self, canary: Canary) -> None:
        ref = _vs_ref(canary)
        apex = service_spec(canary).apex
        labels = dict((apex.labels if apex else None) or {})
        annotations = filter_metadata(apex.annotations if apex else None)
        existing = await self._cluster.get(ref)
        if existing is None:
            spec = _vs_spec(canary, Weights.all_primary())
            await self._cluster.create(
                owned_object(canary, ref, spec, labels=labels, annotations=annotations)
            )
            return
        try:
            current = _read_weights(canary, existing)
        except RoutingError:
            current = Weights.all_primary()  # a user's VirtualService we have not routed yet
        spec = existing.get("spec") or {}
        spec_patch = merge_diff(spec, _vs_spec(canary, current))
        have_annotations = (existing.get("metadata") or {}).get("annotations") or {}
        if (
            spec_patch is not NO_CHANGE
            and not is_owned_by(existing, canary)
            and KUBECTL_ANNOTATION not in have_annotations
            and ORIGINAL_CONFIGURATION_ANNOTATION not in have_annotations
        ):
            # Keep the user's own spec once, before the first change, so finalize can restore it
            # (not there yet, so the patch always writes it).
            original = json.dumps(spec, separators=(",", ":"), sort_keys=True)
            annotations = {**annotations, ORIGINAL_CONFIGURATION_ANNOTATION: original}
        metadata = apex_metadata_patch(
            existing,
            canary,
            labels,
            annotations,
            keep_annotations=(KUBECTL_ANNOTATION, ORIGINAL_CONFIGURATION_ANNOTATION),
        )
        await patch_changes(self._cluster, ref, spec_patch, metadata)


def _is_tcp(canary: Canary) -> bool:
    return (service_spec(canary).app_protocol or "").lower() == "tcp"


def _check_supported(canary: Canary) -> None:
    spec = service_spec(canary)
    if spec.delegation and (spec.hosts or spec.gateways):
        raise RoutingError(
            f"VirtualService {canary.spec.service_name}.{canary.metadata.namespace} cannot have "
            "hosts and gateways when delegation enabled"
        )


def _vs_ref(canary: Canary) -> ObjectRef:
    return ObjectRef(VIRTUAL_SERVICE, canary.metadata.namespace, canary.spec.service_name)


def _vs_spec(canary: Canary, weights: Weights) -> Body:
    """The VirtualService spec that routes ``weights`` (Flagger's reconcile + SetRoutes)."""
    svc = service_spec(canary)
    analysis = canary.spec.effective_analysis
    name = canary.spec.service_name
    primary, canary_host = f"{name}-primary", f"{name}-canary"
    hosts = list(svc.hosts or ())
    if not any(h in (name, "*") for h in hosts):
        hosts.append(name)
    gateways = list(svc.gateways or ()) or ["mesh"]
    if svc.delegation:
        hosts, gateways = [], []
    with_port = svc.port_discovery and (
        (bool(svc.gateways) and (svc.gateways or [""])[0] != "mesh") or svc.delegation
    )

    def destination(host: str, weight: int) -> Body:
        dest: Body = {"host": host}
        if with_port:
            dest["port"] = {"number": svc.port}
        return {"destination": dest, "weight": weight}

    weighted = [destination(primary, weights.primary), destination(canary_host, weights.canary)]
    if _is_tcp(canary):
        # L4: the ports of service.match (Flagger's canaryToL4Match), the weighted pair only
        ports = [without_none({"port": m.get("port") or None}) for m in svc.match or ()]
        tcp = [without_none({"match": ports or None, "route": weighted})]
        return without_none({"hosts": hosts or None, "gateways": gateways or None, "tcp": tcp})
    if analysis.match:
        # The fallback route carries the primary's weight as Flagger's SetRoutes writes it
        # (100 outside a run; Istio sends all of a one-destination route's traffic there).
        http = [
            _http_route(canary, _merge_matches(analysis.match, svc.match), weighted),
            _http_route(canary, svc.match, [destination(primary, weights.primary)]),
        ]
    else:
        weighted_route = _http_route(canary, svc.match, weighted)
        http = [weighted_route]
        if affinity(canary) is not None:
            sticky = _sticky_routes(canary, weighted_route, weights, destination)
            http = [*sticky, weighted_route]
        if weights.mirrored:
            http[0]["mirror"] = {"host": canary_host}
            if analysis.mirror_weight:
                http[0]["mirrorPercentage"] = {"value": analysis.mirror_weight}
    return without_none({"hosts": hosts or None, "gateways": gateways or None, "http": http})


def _sticky_routes(
    canary: Canary, weighted: Body, weights: Weights, destination: Callable[[str, int], Body]
) -> list[Body]:
    """Session affinity (Flagger's sticky route): with canary traffic, the canary's responses
    set its cookie and requests carrying it go to the canary (and, with ``primaryCookieName``,
    the primary's set theirs and stay there); at weight 0 requests carrying the cookie get it
    deleted (``<cookie>; Max-Age=-1``, Flagger's exact value). ``weighted`` is the weighted
    route, changed in place."""
    sa = affinity(canary)
    assert sa is not None
    svc = service_spec(canary)
    name = canary.spec.service_name
    primary, canary_host = f"{name}-primary", f"{name}-canary"
    cookie = canary_cookie(canary)

    def sticky(cookie_value: str, route: list[Body]) -> Body:
        match = _merge_matches(
            [{"headers": {COOKIE_HEADER: {"regex": cookie_regex(cookie_value)}}}], svc.match
        )
        return {**copy.deepcopy(weighted), "name": STICKY_ROUTE, "match": match, "route": route}

    if weights.canary == 0:
        previous = cookie_to_expire(canary)
        if previous is None:  # no cookie handed out yet: nothing to stick to or delete
            return []
        expiry = sticky(previous, copy.deepcopy(weighted["route"]))
        headers = expiry.setdefault("headers", {})
        response = headers.setdefault("response", {})
        response.setdefault("add", {})[SET_COOKIE_HEADER] = expire_cookie(previous)
        return [expiry]
    for dest in weighted["route"]:
        host = dest["destination"]["host"]
        if host == canary_host:
            value = set_cookie(canary, cookie, sa.max_age)
        elif host == primary and primary_cookie(canary):
            value = set_cookie(canary, primary_cookie(canary) or "", interval_seconds(canary))
        else:
            continue
        dest["headers"] = {"response": {"add": {SET_COOKIE_HEADER: value}}}
    routes = [sticky(cookie, [destination(primary, 0), destination(canary_host, 100)])]
    stay = primary_cookie(canary)
    if stay:
        routes.append(sticky(stay, [destination(primary, 100), destination(canary_host, 0)]))
    return routes


def _http_route(canary: Canary, match: list[dict[str, Any]] | None, route: list[Body]) -> Body:
    svc = service_spec(canary)
    rewrite = {k: v for k, v in (svc.rewrite or {}).items() if k in ("uri", "authority") and v}
    return without_none(
        {
            "match": copy.deepcopy(match) or None,
            "rewrite": rewrite or None,
            "timeout": svc.timeout or None,
            "retries": copy.deepcopy(svc.retries),
            "corsPolicy": copy.deepcopy(svc.cors_policy),
            "headers": copy.deepcopy(svc.headers),
            "route": route,
        }
    )


def _merge_matches(
    analysis: list[dict[str, Any]], service: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """Every analysis match crossed with every service match; the analysis' headers and
    sourceLabels win (Flagger's ``mergeMatchConditions``)."""
    if not service:
        return copy.deepcopy(analysis)
    merged = []
    for wanted in analysis:
        for base in service:
            match = copy.deepcopy(base)
            for key in ("headers", "sourceLabels"):
                if wanted.get(key) is not None:
                    match[key] = copy.deepcopy(wanted[key])
            merged.append(match)
    return merged


def _read_weights(canary: Canary, vs: Mapping[str, Any]) -> Weights:
    name = canary.spec.service_name
    primary, canary_host = f"{name}-primary", f"{name}-canary"
    chosen: Mapping[str, Any] = {}
    routes_key = "tcp" if _is_tcp(canary) else "http"
    for http in (vs.get("spec") or {}).get(routes_key) or ():
        if any(
            (r.get("destination") or {}).get("host") == canary_host for r in http.get("route") or ()
        ):
            chosen = http
    primary_weight = canary_weight = 0
    for r in chosen.get("route") or ():
        host = (r.get("destination") or {}).get("host")
        if host == primary:
            primary_weight = int(r.get("weight", 0))
        elif host == canary_host:
            canary_weight = int(r.get("weight", 0))
    mirrored = bool((chosen.get("mirror") or {}).get("host"))
    ns = canary.metadata.namespace
    if primary_weight == 0 and canary_weight == 0:
        raise RoutingError(
            f"VirtualService {name}.{ns} does not contain routes for {primary} and {canary_host}"
        )
    try:
        return Weights(primary_weight, canary_weight, mirrored)
    except ValueError as exc:
        raise RoutingError(f"VirtualService {name}.{ns}: {exc}") from None
