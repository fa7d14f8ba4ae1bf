"""The Initializing tick's provider check walks the metrics in ``analysis.metrics`` order, as
Flagger's ``checkMetricProviderAvailability`` does (the analysis itself runs the builtin and
inline metrics first, then the templates, as Flagger's checks do): with a template listed before
``request-success-rate`` and both providers down, the template is the reason named."""

from __future__ import annotations

from analysis import plan_queries
from config import parse_canary, parse_metric_template
from engine.shell.loop import _in_spec_order


def test_the_provider_check_takes_the_metrics_in_spec_order() -> None:
    canary = parse_canary(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": "test"},
            "spec": {
                "provider": "istio",
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                "service": {"port": 80},
                "analysis": {
                    "interval": "1m",
                    "stepWeight": 10,
                    "metrics": [
                        {"name": "errors", "templateRef": {"name": "errors"}},
                        {"name": "request-success-rate", "thresholdRange": {"min": 99}},
                        {"name": "latency", "templateRef": {"name": "missing"}},
                        {"name": "inline", "query": "sum(up)", "thresholdRange": {"max": 1}},
                    ],
                },
            },
        }
    )
    template = parse_metric_template(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "MetricTemplate",
            "metadata": {"name": "errors", "namespace": "test"},
            "spec": {"provider": {"type": "prometheus"}, "query": "sum(x)"},
        }
    )
    planned = plan_queries(
        canary, {("test", "errors"): template}, provider="istio", default_server="http://p:9090"
    )
    assert [q.metric for q in planned] == ["request-success-rate", "inline", "errors", "latency"]
    ordered = _in_spec_order(canary, planned)
    assert [q.metric for q in ordered] == ["errors", "request-success-rate", "latency", "inline"]
