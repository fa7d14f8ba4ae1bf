"""The Initializing tick's provider check walks the metrics in ``analysis.metrics`` order, as
Flagger's ``checkMetricProviderAvailability`` does (the analysis itself runs the builtin and
inline metrics first, then the templates, as Flagger's checks do): with a template listed before
``request-success-rate`` and both providers down, the template is the reason named. Two metrics
may share a name, the empty one included: each keeps its own place."""

from __future__ import annotations

from collections.abc import Sequence

from driver_world import web_driver

from analysis import MetricQuery

METRICS = [
    {"name": "", "query": "sum(a)", "thresholdRange": {"max": 1}},
    {"name": "errors", "templateRef": {"name": "errors"}},
    {"name": "request-success-rate", "thresholdRange": {"min": 99}},
    {"name": "latency", "templateRef": {"name": "missing"}},
    {"name": "", "query": "sum(b)", "thresholdRange": {"max": 1}},
]


async def test_the_provider_check_gets_the_metrics_in_spec_order() -> None:
    seen: list[tuple[str, str | None]] = []

    async def provider_check(queries: Sequence[MetricQuery]) -> str:
        seen.extend((q.metric, q.expr) for q in queries)
        return ""

    analysis = {"interval": "1m", "threshold": 2, "stepWeight": 50, "metrics": METRICS}
    _, driver = web_driver(provider_check=provider_check, analysis=analysis)
    await driver.tick()  # Initializing: the provider check runs
    assert [name for name, _ in seen] == ["", "errors", "request-success-rate", "latency", ""]
    inline = [expr for name, expr in seen if name == ""]
    assert inline[0] is not None and "sum(a)" in inline[0]
    assert inline[1] is not None and "sum(b)" in inline[1]
