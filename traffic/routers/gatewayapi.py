"""Providers ``gatewayapi:v1`` and ``gatewayapi:v1beta1``: an HTTPRoute (``traffic._gateway``).

Needs ``spec.service.gatewayRefs``. The builtin queries are the generic HTTP observer's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from config import Canary, Capabilities, Problem, RouterRules, parse_duration
from traffic._gateway import GatewayApiRouter
from traffic._registry import RouterModule, RouterOptions
from traffic._types import Router
from traffic.cluster import HTTP_ROUTE, HTTP_ROUTE_V1BETA1, Cluster


def _check(canary: Canary, analysis_key: str) -> Iterable[Problem]:
    if not (canary.spec.service and canary.spec.service.gateway_refs):
        yield Problem(
            "spec.service.gatewayRefs",
            "GatewayRefs must be specified when using Gateway API as a provider",
        )
    yield from _prefix_rewrite_problems(canary, analysis_key)
    yield from _route_value_problems(canary, analysis_key)


#: Gateway API's Duration (GEP-2257) and Hostname patterns, and its HTTP methods: values outside
#: them are refused by the HTTPRoute CRD on every write.
_DURATION = re.compile(r"([0-9]{1,5}(h|m|s|ms)){1,4}")
_HOSTNAME = re.compile(r"(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)


def _route_value_problems(canary: Canary, analysis_key: str) -> Iterable[Problem]:
    """Values the loader takes (Istio's forms) that the HTTPRoute CRD refuses."""
    service = canary.spec.service
    if service is None:
        return
    timeouts = {"timeout": service.timeout, "backendTimeout": service.backend_timeout}
    for key, value in timeouts.items():
        if value and not _DURATION.fullmatch(value):
            yield Problem(
                f"spec.service.{key}",
                f"the Gateway API takes durations such as 30s, 1m30s or 500ms (whole numbers "
                f"of h, m, s or ms), not {value!r}",
            )
    request, backend = service.timeout, service.backend_timeout
    if (
        request
        and backend
        and _DURATION.fullmatch(request)
        and _DURATION.fullmatch(backend)
        and parse_duration(request) > 0  # a request timeout of 0s is none: any backend one goes
        and parse_duration(backend) > parse_duration(request)
    ):
        yield Problem(
            "spec.service.backendTimeout",
            f"must not be longer than spec.service.timeout ({backend} > {request}): the Gateway "
            "API refuses such a route",
        )
    for i, host in enumerate(service.hosts or ()):
        if len(host) > 253 or not _HOSTNAME.fullmatch(host):
            yield Problem(
                f"spec.service.hosts[{i}]",
                f"{host!r} is not a hostname the Gateway API takes (lowercase DNS names, "
                "optionally starting with '*.'; no bare '*')",
            )
    conditions = (
        ("spec.service.match", service.match),
        (f"{analysis_key}.match", canary.spec.effective_analysis.match),
    )
    methods = ", ".join(sorted(_METHODS))
    for key, matches in conditions:
        for i, match in enumerate(matches or ()):
            method = (match.get("method") or {}).get("exact") if isinstance(match, dict) else None
            if method and method not in _METHODS:
                yield Problem(
                    f"{key}[{i}].method.exact",
                    f"the Gateway API takes an upper-case HTTP method ({methods}), not {method!r}",
                )


def _prefix_rewrite_problems(canary: Canary, analysis_key: str) -> Iterable[Problem]:
    """The HTTPRoute CRD takes a ``ReplacePrefixMatch`` rewrite only on a rule with exactly one
    match, a path prefix (a CEL rule of HTTPRouteRule); the rewrite goes on every rule, whose
    matches are ``service.match`` (crossed with ``analysis.match`` on the first), so a Canary
    outside that would have every write of its route refused (Flagger writes it all the same)."""
    service = canary.spec.service
    rewrite = (service.rewrite if service else None) or {}
    if not (rewrite.get("uri") and rewrite.get("type") == "ReplacePrefixMatch"):
        return
    service_matches = list((service.match if service else None) or [])
    analysis_matches = list(canary.spec.effective_analysis.match or [])
    most = max(1, len(service_matches)) * max(1, len(analysis_matches))
    if most > 1:
        yield Problem(
            "spec.service.rewrite",
            f"a ReplacePrefixMatch rewrite needs exactly one match per HTTPRoute rule; this "
            f"Canary's first rule has {most} ({len(analysis_matches)} in {analysis_key}.match "
            f"× {max(1, len(service_matches))} of spec.service.match), which the Gateway API "
            "refuses: use type ReplaceFullPath, or one condition",
        )
    elif service_matches and (uri := service_matches[0].get("uri")) and not uri.get("prefix"):
        yield Problem(
            "spec.service.match[0].uri",
            "a ReplacePrefixMatch rewrite needs its one match to be a path prefix (uri.prefix), "
            "which the Gateway API requires: use uri.prefix, or type ReplaceFullPath",
        )


def _build(cluster: Cluster, provider: str, options: RouterOptions) -> Router:
    if provider.startswith("gatewayapi:v1beta1"):
        return GatewayApiRouter(cluster, version="v1beta1", selector_labels=options.selector_labels)
    return GatewayApiRouter(cluster, version="v1", selector_labels=options.selector_labels)


ROUTER = RouterModule(
    names=("gatewayapi:v1", "gatewayapi:v1beta1"),
    rules=RouterRules(
        label="Gateway API",
        capabilities=Capabilities(
            ab_testing=True, weighted_match=True, mirroring=True, session_affinity=True
        ),
        check=_check,
    ),
    build=_build,
    kinds=(HTTP_ROUTE, HTTP_ROUTE_V1BETA1),
    # Flagger's observer factory matches the prefix: "gatewayapi:v1:<anything>" runs these too.
    builtin_metrics=lambda provider: (
        "gatewayapi:v1beta1" if provider.startswith("gatewayapi:v1beta1") else "gatewayapi:v1"
    ),
)
