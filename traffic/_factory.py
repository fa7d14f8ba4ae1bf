"""``router_for``: the Router for a Canary's provider, from an explicit registry.

Unlike Flagger (which falls back to Istio for an unknown or empty provider), an unsupported
provider is an error naming the ones that are supported (our decision Q11). The engine decides
which provider a Canary without ``spec.provider`` gets, and must give the routers the same
selector labels it gives the workload.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from config import NotSupportedError
from traffic._gateway import GatewayApiRouter
from traffic._istio import IstioRouter
from traffic._kubernetes_router import KubernetesRouter
from traffic._nginx import DEFAULT_ANNOTATIONS_PREFIX, NginxRouter
from traffic._objects import DEFAULT_SELECTOR_LABELS
from traffic._types import Router
from traffic.cluster import Cluster


@dataclass(frozen=True, slots=True)
class _Options:
    selector_labels: tuple[str, ...]
    ingress_annotations_prefix: str


_REGISTRY: Final[Mapping[str, Callable[[Cluster, _Options], Router]]] = MappingProxyType(
    {
        "kubernetes": lambda c, o: KubernetesRouter(c, selector_labels=o.selector_labels),
        "istio": lambda c, o: IstioRouter(c, selector_labels=o.selector_labels),
        "gatewayapi:v1": lambda c, o: GatewayApiRouter(
            c, version="v1", selector_labels=o.selector_labels
        ),
        "gatewayapi:v1beta1": lambda c, o: GatewayApiRouter(
            c, version="v1beta1", selector_labels=o.selector_labels
        ),
        "nginx": lambda c, o: NginxRouter(
            c,
            selector_labels=o.selector_labels,
            annotations_prefix=o.ingress_annotations_prefix,
        ),
    }
)

#: Providers canary-engine can route for, in the order they are documented.
SUPPORTED_PROVIDERS: Final = tuple(_REGISTRY)


def router_for(
    provider: str,
    cluster: Cluster,
    *,
    selector_labels: Iterable[str] = DEFAULT_SELECTOR_LABELS,
    ingress_annotations_prefix: str = DEFAULT_ANNOTATIONS_PREFIX,
) -> Router:
    """A Router for ``provider`` on ``cluster``; NotSupportedError for any other provider.

    Pure construction: no I/O happens until the router's methods are awaited.
    """
    build = _REGISTRY.get(provider)
    if build is None:
        raise NotSupportedError(
            f"provider {provider!r} is not supported by canary-engine; supported providers: "
            f"{', '.join(SUPPORTED_PROVIDERS)}"
        )
    return build(cluster, _Options(tuple(selector_labels), ingress_annotations_prefix))
