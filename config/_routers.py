"""What each router can do, as the loader needs to know it: capabilities and per-router checks.

The routers themselves live in ``traffic`` (one module each, ``traffic/routers/``), which this
bottom layer may not import. So the dependency is inverted: each router module declares its
``RouterRules`` and the traffic registry registers them here when ``traffic`` is imported (the
engine always imports it before it parses a Canary). ``parse_canary`` then reads them: a Canary
asking a router for something it cannot do (A/B matches, weights on matched requests, session
affinity) is refused with the field and the routers that can, and each router adds its own checks
(``ingressRef`` for nginx, ``gatewayRefs`` for the Gateway API...).

Without the traffic layer loaded only Flagger's schema is checked: a provider that has no rules
registered is accepted here, and ``canary-engine validate`` / the engine report it as not built.

Provider names follow Flagger's factory: a registered name matches itself and its suffixed
variants (``smi:v1alpha3`` also covers ``smi:v1alpha3:linkerd``), the longest name winning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from config._spec import Canary
    from config.errors import Problem


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """What a router can route. ``weighted`` False means blue/green only (0/100 switching)."""

    weighted: bool = True
    ab_testing: bool = False  # analysis.match: header / cookie conditions
    #: analysis.match with stepWeight/stepWeights (no iterations): the stepped weights split only
    #: the requests that match, as Flagger's router does for this provider
    weighted_match: bool = False
    mirroring: bool = False  # analysis.mirror: the canary receives a copy of the traffic
    session_affinity: bool = False  # analysis.sessionAffinity: sticky canary cookie


def _no_problems(canary: Canary, analysis_key: str) -> Iterable[Problem]:
    return ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterRules:
    """A router's declaration as the loader reads it.

    ``check(canary, analysis_key)`` yields the router's own problems (``analysis_key`` is
    ``spec.analysis`` or ``spec.canaryAnalysis``, for field paths).
    """

    label: str  # how messages name the router ("linkerd", "Gateway API")
    capabilities: Capabilities
    check: Callable[[Canary, str], Iterable[Problem]] = field(default=_no_problems)


_RULES: dict[str, RouterRules] = {}


def register_router_rules(names: Iterable[str], rules: RouterRules) -> None:
    """Declare ``rules`` for providers ``names`` (idempotent; a name has one declaration)."""
    for name in names:
        existing = _RULES.get(name)
        if existing is not None and existing != rules:
            raise ValueError(f"provider {name!r} is declared by two routers")
        _RULES[name] = rules


def resolve_router_name(provider: str) -> str | None:
    """The registered name serving ``provider`` (itself, or the longest ``name:`` prefix)."""
    if provider in _RULES:
        return provider
    matches = [n for n in _RULES if provider.startswith(f"{n}:")]
    return max(matches, key=len) if matches else None


def router_rules(provider: str) -> RouterRules | None:
    name = resolve_router_name(provider)
    return None if name is None else _RULES[name]


def registered_router_names() -> tuple[str, ...]:
    return tuple(_RULES)


def routers_that(can: Callable[[Capabilities], bool]) -> list[str]:
    """Registered provider names whose capabilities satisfy ``can`` (for messages)."""
    return [name for name, rules in _RULES.items() if can(rules.capabilities)]
