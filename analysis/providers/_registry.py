"""The registry: every metric provider module, by its ``spec.provider.type`` name.

Adding a provider = adding its module (declaring a ``MetricProvider``) and listing it here;
modules are imported on first use;
``validate``, the loader's accepted names (``config.METRIC_PROVIDER_TYPES``, kept equal to this
registry by a test), the live sources, ``record`` and the README's table read it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from analysis.providers._base import MetricProvider

#: type name -> the module of ``analysis.providers`` declaring it, in Flagger's documentation
#: order. Adding a provider: its module, and its line here.
_MODULES: Mapping[str, str] = {
    "prometheus": "_prometheus",
    "influxdb": "_influxdb",
    "datadog": "_datadog",
    "externalmetrics": "_externalmetrics",
    "stackdriver": "_stackdriver",
    "cloudwatch": "_cloudwatch",
    "newrelic": "_newrelic",
    "graphite": "_graphite",
    "dynatrace": "_dynatrace",
    "keptn": "_keptn",
    "splunk": "_splunk",
    "signoz": "_signoz",
    "skywalking": "_skywalking",
    "chronosphere": "_chronosphere",
    "azuremonitor": "_azuremonitor",
}


class _Registry(Mapping[str, MetricProvider]):
    """The providers by type name; a provider's module is imported the first time its type is
    asked for, so that ``validate`` of a Prometheus template imports no other provider's module
    (a name lookup, ``in`` and iterating the names import none)."""

    def __init__(self) -> None:
        self._loaded: dict[str, MetricProvider] = {}

    def __getitem__(self, name: str) -> MetricProvider:
        provider = self._loaded.get(name)
        if provider is None:
            module = importlib.import_module(f"analysis.providers.{_MODULES[name]}")
            provider = module.PROVIDER
            if provider.type != name:  # a module listed under another provider's name
                raise RuntimeError(f"{module.__name__} declares {provider.type!r}, not {name!r}")
            self._loaded[name] = provider
        return provider

    def __contains__(self, name: object) -> bool:
        return name in _MODULES

    def __iter__(self) -> Iterator[str]:
        return iter(_MODULES)

    def __len__(self) -> int:
        return len(_MODULES)


#: type name -> provider, in Flagger's documentation order.
PROVIDERS: Mapping[str, MetricProvider] = _Registry()
