"""``router_for``: the Router for a Canary's provider, from the router registry.

Unlike Flagger (which falls back to Istio for an unknown or empty provider), a provider no
router module serves is an error naming the ones that are built (our decision Q11). The engine
decides which provider a Canary without ``spec.provider`` gets, and must give the routers the
same selector labels it gives the workload. The routers themselves declare their names in
``traffic.routers`` (``traffic._registry``).
"""

from __future__ import annotations

from collections.abc import Iterable

from traffic._objects import DEFAULT_SELECTOR_LABELS
from traffic._registry import DEFAULT_INGRESS_ANNOTATIONS_PREFIX, build_router, supported_providers
from traffic._types import Router
from traffic.cluster import Cluster

#: Providers canary-engine can route for (kept for callers of the old constant).
SUPPORTED_PROVIDERS = supported_providers()


def router_for(
    provider: str,
    cluster: Cluster,
    *,
    selector_labels: Iterable[str] = DEFAULT_SELECTOR_LABELS,
    ingress_annotations_prefix: str = DEFAULT_INGRESS_ANNOTATIONS_PREFIX,
    ingress_class: str = "",
) -> Router:
    """A Router for ``provider`` on ``cluster``; NotSupportedError for any other provider.

    Pure construction: no I/O happens until the router's methods are awaited.
    """
    return build_router(
        provider,
        cluster,
        selector_labels=selector_labels,
        ingress_annotations_prefix=ingress_annotations_prefix,
        ingress_class=ingress_class,
    )
