"""A dotted workload name against a real Prometheus: its builtin queries read its own series only.

``secret.app`` is a legal Deployment name (a DNS subdomain). Flagger puts it unescaped into
``destination_workload=~"secret.app"`` / ``kubernetes_pod_name=~"secret.app-..."``, where ``.`` is
a regex wildcard, so its queries also select the look-alike workloads ``secret-app`` and
``secretxapp`` and ``sum`` them in: a wrong number, not an error. This module serves its own small
exporter (istio and kubernetes-observer series for those three workloads: ``secret.app`` healthy,
the look-alikes failing half their requests and slower) and its own Prometheus (Debian's
``prometheus``, as ``test_prometheus_e2e``; 1 s scrapes, stopped in the teardown), then checks
that canary-engine's escaped queries return ``secret.app``'s own values, that the unescaped
(Flagger) query really mixes the workloads, and that grouped and per-canary answers agree.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator

import pytest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from analysis import QueryFailure, open_prometheus
from tests.e2e.test_prometheus_e2e import (
    NAMESPACE,
    P99_MS,
    SECONDS_BUCKETS,
    LivePrometheus,
    _buckets,
    _instant,
    planned,
    serve_prometheus,
)

pytestmark = pytest.mark.slow

#: workload -> (requests per second, share answered 5xx, latency in seconds)
WORKLOADS = {
    "secret.app": (200.0, 0.005, 0.05),
    "secret-app": (200.0, 0.5, 0.2),
    "secretxapp": (200.0, 0.5, 0.2),
}
PODS = {name: [f"{name}-6b7c8d9f5-abcde", f"{name}-6b7c8d9f5-fghij"] for name in WORKLOADS}
EXPECTED_RATE = {"secret.app": 99.5, "secret-app": 50.0, "secretxapp": 50.0}
SLOW_P99_MS = 100 + 150 * 0.99  # 200 ms requests: interpolated inside the (100ms, 250ms] bucket
EXPECTED_P99 = {"secret.app": P99_MS, "secret-app": SLOW_P99_MS, "secretxapp": SLOW_P99_MS}
#: What the unescaped regex reads: all three workloads summed (equal request rates).
MIXED_RATE = (99.5 + 50.0 + 50.0) / 3
PROVIDERS = ("istio", "kubernetes")


class LookalikeCollector:
    """The three workloads' counters at the moment of each scrape (rates exact by construction)."""

    def __init__(self, started: float) -> None:
        self.started = started

    def collect(self) -> Iterable[Metric]:
        elapsed = time.monotonic() - self.started
        labels = ["reporter", "destination_workload_namespace", "destination_workload"]
        istio = CounterMetricFamily("istio_requests", "Requests", labels=[*labels, "response_code"])
        istio_ms = HistogramMetricFamily(
            "istio_request_duration_milliseconds", "Duration (ms)", labels=labels
        )
        http = HistogramMetricFamily(
            "http_request_duration_seconds",
            "Duration (s)",
            labels=["kubernetes_namespace", "kubernetes_pod_name", "status"],
        )
        for workload, (per_second, failing, latency) in WORKLOADS.items():
            total = per_second * elapsed
            istio_ms.add_metric(
                ["destination", NAMESPACE, workload],
                _buckets(total, [b * 1000 for b in SECONDS_BUCKETS], latency * 1000),
                sum_value=total * latency * 1000,
            )
            for code, count in (("200", total * (1 - failing)), ("503", total * failing)):
                istio.add_metric(["destination", NAMESPACE, workload, code], count)
                for pod in PODS[workload]:
                    share = count / len(PODS[workload])
                    http.add_metric(
                        [NAMESPACE, pod, code],
                        _buckets(share, list(SECONDS_BUCKETS), latency),
                        sum_value=share * latency,
                    )
        yield istio
        yield istio_ms
        yield http


@pytest.fixture(scope="module")
def lookalikes() -> Iterator[LivePrometheus]:
    # every workload has a rate in both families (two samples in the window)
    probe = (
        'count(rate(istio_requests_total{response_code="200"}[10s])) == 3 and '
        'count(rate(http_request_duration_seconds_count{status="200"}[10s])) == 6'
    )
    with serve_prometheus(LookalikeCollector(time.monotonic()), probe) as live:
        yield live


async def _no_sleep(seconds: float) -> None:
    return None


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_dotted_name_reads_only_its_own_series(
    lookalikes: LivePrometheus, provider: str
) -> None:
    rate_query, duration_query = planned(lookalikes.url, "secret.app", provider)
    assert rate_query.expr is not None and "secret\\\\.app" in rate_query.expr
    async with open_prometheus(sleep=_no_sleep) as source:
        rate, duration = await source.fetch([rate_query, duration_query])
    assert not isinstance(rate, QueryFailure), rate
    assert not isinstance(duration, QueryFailure), duration
    assert rate == pytest.approx(EXPECTED_RATE["secret.app"], rel=1e-9)
    assert duration == pytest.approx(P99_MS, rel=1e-9)  # ms, both providers

    # The control: Flagger's unescaped query reads the look-alikes too (summed into one value).
    flaggers = rate_query.expr.replace("secret\\\\.app", "secret.app")
    [mixed] = _instant(lookalikes.url, flaggers)
    assert float(mixed["value"][1]) == pytest.approx(MIXED_RATE, rel=1e-9)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_grouped_and_per_canary_answers_agree_with_a_dotted_name(
    lookalikes: LivePrometheus, provider: str
) -> None:
    names = list(WORKLOADS)
    queries = [q for name in names for q in planned(lookalikes.url, name, provider)]
    instant = lookalikes.ready_at
    await asyncio.sleep(max(0.0, instant + 1.5 - time.time()))
    async with (
        open_prometheus(sleep=_no_sleep, query_time=lambda: instant) as grouped,
        open_prometheus(sleep=_no_sleep, query_time=lambda: instant, group=False) as single,
    ):
        together = await grouped.fetch(queries)
        alone = await single.fetch(queries)
        # the look-alikes are grouped (one request per query shape); secret.app goes alone
        assert (grouped.requests_sent, single.requests_sent) == (2 + 2, len(queries))
    assert together == alone  # bit for bit (instant queries, analysis._grouping)
    for name, rate, duration in zip(names, together[::2], together[1::2], strict=True):
        assert rate == pytest.approx(EXPECTED_RATE[name], rel=1e-9), name
        assert duration == pytest.approx(EXPECTED_P99[name], rel=1e-9), name
