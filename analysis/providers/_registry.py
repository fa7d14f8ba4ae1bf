"""The registry: every metric provider module, by its ``spec.provider.type`` name.

Adding a provider = adding its module (declaring a ``MetricProvider``) and listing it here;
``validate``, the loader's accepted names (``config.METRIC_PROVIDER_TYPES``, kept equal to this
registry by a test), the live sources, ``record`` and the README's table read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from analysis.providers import (
    _azuremonitor,
    _chronosphere,
    _cloudwatch,
    _datadog,
    _dynatrace,
    _externalmetrics,
    _graphite,
    _influxdb,
    _keptn,
    _newrelic,
    _prometheus,
    _signoz,
    _skywalking,
    _splunk,
    _stackdriver,
)
from analysis.providers._base import MetricProvider

_ALL = (
    _prometheus.PROVIDER,
    _influxdb.PROVIDER,
    _datadog.PROVIDER,
    _externalmetrics.PROVIDER,
    _stackdriver.PROVIDER,
    _cloudwatch.PROVIDER,
    _newrelic.PROVIDER,
    _graphite.PROVIDER,
    _dynatrace.PROVIDER,
    _keptn.PROVIDER,
    _splunk.PROVIDER,
    _signoz.PROVIDER,
    _skywalking.PROVIDER,
    _chronosphere.PROVIDER,
    _azuremonitor.PROVIDER,
)

#: type name -> provider, in Flagger's documentation order.
PROVIDERS: Mapping[str, MetricProvider] = MappingProxyType({p.type: p for p in _ALL})
