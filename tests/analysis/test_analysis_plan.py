"""plan_checks (and plan_queries, its queries alone) follow Flagger's two passes, its Q10
behaviour and our §12 decisions."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import config
from analysis import CheckKind, Endpoint, plan_checks, plan_queries

CanaryFactory = Callable[..., config.Canary]
TemplateFactory = Callable[..., config.MetricTemplate]

DEFAULT = "http://prometheus:9090"


def test_builtin_pass_then_template_pass_in_spec_order(
    make_canary: CanaryFactory, make_template: TemplateFactory
) -> None:
    canary = make_canary(
        [
            {"name": "latency", "templateRef": {"name": "lat"}, "thresholdRange": {"max": 1}},
            {"name": "request-duration", "thresholdRange": {"max": 500}},
            # Q10: a builtin name with a templateRef runs the builtin AND the template
            {
                "name": "request-success-rate",
                "templateRef": {"name": "sr"},
                "thresholdRange": {"min": 99},
            },
            {"name": "errors", "query": "sum(errors)", "threshold": 5},
        ]
    )
    templates = {
        ("test", "lat"): make_template("lat", "lat_query"),
        ("test", "sr"): make_template("sr", "sr_query"),
    }
    queries = plan_queries(canary, templates, provider="istio", default_server=DEFAULT)
    assert [(q.metric, q.kind) for q in queries] == [
        ("request-duration", CheckKind.DURATION),
        ("request-success-rate", CheckKind.SUCCESS_RATE),
        ("errors", CheckKind.QUERY),
        ("latency", CheckKind.TEMPLATE),
        ("request-success-rate", CheckKind.TEMPLATE),
    ]
    assert [q.expr for q in queries][2:] == ["sum(errors)", "lat_query", "sr_query"]
    assert all(q.target == "canary" and q.canary == "test/podinfo" for q in queries)
    assert all(q.render_error is None for q in queries)


def test_builtin_name_with_inline_query_runs_both(make_canary: CanaryFactory) -> None:
    canary = make_canary(
        [{"name": "request-success-rate", "query": "vector(100)", "thresholdRange": {"min": 99}}]
    )
    queries = plan_queries(canary, {}, provider="istio", default_server=DEFAULT)
    assert [q.kind for q in queries] == [CheckKind.SUCCESS_RATE, CheckKind.QUERY]
    assert queries[1].expr == "vector(100)"


def test_builtin_queries_carry_bounds_units_and_server(make_canary: CanaryFactory) -> None:
    canary = make_canary(
        [
            {"name": "request-success-rate", "thresholdRange": {"min": 99.5}},
            {"name": "request-duration", "threshold": 500, "interval": "30s"},
        ],
        provider="kubernetes",
        metricsServer="http://thanos:9090",
    )
    rate_check, duration_check = plan_checks(
        canary, {}, provider="kubernetes", default_server=DEFAULT
    )
    rate, duration = rate_check.query, duration_check.query
    # What is judged: the bounds, and Flagger's whole-millisecond truncation of a duration ...
    assert (rate_check.lo, rate_check.hi, rate_check.truncate) == (99.5, None, False)
    assert (duration_check.lo, duration_check.hi, duration_check.truncate) == (None, 500.0, True)
    # ... and what is asked: the unit, the server, the rendered query.
    assert (rate.scale, duration.scale) == (1.0, 1000.0)
    assert rate.endpoint.server == duration.endpoint.server == "http://thanos:9090"
    assert rate.observer == "kubernetes" and rate.target_name == "podinfo"
    assert rate.expr is not None and 'kubernetes_namespace="test"' in rate.expr
    assert duration.expr is not None and "[30s]" in duration.expr


def test_template_server_headers_and_secret(
    make_canary: CanaryFactory, make_template: TemplateFactory
) -> None:
    canary = make_canary(
        [
            {"name": "a", "templateRef": {"name": "remote", "namespace": "monitoring"}},
            {"name": "b", "templateRef": {"name": "local"}},
        ],
        metricsServer="http://thanos:9090",
    )
    remote = make_template(
        "remote",
        "up",
        namespace="monitoring",
        provider={
            "type": "prometheus",
            "address": "https://prom.example",
            "headers": {"X-Scope-OrgID": ["a", "b"]},
            "secretRef": {"name": "prom-auth"},
            "insecureSkipVerify": True,
        },
    )
    local = make_template("local", "up")
    templates = {("monitoring", "remote"): remote, ("test", "local"): local}
    first, second = plan_queries(canary, templates, provider="istio", default_server=DEFAULT)
    assert first.endpoint == Endpoint(
        server="https://prom.example",
        headers={"X-Scope-OrgID": "a, b"},
        secret="monitoring/prom-auth",
        insecure_skip_verify=True,
    )
    assert first.template == "monitoring/remote"
    assert second.endpoint.server == "http://thanos:9090"  # no address: spec.metricsServer
    assert second.template == "test/local"  # templateRef without namespace: canary's


def test_default_server_is_the_last_resort(make_canary: CanaryFactory) -> None:
    canary = make_canary([{"name": "request-success-rate", "threshold": 99}])
    (query,) = plan_queries(canary, {}, provider="istio", default_server=DEFAULT)
    assert query.endpoint.server == DEFAULT


def test_template_interval_defaults_to_one_minute_q3(
    make_canary: CanaryFactory, make_template: TemplateFactory
) -> None:
    canary = make_canary([{"name": "lat", "templateRef": {"name": "lat"}}])
    template = make_template("lat", "rate(x[{{ interval }}])")
    (query,) = plan_queries(
        canary, {("test", "lat"): template}, provider="istio", default_server=""
    )
    assert query.expr == "rate(x[1m])"  # Flagger would render "rate(x[])"


@pytest.mark.parametrize(
    ("written", "rendered"),
    [
        ("500ms", "500ms"),  # re-formatted from seconds it became 0s, an empty range
        ("1m30s", "1m30s"),
        ("60s", "60s"),  # as written, as Flagger inserts it
        ("2m", "2m"),
        ("1m30.0s", "90s"),  # a Go duration PromQL cannot read (the CRD lets it through)
    ],
)
def test_template_interval_is_inserted_as_written(
    make_canary: CanaryFactory, make_template: TemplateFactory, written: str, rendered: str
) -> None:
    canary = make_canary([{"name": "lat", "templateRef": {"name": "lat"}, "interval": written}])
    template = make_template("lat", "rate(x[{{ interval }}])")
    (query,) = plan_queries(
        canary, {("test", "lat"): template}, provider="istio", default_server=""
    )
    assert query.expr == f"rate(x[{rendered}])"


def test_prometheus_template_whitespace_is_collapsed_but_values_kept(
    make_canary: CanaryFactory, make_template: TemplateFactory
) -> None:
    canary = make_canary(
        [{"name": "lat", "templateRef": {"name": "lat"}, "templateVariables": {"v": "a  b"}}]
    )
    template = make_template("lat", '\n  sum(\n    x{v="{{ variables.v }}"}\n  )')
    (query,) = plan_queries(
        canary, {("test", "lat"): template}, provider="istio", default_server=""
    )
    assert query.expr == ' sum( x{v="a  b"} )'


def test_missing_template_becomes_a_failing_check_with_flaggers_message(
    make_canary: CanaryFactory,
) -> None:
    canary = make_canary([{"name": "lat", "templateRef": {"name": "lat", "namespace": "ops"}}])
    (query,) = plan_queries(canary, {}, provider="istio", default_server=DEFAULT)
    assert query.expr is None
    assert query.render_error == (
        'Metric template lat.ops error: metrictemplate.flagger.app "lat" not found'
    )


def test_template_render_error_becomes_a_failing_check(
    make_canary: CanaryFactory, make_template: TemplateFactory
) -> None:
    canary = make_canary([{"name": "lat", "templateRef": {"name": "lat"}}])
    template = make_template("lat", 'x{r="{{ variables.reporter }}"}')
    (query,) = plan_queries(
        canary, {("test", "lat"): template}, provider="istio", default_server=""
    )
    assert query.render_error is not None
    assert query.render_error.startswith("Metric template lat.test query render error: ")
    assert '"reporter"' in query.render_error and "test/lat" in query.render_error


def test_metric_without_any_query_is_flaggers_no_usable_query_error(
    make_unchecked_canary: CanaryFactory,
) -> None:
    canary = make_unchecked_canary([{"name": "orphan", "threshold": 1}])
    (query,) = plan_queries(canary, {}, provider="istio", default_server=DEFAULT)
    assert query.render_error == (
        "Metric query failed for no usable metrics template and query were configured"
    )


def test_unknown_provider_for_builtin_metrics_is_refused(
    make_unchecked_canary: CanaryFactory,
) -> None:
    # A provider whose router names no builtin queries (a bare smi:<version>): the planner's
    # backstop (the engine passes the router's builtin set, traffic.builtin_metrics_provider).
    canary = make_unchecked_canary(
        [{"name": "request-success-rate", "threshold": 99}], provider="smi:v1alpha3"
    )
    with pytest.raises(config.NotSupportedError, match="'smi:v1alpha3'"):
        plan_checks(canary, {}, provider="smi:v1alpha3", default_server=DEFAULT)


def test_unknown_provider_is_fine_without_builtin_metrics(
    make_unchecked_canary: CanaryFactory, make_template: TemplateFactory
) -> None:
    canary = make_unchecked_canary(
        [{"name": "lat", "templateRef": {"name": "lat"}}], provider="knative"
    )
    template = make_template("lat", "up")
    queries = plan_queries(
        canary, {("test", "lat"): template}, provider="knative", default_server=""
    )
    assert [q.expr for q in queries] == ["up"]


def test_skipper_model_values_are_encoded(make_canary: CanaryFactory) -> None:
    canary = make_canary(
        [{"name": "request-success-rate", "threshold": 99}],
        provider="skipper",
        namespace="my-ns",
        ingressRef={"name": "web.ingress"},
    )
    (query,) = plan_queries(canary, {}, provider="skipper", default_server=DEFAULT)
    assert query.expr is not None
    assert (
        'route=~"kube(ew)?_my_ns__web_ingress_canary__.*__podinfo_canary(_[0-9]+)?"' in query.expr
    )
