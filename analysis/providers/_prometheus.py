"""Prometheus (and Prometheus-compatible APIs): the declaration only.

Its queries never run one by one through the registry: ``analysis.providers._sources`` hands all
of a tick's Prometheus queries to ``analysis._prometheus.PrometheusSource`` in one batch, which
groups builtin queries into one request per query shape (``analysis._grouping``) and resolves
``token`` or ``username`` + ``password`` (and ``ca.crt``) from the Secret itself. A template
without ``address`` uses ``spec.metricsServer`` or the controller's ``--metrics-server``.
"""

from __future__ import annotations

from analysis.providers._base import Call, MetricProvider


async def _batched(call: Call) -> float:  # pragma: no cover - the source never calls it
    raise AssertionError("Prometheus queries are answered in batches by PrometheusSource")


PROVIDER = MetricProvider(
    type="prometheus",
    summary="Prometheus HTTP API",
    value=_batched,
)
