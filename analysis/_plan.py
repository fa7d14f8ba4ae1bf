"""Turn a Canary's ``analysis.metrics`` into the ``Check`` list of one tick (Flagger §4.2): each a
``MetricQuery`` (what is asked, and where) with its ``thresholdRange`` (how the answer is judged).

Order and rules follow Flagger's two passes over the metric list, in spec order:

1. builtin pass (``runBuiltinMetricChecks``): ``request-success-rate`` and ``request-duration``
   matched by name, then the metric's inline ``query`` if it has one (so one entry can yield both);
2. template pass (``runMetricChecks``): every entry with a ``templateRef`` (builtin names too, Q10);
   an entry with neither templateRef, query nor builtin name becomes Flagger's "no usable metrics
   template and query" error.

A template that is missing or cannot be rendered does not raise: its query carries
``render_error`` (the full event message) so it fails as a check, as in Flagger. An unknown metrics
provider for builtin metrics raises ``config.NotSupportedError`` (Q11), which is a configuration
problem the engine should report when it validates the canary.

Pure: no I/O. Imports ``config`` and analysis siblings.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Literal

from analysis._builtins import BuiltinQueries, builtin_queries, render_builtin
from analysis._errors import RenderError
from analysis._evaluate import bounds_for
from analysis._render import collapse_whitespace, render_query
from analysis._template_model import TemplateModel
from analysis._types import Check, CheckKind, Endpoint, MetricQuery
from config import Canary, Metric, MetricTemplate

NO_USABLE_QUERY = "Metric query failed for no usable metrics template and query were configured"

_NON_WORD = re.compile(r"[^0-9A-Za-z_]")  # Go's \W (ASCII), as Flagger's Skipper observer uses


def plan_checks(
    canary: Canary,
    templates: Mapping[tuple[str, str], MetricTemplate],
    *,
    provider: str,
    default_server: str,
    target: Literal["canary", "primary"] = "canary",
) -> list[Check]:
    """Return every metric check of one tick for ``canary``, in Flagger's evaluation order.

    ``templates`` maps (namespace, name) to MetricTemplates; ``provider`` is the metrics provider
    (``spec.provider`` or the controller default); ``default_server`` is the Prometheus used when
    neither the template nor ``spec.metricsServer`` names one. ``target="primary"`` renders every
    query with ``{{ target }}`` = ``<targetRef.name>-primary`` (the primary workload, as Flagger's
    maintainers suggest for primary metrics) and marks the queries ``target="primary"``. Raise
    NotSupportedError when a builtin metric is used with a provider that has no builtin queries.
    """
    spec = canary.spec
    metrics = spec.effective_analysis.metrics
    server = spec.metrics_server or default_server
    base = MetricQuery(
        canary=canary.ref,
        metric="",
        kind=CheckKind.QUERY,
        target=target,
        endpoint=Endpoint(server=server),
        observer=provider,
        target_name=spec.target_ref.name,
    )
    checks: list[Check] = []
    for metric in metrics:
        model = _model(canary, metric, target)
        if metric.name == CheckKind.SUCCESS_RATE or metric.name == CheckKind.DURATION:
            kind = CheckKind(metric.name)
            query = _builtin(base, metric, kind, builtin_queries(provider), model)
            # Flagger converts a duration to a time.Duration of whole milliseconds (float -> int64).
            checks.append(_check(query, metric, truncate=kind is CheckKind.DURATION))
        if metric.query:
            checks.append(_check(_inline(base, metric, model), metric))
    for metric in metrics:
        if metric.template_ref is not None:
            checks.append(_check(_templated(base, canary, metric, templates, target), metric))
        elif not metric.is_builtin and not metric.query:
            unusable = dataclasses.replace(
                base, metric=metric.name, kind=CheckKind.TEMPLATE, render_error=NO_USABLE_QUERY
            )
            checks.append(Check(query=unusable))
    return checks


def plan_queries(
    canary: Canary,
    templates: Mapping[tuple[str, str], MetricTemplate],
    *,
    provider: str,
    default_server: str,
    target: Literal["canary", "primary"] = "canary",
) -> list[MetricQuery]:
    """Only what ``plan_checks`` asks, without how the answers are judged: for a provider check,
    a recording, or a comparative judge's primary series."""
    return [
        check.query
        for check in plan_checks(
            canary, templates, provider=provider, default_server=default_server, target=target
        )
    ]


def _check(query: MetricQuery, metric: Metric, *, truncate: bool = False) -> Check:
    lo, hi = bounds_for(metric, query.kind)
    return Check(
        query=query,
        lo=lo,
        hi=hi,
        truncate=truncate,
        dry_run=metric.dry_run,
        on_no_data=metric.no_data_policy,
    )


def _model(canary: Canary, metric: Metric, target: str) -> TemplateModel:
    model = TemplateModel.for_metric(canary, metric)
    if target == "primary":
        model = dataclasses.replace(model, target=f"{model.target}-primary")
    return model


def _builtin(
    base: MetricQuery,
    metric: Metric,
    kind: CheckKind,
    builtins: BuiltinQueries,
    model: TemplateModel,
) -> MetricQuery:
    query = dataclasses.replace(base, metric=metric.name, kind=kind)
    if kind is CheckKind.DURATION:
        query = dataclasses.replace(query, scale=builtins.duration_scale)
    if builtins.encode_for_skipper:
        model = _skipper_model(model)
    text = builtins.success_rate if kind is CheckKind.SUCCESS_RATE else builtins.duration
    try:
        # Each value escaped for its matcher (RE2 inside =~ / !~): a name matches only itself.
        expr = render_builtin(text, model, source=f"builtin {base.observer} {metric.name} query")
    except RenderError as exc:
        # Only reachable with object names no Kubernetes object can have; worded as Flagger's
        # observers report a render failure.
        message = f"Prometheus query failed: rendering query failed: {exc}"
        return dataclasses.replace(query, render_error=message)
    return dataclasses.replace(query, expr=expr, model=model)


def _inline(base: MetricQuery, metric: Metric, model: TemplateModel) -> MetricQuery:
    query = dataclasses.replace(base, metric=metric.name, kind=CheckKind.QUERY)
    assert metric.query is not None  # the caller checked
    try:
        expr = render_query(
            collapse_whitespace(metric.query), model, source=f"query of metric {metric.name!r}"
        )
    except RenderError as exc:
        # Flagger has no message for this (it ignores the render error and sends the broken
        # query); report it in the family of inline-query errors.
        return dataclasses.replace(
            query, render_error=f"Prometheus query failed for {metric.name}: {exc}"
        )
    return dataclasses.replace(query, expr=expr)


def _templated(
    base: MetricQuery,
    canary: Canary,
    metric: Metric,
    templates: Mapping[tuple[str, str], MetricTemplate],
    target: str,
) -> MetricQuery:
    ref = metric.template_ref
    assert ref is not None  # the caller checked
    namespace = ref.namespace or canary.metadata.namespace
    query = dataclasses.replace(
        base,
        metric=metric.name,
        kind=CheckKind.TEMPLATE,
        template=f"{namespace}/{ref.name}",
    )
    template = templates.get((namespace, ref.name))
    if template is None:
        return dataclasses.replace(query, render_error=_missing(query))
    provider = template.spec.provider
    query = dataclasses.replace(
        query,
        endpoint=Endpoint(
            provider_type=provider.type,
            # Only a Prometheus template falls back to spec.metricsServer / --metrics-server: any
            # other provider has its own address or its vendor's default (analysis.providers).
            server=provider.address
            or (base.endpoint.server if provider.type == "prometheus" else None),
            headers=_headers(provider.headers),
            secret=f"{namespace}/{provider.secret_ref.name}" if provider.secret_ref else None,
            insecure_skip_verify=provider.insecure_skip_verify,
            region=provider.region,
        ),
        window=metric.interval_seconds,
    )
    text = template.spec.query
    if provider.type == "prometheus":
        # Flagger's Prometheus client collapses whitespace before sending; doing it to the
        # template (not the result) keeps substituted values byte-exact.
        text = collapse_whitespace(text)
    model = _model(canary, metric, target)
    try:
        expr = render_query(text, model, source=f"MetricTemplate {namespace}/{ref.name}")
    except RenderError as exc:
        return dataclasses.replace(
            query, render_error=f"Metric template {ref.name}.{namespace} query render error: {exc}"
        )
    return dataclasses.replace(query, expr=expr)


def missing_template(namespace: str, name: str) -> str:
    """Flagger's words for a MetricTemplate that does not exist (the Kubernetes lister's NotFound
    error), as its provider check says them."""
    return (
        f'metric template {name}.{namespace} error: metrictemplate.flagger.app "{name}" not found'
    )


def _missing(query: MetricQuery) -> str:
    """The check's message for its missing template: the same words, as an event starts them."""
    namespace, _, name = (query.template or "").partition("/")
    text = missing_template(namespace, name)
    return text[:1].upper() + text[1:]


def template_is_missing(query: MetricQuery) -> bool:
    """The query names a MetricTemplate that was not found when it was planned."""
    return query.template is not None and query.render_error == _missing(query)


def _headers(headers: Mapping[str, str | list[str]] | None) -> dict[str, str]:
    # Several values of one header are equivalent to one comma-separated value (RFC 9110 §5.3).
    return {
        key: value if isinstance(value, str) else ", ".join(value)
        for key, value in (headers or {}).items()
    }


def _skipper_model(model: TemplateModel) -> TemplateModel:
    return dataclasses.replace(
        model,
        name=_NON_WORD.sub("_", model.name),
        namespace=_NON_WORD.sub("_", model.namespace),
        service=_NON_WORD.sub("_", model.service),
        target=_NON_WORD.sub("_", model.target),
        ingress=_NON_WORD.sub("_", model.ingress),
    )
