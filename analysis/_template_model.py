"""The values a query template can refer to: Flagger's MetricTemplateModel.

A plain value type with no dependency inside ``analysis`` but ``config``, so the query types
(``analysis._types``) can carry it and the renderer (``analysis._render``) can read it without
either importing the other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from config import Canary, Metric, format_interval, parse_duration

#: A duration PromQL reads as written ("30s", "1m30s", "500ms").
_PROMQL_DURATION = re.compile(r"(?:[0-9]+(?:ms|s|m|h))+")  # the units parse_duration takes


def _interval(metric: Metric) -> str:
    """``{{ interval }}``: the metric's interval as written, as Flagger inserts it (``500ms`` stays
    ``500ms``; re-formatting it from seconds made ``0s``, an empty range); 1m when it has none
    (Q3). A Go duration PromQL cannot read (``1.5m``) is written in whole seconds instead."""
    written = (metric.interval or "").strip()
    if not written:
        return format_interval(metric.interval_seconds)  # the default, 1m (Q3)
    if _PROMQL_DURATION.fullmatch(written):
        return written
    try:
        parse_duration(written)
    except ValueError:  # a text Flagger's CRD admits that is no duration (1min): as written
        return written
    return format_interval(metric.interval_seconds)


def _route(canary: Canary) -> str:
    """``{{ route }}``: the routeRef, else the target; for a Knative target the revision under
    analysis (Flagger: the latest created revision, which the Knative workload records in
    ``status.trackedConfigs`` under ``knative/revision``)."""
    spec = canary.spec
    if spec.target_ref.api_version.startswith("serving.knative.dev/"):
        revision = ((canary.status or {}).get("trackedConfigs") or {}).get("knative/revision")
        if revision:
            return str(revision)
    return spec.route_ref.name if spec.route_ref is not None else spec.target_ref.name


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateModel:
    """The values a query template can refer to (Flagger's MetricTemplateModel)."""

    name: str  # canary name
    namespace: str  # canary namespace
    target: str  # spec.targetRef.name
    service: str  # spec.service.name, else the target
    ingress: str  # spec.ingressRef.name, else the target
    route: str  # spec.routeRef.name, else the target
    interval: str  # the metric's window as a PromQL duration ("1m", "30s")
    variables: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def for_metric(cls, canary: Canary, metric: Metric) -> TemplateModel:
        """The model Flagger builds for one metric of a canary; the interval defaults to 1m (Q3)."""
        spec = canary.spec
        target = spec.target_ref.name
        return cls(
            name=canary.metadata.name,
            namespace=canary.metadata.namespace,
            target=target,
            service=spec.service_name,
            ingress=spec.ingress_ref.name if spec.ingress_ref is not None else target,
            route=_route(canary),
            interval=_interval(metric),
            variables=dict(metric.template_variables or {}),
        )
