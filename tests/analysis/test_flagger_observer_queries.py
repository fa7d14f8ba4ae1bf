"""Ports of Flagger's pkg/metrics/observers/*_test.go: each builtin query as sent, byte for byte,
for podinfo in ``default`` (nginx: ``nginx``) over ``1m``. Istio, the generic HTTP observer and
skipper are pinned in test_analysis_builtins.py.

Two stored Flagger test files predate the observer source of Flagger 1.44 and are taken from that
source instead (flagger-behaviour §4.1 quotes the same): nginx's duration reads
``nginx_ingress_controller_response_duration_seconds_*`` (its old test:
``..._ingress_upstream_latency_seconds_*``), traefik's selector is ``service=~`` with the P99
multiplied by 1000 (its old test: ``exported_service=~``, no ``* 1000``;
``pkg/metrics/observers/traefik.go``)."""

from __future__ import annotations

import pytest

from analysis import TemplateModel, builtin_queries
from analysis._builtins import render_builtin

_ENVOY_RQ = ' sum( rate( envoy_cluster_upstream_rq{{ {sel}, envoy_response_code!~"5.*" }}[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{{ {sel}, }}[1m] ) ) * 100'  # noqa: E501
_ENVOY_P99 = " histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{{ {sel}, }}[1m] ) ) by (le) )"  # noqa: E501
_APPMESH_SEL = (
    'kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"'
)
_TRAEFIK_SEL = 'service=~"default-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd"'

# (provider, namespace, route, TestXObserver_GetRequestSuccessRate, _GetRequestDuration)
CASES = [
    (
        "linkerd",
        "default",
        "podinfo",
        ' sum( rate( response_total{ namespace="default", deployment=~"podinfo", classification!="failure", direction="inbound" }[1m] ) ) / sum( rate( response_total{ namespace="default", deployment=~"podinfo", direction="inbound" }[1m] ) ) * 100',  # noqa: E501
        ' histogram_quantile( 0.99, sum( rate( response_latency_ms_bucket{ namespace="default", deployment=~"podinfo", direction="inbound" }[1m] ) ) by (le) )',  # noqa: E501
    ),
    (
        "nginx",
        "nginx",
        "podinfo",
        ' sum( rate( nginx_ingress_controller_requests{ namespace="nginx", ingress="podinfo", canary!="", status!~"5.*" }[1m] ) ) / sum( rate( nginx_ingress_controller_requests{ namespace="nginx", ingress="podinfo", canary!="" }[1m] ) ) * 100',  # noqa: E501
        ' sum( rate( nginx_ingress_controller_response_duration_seconds_sum{ namespace="nginx", ingress="podinfo", canary!="" }[1m] ) ) / sum( rate( nginx_ingress_controller_response_duration_seconds_count{ namespace="nginx", ingress="podinfo", canary!="" }[1m] ) ) * 1000',  # noqa: E501
    ),
    (
        "contour",
        "default",
        "podinfo",
        _ENVOY_RQ.format(sel='envoy_cluster_name=~"default_podinfo-canary_[0-9a-zA-Z-]+"'),
        _ENVOY_P99.format(sel='envoy_cluster_name=~"default_podinfo-canary_[0-9a-zA-Z-]+"'),
    ),
    (
        "gloo",
        "default",
        "podinfo",
        _ENVOY_RQ.format(
            sel='envoy_cluster_name=~"default-podinfo-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+"'
        ),
        _ENVOY_P99.format(
            sel='envoy_cluster_name=~"default-podinfo-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+"'
        ),
    ),
    (
        "appmesh",
        "default",
        "podinfo",
        f' sum( rate( envoy_cluster_upstream_rq{{ {_APPMESH_SEL}, envoy_response_code!~"5.*" }}[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{{ {_APPMESH_SEL} }}[1m] ) ) * 100',  # noqa: E501
        f" histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{{ {_APPMESH_SEL} }}[1m] ) ) by (le) )",  # noqa: E501
    ),
    (
        "traefik",
        "default",
        "podinfo",
        f' sum( rate( traefik_service_request_duration_seconds_bucket{{ {_TRAEFIK_SEL}, code!~"5..", le="+Inf" }}[1m] ) ) / sum( rate( traefik_service_request_duration_seconds_bucket{{ {_TRAEFIK_SEL}, le="+Inf" }}[1m] ) ) * 100',  # noqa: E501
        f" histogram_quantile( 0.99, sum( rate( traefik_service_request_duration_seconds_bucket{{ {_TRAEFIK_SEL} }}[1m] ) ) by (le) ) * 1000",  # noqa: E501
    ),
    (
        "kuma",
        "default",
        "podinfo",
        _ENVOY_RQ.format(sel='service=~"podinfo-canary_default_svc_[0-9a-zA-Z-]+"'),
        _ENVOY_P99.format(sel='service=~"podinfo-canary_default_svc_[0-9a-zA-Z-]+"'),
    ),
    (
        "apisix",
        "default",
        "podinfo",
        ' sum( rate( apisix_http_status{ route=~"default_podinfo-podinfo-canary_.+", code!~"5.." }[1m] ) ) / sum( rate( apisix_http_status{ route=~"default_podinfo-podinfo-canary_.+" }[1m] ) ) * 100',  # noqa: E501
        ' histogram_quantile( 0.99, sum( rate( apisix_http_latency_bucket{ type=~"request", route=~"default_podinfo-podinfo-canary_.+" }[1m] ) ) by (le) )',  # noqa: E501
    ),
    (
        "osm",
        "default",
        "podinfo",
        ' sum( rate( osm_request_total{ destination_namespace="default", destination_kind="Deployment", destination_name="podinfo", response_code!~"5.*" }[1m] ) ) / sum( rate( osm_request_total{ destination_namespace="default", destination_kind="Deployment", destination_name="podinfo" }[1m] ) ) * 100',  # noqa: E501
        ' histogram_quantile( 0.99, sum( rate( osm_request_duration_ms_bucket{ destination_namespace="default", destination_kind="Deployment", destination_name="podinfo" }[1m] ) ) by (le) )',  # noqa: E501
    ),
    (
        "knative",
        "default",
        "podinfo-00001",
        _ENVOY_RQ.format(sel='envoy_cluster_name=~"default/podinfo-00001"'),
        _ENVOY_P99.format(sel='envoy_cluster_name=~"default/podinfo-00001"'),
    ),
]


@pytest.mark.parametrize(
    ("provider", "namespace", "route", "success", "duration"), CASES, ids=[c[0] for c in CASES]
)
def test_builtin_queries_are_flaggers_bytes(
    provider: str, namespace: str, route: str, success: str, duration: str
) -> None:
    model = TemplateModel(
        name="podinfo",
        namespace=namespace,
        target="podinfo",
        service="podinfo",
        ingress="podinfo",
        route=route,
        interval="1m",
    )
    queries = builtin_queries(provider)
    assert render_builtin(queries.success_rate, model, source="test") == success
    assert render_builtin(queries.duration, model, source="test") == duration
