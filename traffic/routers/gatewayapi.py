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
