"""Providers ``gatewayapi:v1`` and ``gatewayapi:v1beta1``: an HTTPRoute (``traffic._gateway``).

Needs ``spec.service.gatewayRefs``. The builtin queries are the generic HTTP observer's.
"""

from __future__ import annotations

from collections.abc import Iterable

from config import Canary, Capabilities, Problem, RouterRules
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
