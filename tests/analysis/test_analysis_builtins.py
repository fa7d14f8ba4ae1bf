"""Builtin queries are Flagger's, byte for byte, and unknown providers are refused (Q11)."""

from __future__ import annotations

import pytest

import config
from analysis import BUILTIN_PROVIDERS, TemplateModel, builtin_queries, render_query

# Flagger's observer tests compare these strings byte-for-byte (podinfo in default, 1m).
ISTIO_SUCCESS = (
    ' sum( rate( istio_requests_total{ reporter="destination", '
    'destination_workload_namespace="default", destination_workload=~"podinfo", '
    'response_code!~"5.*" }[1m] ) ) / sum( rate( istio_requests_total{ '
    'reporter="destination", destination_workload_namespace="default", '
    'destination_workload=~"podinfo" }[1m] ) ) * 100'
)
ISTIO_DURATION = (
    " histogram_quantile( 0.99, sum( rate( istio_request_duration_milliseconds_bucket{ "
    'reporter="destination", destination_workload_namespace="default", '
    'destination_workload=~"podinfo" }[1m] ) ) by (le) )'
)
HTTP_SUCCESS = (
    ' sum( rate( http_request_duration_seconds_count{ kubernetes_namespace="default", '
    'kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)", status!~"5.*" }[1m] ) ) '
    '/ sum( rate( http_request_duration_seconds_count{ kubernetes_namespace="default", '
    'kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[1m] ) ) * 100'
)
HTTP_DURATION = (
    " histogram_quantile( 0.99, sum( rate( http_request_duration_seconds_bucket{ "
    'kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" '
    "}[1m] ) ) by (le) )"
)
# The spec's template form (flagger-behaviour §4.1, "Exact query strings as sent").
ISTIO_SUCCESS_TEMPLATE = (
    ' sum( rate( istio_requests_total{ reporter="destination", '
    'destination_workload_namespace="{{ namespace }}", destination_workload=~"{{ target }}", '
    'response_code!~"5.*" }[{{ interval }}] ) ) / sum( rate( istio_requests_total{ '
    'reporter="destination", destination_workload_namespace="{{ namespace }}", '
    'destination_workload=~"{{ target }}" }[{{ interval }}] ) ) * 100'
)

PODINFO = TemplateModel(
    name="podinfo",
    namespace="default",
    target="podinfo",
    service="podinfo",
    ingress="podinfo",
    route="podinfo",
    interval="1m",
)


def _render(text: str, model: TemplateModel = PODINFO) -> str:
    return render_query(text, model, source="test")


def test_istio_queries_are_flaggers_bytes() -> None:
    queries = builtin_queries("istio")
    assert queries.success_rate == ISTIO_SUCCESS_TEMPLATE
    assert _render(queries.success_rate) == ISTIO_SUCCESS
    assert _render(queries.duration) == ISTIO_DURATION
    assert queries.duration_scale == 1.0  # istio reports milliseconds


@pytest.mark.parametrize("provider", ["kubernetes", "gatewayapi:v1", "gatewayapi:v1beta1"])
def test_kubernetes_and_gateway_api_use_the_generic_http_queries(provider: str) -> None:
    queries = builtin_queries(provider)
    assert _render(queries.success_rate) == HTTP_SUCCESS
    assert _render(queries.duration) == HTTP_DURATION
    assert queries.duration_scale == 1000.0  # the app's histogram is in seconds


def test_nginx_duration_is_already_milliseconds_in_the_query() -> None:
    queries = builtin_queries("nginx")
    assert queries.duration.endswith(" * 1000")
    assert queries.duration_scale == 1.0
    assert 'ingress="{{ ingress }}", canary!=""' in queries.success_rate


@pytest.mark.parametrize("provider", BUILTIN_PROVIDERS)
def test_every_provider_renders_both_queries_with_a_leading_space(provider: str) -> None:
    queries = builtin_queries(provider)
    for text in (queries.success_rate, queries.duration):
        rendered = _render(text)
        assert rendered.startswith(" ") and not rendered.startswith("  ")
        assert "  " not in rendered and "\n" not in rendered and "{{" not in rendered
        assert "[1m]" in rendered


def test_skipper_expands_flaggers_route_variable() -> None:
    model = TemplateModel(
        name="podinfo",
        namespace="skipper",
        target="podinfo",
        service="backend",
        ingress="skipper_ingress",
        route="podinfo",
        interval="1m",
    )
    assert _render(builtin_queries("skipper").success_rate, model) == (
        " sum(rate(skipper_response_duration_seconds_bucket"
        '{route=~"kube(ew)?_skipper__skipper_ingress_canary__.*__backend_canary(_[0-9]+)?",'
        'code!~"5..",le="+Inf"}[1m])) / sum(rate(skipper_response_duration_seconds_bucket'
        '{route=~"kube(ew)?_skipper__skipper_ingress_canary__.*__backend_canary(_[0-9]+)?",'
        'le="+Inf"}[1m])) * 100'
    )


@pytest.mark.parametrize("provider", ["consul", "smi:v1alpha3", "crossover", "istio:service", ""])
def test_unknown_provider_is_refused_naming_the_accepted_ones(provider: str) -> None:
    with pytest.raises(config.NotSupportedError) as caught:
        builtin_queries(provider)
    message = str(caught.value)
    assert repr(provider) in message
    for accepted in ("istio", "linkerd", "kubernetes", "gatewayapi:v1", "nginx", "skipper"):
        assert accepted in message
