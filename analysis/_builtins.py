"""Flagger's builtin ``request-success-rate`` and ``request-duration`` queries per metrics provider.

The templates are written in the layout of Flagger's observers (``pkg/metrics/observers/*.go``) and
stored as Flagger sends them: every whitespace run collapsed to one space, the leading space kept,
so a rendered builtin query is byte-for-byte the query Flagger sends. ``duration_scale`` converts
the duration query's unit to milliseconds (the generic HTTP observer reads seconds; the others
return milliseconds, nginx, skipper and traefik by multiplying inside the query).

Provider names follow Flagger's observer factory, without its silent fallback to the Istio queries
(§12 Q11): ``kubernetes`` and ``gatewayapi:*`` share the generic HTTP observer, ``appmesh*`` the App
Mesh one; an unknown name raises ``config.NotSupportedError`` listing the accepted names.

Rendering (``render_builtin``): every value sits in a matcher string (``{{ interval }}`` aside, a
plain duration token), and each is escaped for its matcher: inside ``=~"..."`` / ``!~"..."`` for
RE2 (``.`` ``+`` ``*`` ``?`` ``(`` ``)`` ``[`` ``]`` ``{`` ``}`` ``|`` ``^`` ``$`` ``\\``) and then
for the string, inside ``="..."`` / ``!="..."`` for the string only (quotes, backslashes). Flagger
does not escape: there the Deployment ``secret.app`` also reads the series of ``secret-app``
(``.`` is a regex wildcard, and the queries ``sum`` what they select). A name of
``[A-Za-z0-9_-]`` -- every namespace and Service, and most workloads -- renders byte-for-byte as
Flagger renders it; Kubernetes names can only differ by a ``.``.

Pure data. Imports only ``config`` and ``analysis._render``.
"""

from __future__ import annotations

from dataclasses import dataclass

from analysis._render import collapse_whitespace, render_query
from analysis._template_model import TemplateModel
from config import NotSupportedError

#: The error text Flagger's observers wrap around "no values found" (all but the HTTP observer).
_WRAPPED = "running query failed: "


@dataclass(frozen=True, slots=True)
class ResultIdentity:
    """The labels of a builtin query's answer that name its target, so the same query for many
    canaries can be asked once, grouped by them (``analysis._grouping``)."""

    labels: tuple[tuple[str, str], ...]  # (TemplateModel field, result label)
    #: A label holding pod names ``<target>-<hash>-<hash>`` instead of a target label.
    pod_label: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BuiltinQueries:
    """The two builtin query templates of one metrics provider, as sent (whitespace-collapsed)."""

    observer: str  # Flagger's observer family ("istio", "http", "appmesh", ...)
    success_rate: str  # percent of non-5xx requests, 0..100
    duration: str  # P99 latency (nginx, skipper: mean), in the unit that duration_scale converts
    duration_scale: float = 1.0  # multiply the duration query's result to get milliseconds
    # Skipper route names replace every non-word character of the model values with "_".
    encode_for_skipper: bool = False
    # Prefix of the error Flagger's observer returns from its success-rate call (around "no
    # values found" or the provider's error); it ends up in the events ("...is not receiving
    # traffic: running query failed: no values found"). Duration calls always wrap.
    success_rate_error_prefix: str = _WRAPPED
    #: How the answers name their target, when many canaries' queries can be grouped into one.
    grouping: ResultIdentity | None = None


def render_builtin(template: str, model: TemplateModel, *, source: str) -> str:
    """Render a builtin query ``template``, each value escaped for the matcher it lands in.

    ``render_query`` with ``escape_regex``: a value in a ``=~`` / ``!~`` matcher matches exactly
    itself (module docstring). Raise RenderError as ``render_query`` does.
    """
    return render_query(template, model, source=source, escape_regex=True)


def _q(text: str) -> str:
    return collapse_whitespace(text)


# Flagger's Envoy-cluster queries (contour, gloo, kuma, knative): they differ only in the matcher
# that selects the canary's cluster, which replaces SELECTOR. The trailing commas inside the
# selectors are Flagger's; PromQL accepts them and keeping them keeps the queries byte-identical.
_ENVOY_SUCCESS_RATE = """
    sum(
        rate(
            envoy_cluster_upstream_rq{
                SELECTOR,
                envoy_response_code!~"5.*"
            }[{{ interval }}]
        )
    )
    /
    sum(
        rate(
            envoy_cluster_upstream_rq{
                SELECTOR,
            }[{{ interval }}]
        )
    )
    * 100"""
_ENVOY_DURATION = """
    histogram_quantile(
        0.99,
        sum(
            rate(
                envoy_cluster_upstream_rq_time_bucket{
                    SELECTOR,
                }[{{ interval }}]
            )
        ) by (le)
    )"""


def _envoy_cluster(observer: str, selector: str) -> BuiltinQueries:
    return BuiltinQueries(
        observer=observer,
        success_rate=_q(_ENVOY_SUCCESS_RATE.replace("SELECTOR", selector)),
        duration=_q(_ENVOY_DURATION.replace("SELECTOR", selector)),
    )


_ISTIO = BuiltinQueries(
    observer="istio",
    success_rate=_q("""
    sum(
        rate(
            istio_requests_total{
                reporter="destination",
                destination_workload_namespace="{{ namespace }}",
                destination_workload=~"{{ target }}",
                response_code!~"5.*"
            }[{{ interval }}]
        )
    )
    /
    sum(
        rate(
            istio_requests_total{
                reporter="destination",
                destination_workload_namespace="{{ namespace }}",
                destination_workload=~"{{ target }}"
            }[{{ interval }}]
        )
    )
    * 100"""),
    duration=_q("""
    histogram_quantile(
        0.99,
        sum(
            rate(
                istio_request_duration_milliseconds_bucket{
                    reporter="destination",
                    destination_workload_namespace="{{ namespace }}",
                    destination_workload=~"{{ target }}"
                }[{{ interval }}]
            )
        ) by (le)
    )"""),
    grouping=ResultIdentity(
        (("namespace", "destination_workload_namespace"), ("target", "destination_workload"))
    ),
)

_LINKERD = BuiltinQueries(
    observer="linkerd",
    success_rate=_q("""
    sum(
        rate(
            response_total{
                namespace="{{ namespace }}",
                deployment=~"{{ target }}",
                classification!="failure",
                direction="inbound"
            }[{{ interval }}]
        )
    )
    /
    sum(
        rate(
            response_total{
                namespace="{{ namespace }}",
                deployment=~"{{ target }}",
                direction="inbound"
            }[{{ interval }}]
        )
    )
    * 100"""),
    duration=_q("""
    histogram_quantile(
        0.99,
        sum(
            rate(
                response_latency_ms_bucket{
                    namespace="{{ namespace }}",
                    deployment=~"{{ target }}",
                    direction="inbound"
                }[{{ interval }}]
            )
        ) by (le)
    )"""),
    grouping=ResultIdentity((("namespace", "namespace"), ("target", "deployment"))),
)

_NGINX = BuiltinQueries(
    observer="nginx",
    success_rate=_q("""
    sum(
        rate(
            nginx_ingress_controller_requests{
                namespace="{{ namespace }}",
                ingress="{{ ingress }}",
                canary!="",
                status!~"5.*"
            }[{{ interval }}]
        )
    )
    /
    sum(
        rate(
            nginx_ingress_controller_requests{
                namespace="{{ namespace }}",
                ingress="{{ ingress }}",
                canary!=""
            }[{{ interval }}]
        )
    )
    * 100"""),
    # Mean latency, not P99: nginx exports no usable histogram per canary ingress.
    duration=_q("""
    sum(
        rate(
            nginx_ingress_controller_response_duration_seconds_sum{
                namespace="{{ namespace }}",
                ingress="{{ ingress }}",
                canary!=""
            }[{{ interval }}]
        )
    )
    /
    sum(
        rate(
            nginx_ingress_controller_response_duration_seconds_count{
                namespace="{{ namespace }}",
                ingress="{{ ingress }}",
                canary!=""
            }[{{ interval }}]
        )
    )
    * 1000"""),
    grouping=ResultIdentity((("namespace", "namespace"), ("ingress", "ingress"))),
)

# The generic HTTP observer reads the app's own http_request_duration_seconds histogram (needs the
# kubernetes_pod_name relabeling). Its success-rate call returns Prometheus' error unwrapped.
_HTTP = BuiltinQueries(
    observer="http",
    success_rate=_q("""
    sum(
        rate(
            http_request_duration_seconds_count{
                kubernetes_namespace="{{ namespace }}",
                kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)",
                status!~"5.*"
            }[{{ interval }}]
        )
    )
    /
    sum(
        rate(
            http_request_duration_seconds_count{
                kubernetes_namespace="{{ namespace }}",
                kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"
            }[{{ interval }}]
        )
    )
    * 100"""),
    duration=_q("""
    histogram_quantile(
        0.99,
        sum(
            rate(
                http_request_duration_seconds_bucket{
                    kubernetes_namespace="{{ namespace }}",
                    kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"
                }[{{ interval }}]
            )
        ) by (le)
    )"""),
    duration_scale=1000.0,
    success_rate_error_prefix="",
    grouping=ResultIdentity(
        (("namespace", "kubernetes_namespace"),), pod_label="kubernetes_pod_name"
    ),
)

_APPMESH = BuiltinQueries(
    observer="appmesh",
    success_rate=_q("""
    sum(
        rate(
            envoy_cluster_upstream_rq{
                kubernetes_namespace="{{ namespace }}",
                kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)",
                envoy_response_code!~"5.*"
            }[{{ interval }}]
        )
    )
    /
    sum(
        rate(
            envoy_cluster_upstream_rq{
                kubernetes_namespace="{{ namespace }}",
                kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"
            }[{{ interval }}]
        )
    )
    * 100"""),
    duration=_q("""
    histogram_quantile(
        0.99,
        sum(
            rate(
                envoy_cluster_upstream_rq_time_bucket{
                    kubernetes_namespace="{{ namespace }}",
                    kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"
                }[{{ interval }}]
            )
        ) by (le)
    )"""),
    grouping=ResultIdentity(
        (("namespace", "kubernetes_namespace"),), pod_label="kubernetes_pod_name"
    ),
)

_CONTOUR = _envoy_cluster(
    "contour", 'envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+"'
)

_GLOO = _envoy_cluster(
    "gloo",
    'envoy_cluster_name=~"{{ namespace }}-{{ target }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+"',
)

_TRAEFIK = BuiltinQueries(
    observer="traefik",
    success_rate=_q("""
    sum(
        rate(
            traefik_service_request_duration_seconds_bucket{
                service=~"{{ namespace }}-{{ target }}-canary-[0-9a-zA-Z-]+@kubernetescrd",
                code!~"5..",
                le="+Inf"
            }[{{ interval }}]
        )
    )
    /
    sum(
        rate(
            traefik_service_request_duration_seconds_bucket{
                service=~"{{ namespace }}-{{ target }}-canary-[0-9a-zA-Z-]+@kubernetescrd",
                le="+Inf"
            }[{{ interval }}]
        )
    ) * 100"""),
    duration=_q("""
    histogram_quantile(
        0.99,
        sum(
            rate(
                traefik_service_request_duration_seconds_bucket{
                    service=~"{{ namespace }}-{{ target }}-canary-[0-9a-zA-Z-]+@kubernetescrd"
                }[{{ interval }}]
            )
        ) by (le)
    ) * 1000"""),
)

_OSM = BuiltinQueries(
    observer="osm",
    success_rate=_q("""
    sum(
        rate(
            osm_request_total{
                destination_namespace="{{ namespace }}",
                destination_kind="Deployment",
                destination_name="{{ target }}",
                response_code!~"5.*"
            }[{{ interval }}]
        )
    )
    /
    sum(
        rate(
            osm_request_total{
                destination_namespace="{{ namespace }}",
                destination_kind="Deployment",
                destination_name="{{ target }}"
            }[{{ interval }}]
        )
    )
    * 100"""),
    duration=_q("""
    histogram_quantile(
        0.99,
        sum(
            rate(
                osm_request_duration_ms_bucket{
                    destination_namespace="{{ namespace }}",
                    destination_kind="Deployment",
                    destination_name="{{ target }}"
                }[{{ interval }}]
            )
        ) by (le)
    )"""),
    grouping=ResultIdentity(
        (("namespace", "destination_namespace"), ("target", "destination_name"))
    ),
)

_KUMA = _envoy_cluster("kuma", 'service=~"{{ target }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+"')

_APISIX = BuiltinQueries(
    observer="apisix",
    success_rate=_q("""
    sum(
        rate(
            apisix_http_status{
                route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+",
                code!~"5.."
            }[{{ interval }}]
        )
    )
    /
    sum(
        rate(
            apisix_http_status{
                route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+"
            }[{{ interval }}]
        )
    ) * 100"""),
    duration=_q("""
    histogram_quantile(
        0.99,
        sum(
            rate(
                apisix_http_latency_bucket{
                    type=~"request",
                    route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+"
                }[{{ interval }}]
            )
        ) by (le)
    )"""),
)

# Flagger builds Skipper's route regex into a Go template variable ($route); it is expanded here
# because our renderer supports no template variables. No whitespace inside the selectors: these
# strings are Flagger's bytes, so they are concatenated rather than laid out.
_SKIPPER_ROUTE = (
    "kube(ew)?_{{ namespace }}__{{ ingress }}_canary__.*__{{ service }}_canary(_[0-9]+)?"
)


def _skipper(text: str) -> str:
    return _q(text).replace("{{ $route }}", _SKIPPER_ROUTE)


_SKIPPER = BuiltinQueries(
    observer="skipper",
    success_rate=_skipper(
        " sum(rate(skipper_response_duration_seconds_bucket"
        '{route=~"{{ $route }}",code!~"5..",le="+Inf"}[{{ interval }}])) /'
        " sum(rate(skipper_response_duration_seconds_bucket"
        '{route=~"{{ $route }}",le="+Inf"}[{{ interval }}])) * 100'
    ),
    duration=_skipper(
        " sum(rate(skipper_serve_route_duration_seconds_sum"
        '{route=~"{{ $route }}"}[{{ interval }}])) /'
        " sum(rate(skipper_serve_route_duration_seconds_count"
        '{route=~"{{ $route }}"}[{{ interval }}])) * 1000'
    ),
    encode_for_skipper=True,
)

# Knative (Flagger's observers/knative.go): Envoy's cluster for the revision; {{ route }} is the
# latest created revision (TemplateModel.for_metric). Milliseconds, like the other Envoy meshes.
_KNATIVE = _envoy_cluster("knative", 'envoy_cluster_name=~"{{ namespace }}/{{ route }}"')

_BY_PROVIDER: dict[str, BuiltinQueries] = {
    "istio": _ISTIO,
    "linkerd": _LINKERD,
    "nginx": _NGINX,
    "kubernetes": _HTTP,
    "gatewayapi:v1": _HTTP,
    "gatewayapi:v1beta1": _HTTP,
    "appmesh": _APPMESH,
    "appmesh:v1beta2": _APPMESH,
    "contour": _CONTOUR,
    "gloo": _GLOO,
    "traefik": _TRAEFIK,
    "osm": _OSM,
    "kuma": _KUMA,
    "apisix": _APISIX,
    "skipper": _SKIPPER,
    "knative": _KNATIVE,
}

#: Metrics providers with builtin request-success-rate / request-duration queries.
BUILTIN_PROVIDERS: tuple[str, ...] = tuple(_BY_PROVIDER)


def builtin_queries(provider: str) -> BuiltinQueries:
    """Return the builtin queries of a metrics provider (``spec.provider`` or the default).

    Raise NotSupportedError naming the accepted providers for anything else (Flagger would
    silently use the Istio queries, §12 Q11).
    """
    found = _BY_PROVIDER.get(provider)
    if found is None:
        raise NotSupportedError(
            f"no builtin request-success-rate / request-duration queries for metrics provider "
            f"{provider!r}; accepted: {', '.join(BUILTIN_PROVIDERS)}. Use a MetricTemplate "
            "(templateRef) for other providers"
        )
    return found
