"""Metric providers for MetricTemplates: one module per provider, each declaring itself.

A provider module (``_graphite``, ``_datadog``, ...) builds a ``MetricProvider``: its
``spec.provider.type``, the ``spec.provider`` fields and Secret keys it needs, and coroutines that
answer one query with one float, a series over a window, and Flagger's availability check. The
registry (``PROVIDERS``) lists them; ``template_problems`` is what ``canary-engine validate`` says
about a MetricTemplate; ``open_metric_sources`` opens the live ``MetricSources`` (every provider,
Prometheus batched and grouped as before) the controller uses; ``record_series`` answers
``record``'s range requests for the non-Prometheus templates.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from analysis._render import syntax_problem
from analysis._text import redact
from analysis.providers._base import MetricProvider as MetricProvider
from analysis.providers._registry import PROVIDERS as PROVIDERS
from config import MetricTemplate

if TYPE_CHECKING:
    #: The provider types whose checks can run (the others are refused by ``validate``).
    BUILT_PROVIDERS: tuple[str, ...]
    from analysis.providers._record import record_series as record_series
    from analysis.providers._sources import MetricSources as MetricSources
    from analysis.providers._sources import open_metric_sources as open_metric_sources

#: Imported on first use: ``validate`` needs only the declarations (``PROVIDERS``), not the
#: live sources and their numpy and httpx.
_LAZY = {
    "record_series": "analysis.providers._record",
    "MetricSources": "analysis.providers._sources",
    "open_metric_sources": "analysis.providers._sources",
}


def __getattr__(name: str) -> Any:
    if name == "BUILT_PROVIDERS":  # (reads every provider's declaration: their modules load)
        return tuple(provider_type for provider_type, p in PROVIDERS.items() if p.built)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'analysis.providers' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def template_problems(template: MetricTemplate) -> list[tuple[str, str]]:
    """``(field, message)`` for every reason the template's provider cannot run it, and a query
    that renders for no Canary (an unknown template function, a malformed action)."""
    provider = PROVIDERS.get(template.spec.provider.type)
    if provider is None:  # the loader refuses unknown names first; kept for direct callers
        accepted = ", ".join(PROVIDERS)
        return [("spec.provider.type", f"unknown metric provider; accepted: {accepted}")]
    problems = list(provider.problems(template.spec.provider))
    source = f"MetricTemplate {template.metadata.namespace}/{template.metadata.name}"
    syntax = syntax_problem(template.spec.query, source=source)
    if syntax is not None:
        problems.append(("spec.query", syntax.removeprefix(f"{source}: ")))
    # a message may quote the address, and an address may carry user:password@
    return [(field, redact(message)) for field, message in problems]


__all__ = [
    "BUILT_PROVIDERS",
    "PROVIDERS",
    "MetricProvider",
    "MetricSources",
    "open_metric_sources",
    "record_series",
    "template_problems",
]
