"""The router registry: every module of ``traffic.routers`` declares one router, found by name.

A router module exposes ``ROUTER = RouterModule(...)``: the provider names it serves, its
``RouterRules`` (capabilities and checks, registered with ``config`` so the loader reads them),
the custom resources it reads and writes (registered with the Cluster seam), the name of its
builtin ``request-success-rate`` / ``request-duration`` queries in ``analysis`` (meshes and
ingresses; None when a Canary must use MetricTemplates), and how to build it. Nothing else names
providers: the loader's checks, ``validate``'s messages, the CLI and the engine's capability
checks all read this registry, so adding a backend is adding its module (docs/adding-a-router.md).

Modules are discovered by listing the ``traffic.routers`` package once, on first use.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType
from typing import Final

import traffic.routers
from config import (
    Canary,
    Capabilities,
    NotSupportedError,
    RouterRules,
    is_flagger_provider,
    register_router_rules,
    resolve_router_name,
)
from traffic._nginx import DEFAULT_ANNOTATIONS_PREFIX
from traffic._objects import DEFAULT_SELECTOR_LABELS
from traffic._types import Router
from traffic.cluster import Cluster, Kind, register_kind

DEFAULT_INGRESS_ANNOTATIONS_PREFIX: Final = DEFAULT_ANNOTATIONS_PREFIX


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterOptions:
    """Controller-wide settings some routers need (Flagger's command-line flags)."""

    selector_labels: tuple[str, ...] = DEFAULT_SELECTOR_LABELS
    ingress_annotations_prefix: str = DEFAULT_INGRESS_ANNOTATIONS_PREFIX
    ingress_class: str = ""  # Flagger's -ingress-class (contour's ingress.class annotation)


def _same_name(provider: str) -> str | None:
    return provider


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterModule:
    """One router's declaration (see the module docs)."""

    names: tuple[str, ...]
    rules: RouterRules
    build: Callable[[Cluster, str, RouterOptions], Router]
    kinds: tuple[Kind, ...] = ()
    #: provider name (as written, e.g. ``smi:v1alpha3:linkerd``) -> the analysis builtin set.
    builtin_metrics: Callable[[str], str | None] = field(default=_same_name)


@cache
def _modules() -> Mapping[str, RouterModule]:
    found: dict[str, RouterModule] = {}
    for info in sorted(pkgutil.iter_modules(traffic.routers.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{traffic.routers.__name__}.{info.name}")
        declared = getattr(module, "ROUTER", None)
        if not isinstance(declared, RouterModule):
            raise TypeError(f"traffic.routers.{info.name} must define ROUTER = RouterModule(...)")
        for name in declared.names:
            if name in found:
                raise ValueError(f"provider {name!r} is declared by two router modules")
            found[name] = declared
        register_router_rules(declared.names, declared.rules)
        for kind in declared.kinds:
            register_kind(kind)
    return MappingProxyType(dict(sorted(found.items())))


def load_routers() -> None:
    """Import every router module (idempotent); ``traffic`` calls it on import."""
    _modules()


def supported_providers() -> tuple[str, ...]:
    """Provider names a router is built for (suffixed variants such as ``smi:v1alpha3:linkerd``
    resolve to their base name)."""
    return tuple(_modules())


def router_module(provider: str) -> RouterModule | None:
    """The declaration serving ``provider`` (exact name or suffixed variant), or None; None for
    a name Flagger would not accept either (``istio:`` has the prefix of a variant, but is none:
    routed as Istio, no builtin query would answer for it)."""
    if not is_flagger_provider(provider):
        return None
    load_routers()
    name = resolve_router_name(provider)
    return None if name is None else _modules().get(name)


def router_capabilities(provider: str) -> Capabilities:
    """What the router for ``provider`` can do; nothing beyond a 0/100 switch when unknown."""
    module = router_module(provider)
    return module.rules.capabilities if module else Capabilities(weighted=False)


def builtin_metrics_provider(provider: str) -> str | None:
    """The name of ``provider``'s builtin queries in ``analysis`` (None: templates only)."""
    module = router_module(provider)
    return module.builtin_metrics(provider) if module else None


def builtin_queries_provider(canary_provider: str | None, mesh_provider: str) -> str:
    """Whose builtin queries (request-success-rate, request-duration) a Canary's checks run,
    as Flagger's ``runBuiltinMetricChecks`` picks them: the Canary's ``spec.provider``, else the
    controller's ``--mesh-provider``; but with a Linkerd mesh (a ``--mesh-provider`` naming
    linkerd) always Linkerd's, since its proxies see every request whatever routes them (an
    nginx or Gateway API Canary on a Linkerd cluster)."""
    provider = canary_provider or mesh_provider
    if canary_provider and "linkerd" in mesh_provider:
        provider = "linkerd"
    return builtin_metrics_provider(provider) or provider


def not_built_message(provider: str) -> str:
    """Why no router serves ``provider``: a Flagger provider not built here, or a name neither
    Flagger nor canary-engine knows (a typo in ``--mesh-provider``)."""
    built = ", ".join(supported_providers())
    if is_flagger_provider(provider):
        return (
            f"provider {provider!r} is not built yet in canary-engine (valid in Flagger); "
            f"built: {built}"
        )
    return f"unknown provider {provider!r}; built: {built}"


def not_built_problems(canary: Canary, default_provider: str) -> list[str]:
    """Why canary-engine cannot drive this (valid) Canary yet; empty when it can."""
    provider = canary.spec.provider or default_provider
    module = router_module(provider)
    if module is None:
        return [f"spec.provider: {not_built_message(provider)}"]
    # What a router cannot do (A/B matches, session affinity) the loader refuses already.
    return []


def router_for(provider: str, cluster: Cluster, options: RouterOptions | None = None) -> Router:
    """A Router for ``provider`` on ``cluster`` (with the controller-wide ``options``);
    NotSupportedError for a provider no router module serves.

    Unlike Flagger, which falls back to Istio for an unknown or empty provider, an unknown name is
    an error naming the ones that are built (our decision Q11). Pure construction: no I/O happens
    until the router's methods are awaited."""
    module = router_module(provider)
    if module is None:
        raise NotSupportedError(not_built_message(provider))
    return module.build(cluster, provider, options or RouterOptions())
