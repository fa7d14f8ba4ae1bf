"""Live metrics end to end against a real Prometheus server (Debian's ``prometheus`` package).

The test serves a small exporter itself (prometheus-client): request counters and latency
histograms labelled as the builtin queries of the ``kubernetes`` and ``istio`` providers expect,
for a healthy canary ``good``, a canary ``bad`` that answers half its requests with 5xx, and their
``-primary`` workloads. Counter values are a function of the time of the scrape, so the
rates' ratios are exact: success rate 99.5 % (good, primaries) and 50 % (bad); every request takes
50 ms, which the histograms' buckets turn into a P99 of 25 + 75 * 0.99 = 99.25 ms.

Prometheus runs on 127.0.0.1 on a free port with a temporary storage directory and a 1 s scrape
interval; it is stopped in the fixture's teardown whatever happens. Then: the builtin queries
return those values through ``PrometheusSource``; grouped and per-canary answers are identical;
crafted names cannot break a grouped query; ``canary-engine record`` captures recordings that
``canary-engine simulate`` replays to a promotion (good) and a rollback (bad).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from analysis import (
    MetricQuery,
    QueryFailure,
    load_recording,
    open_prometheus,
    plan_queries,
)
from config import parse_canary
from engine.cli import main
from tests.servers import free_port, running

pytestmark = pytest.mark.slow

NAMESPACE = "e2e"
#: workload -> (requests per second, share answered 5xx)
WORKLOADS = {
    "good": (200.0, 0.005),
    "good-primary": (200.0, 0.005),
    "bad": (200.0, 0.5),
    "bad-primary": (200.0, 0.005),
}
#: kubernetes_pod_name values per workload (two pods each: the query sums them)
PODS = {
    "good": ["good-6b7c8d9f5-abcde", "good-6b7c8d9f5-fghij"],
    "good-primary": ["good-primary-7c8d9f5b6-klmno", "good-primary-7c8d9f5b6-pqrst"],
    "bad": ["bad-5c6d7e8f9-uvwxy", "bad-5c6d7e8f9-zabcd"],
    "bad-primary": ["bad-primary-6d7e8f9a1-efghi", "bad-primary-6d7e8f9a1-jklmn"],
}
LATENCY_SECONDS = 0.05
SECONDS_BUCKETS = (0.01, 0.025, 0.1, 0.25, 0.5, 1.0)
P99_MS = 25 + 75 * 0.99  # histogram_quantile's linear interpolation inside the (25ms, 100ms] bucket
INTERVAL = "10s"  # analysis interval, metric window and record step


class FleetCollector:
    """Exposes the fleet's counters at the moment of each scrape (rates exact by construction)."""

    def __init__(self, started: float) -> None:
        self.started = started

    def collect(self) -> Iterable[Metric]:
        elapsed = time.monotonic() - self.started
        istio = CounterMetricFamily(
            "istio_requests",
            "Requests by destination workload",
            labels=[
                "reporter",
                "destination_workload_namespace",
                "destination_workload",
                "response_code",
            ],
        )
        istio_ms = HistogramMetricFamily(
            "istio_request_duration_milliseconds",
            "Request duration (ms)",
            labels=[
                "reporter",
                "destination_workload_namespace",
                "destination_workload",
                "response_code",
            ],
        )
        http = HistogramMetricFamily(
            "http_request_duration_seconds",
            "Request duration (s)",
            labels=["kubernetes_namespace", "kubernetes_pod_name", "status"],
        )
        for workload, (per_second, failing) in WORKLOADS.items():
            total = per_second * elapsed
            by_code = {"200": total * (1 - failing), "503": total * failing}
            for code, count in by_code.items():
                labels = ["destination", NAMESPACE, workload, code]
                istio.add_metric(labels, count)
                istio_ms.add_metric(
                    labels,
                    _buckets(count, [b * 1000 for b in SECONDS_BUCKETS], LATENCY_SECONDS * 1000),
                    sum_value=count * LATENCY_SECONDS * 1000,
                )
                pods = PODS[workload]
                for pod in pods:
                    share = count / len(pods)
                    http.add_metric(
                        [NAMESPACE, pod, code],
                        _buckets(share, list(SECONDS_BUCKETS), LATENCY_SECONDS),
                        sum_value=share * LATENCY_SECONDS,
                    )
        yield istio
        yield istio_ms
        yield http


def _buckets(count: float, bounds: list[float], latency: float) -> list[tuple[str, float]]:
    """Cumulative buckets of ``count`` requests that all took ``latency``."""
    out = [(repr(b), count if latency <= b else 0.0) for b in bounds]
    return [*out, ("+Inf", count)]


@dataclass(frozen=True)
class LivePrometheus:
    url: str
    ready_at: float  # Unix time when the builtin queries first had a value


def _instant(url: str, query: str) -> list[Any]:
    response = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=5)
    response.raise_for_status()
    result: list[Any] = response.json()["data"]["result"]
    return result


@contextlib.contextmanager
def serve_prometheus(collector: Collector, probe: str) -> Iterator[LivePrometheus]:
    """Debian's prometheus on 127.0.0.1 scraping ``collector`` every second, yielded once the
    instant query ``probe`` answers something; everything is stopped on exit."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail(
            "the prometheus server binary is not installed: apt-get install prometheus "
            "(Debian's package; .ci/run installs it)"
        )
    registry = CollectorRegistry()
    registry.register(collector)
    exporter, exporter_thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    exporter_port = exporter.server_port
    workdir = tempfile.TemporaryDirectory(prefix="canary-engine-prom-")
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "fleet", "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]}
        ],
    }
    config_file = Path(workdir.name, "prometheus.yml")
    config_file.write_text(yaml.safe_dump(config))
    url = f"http://127.0.0.1:{port}"
    argv = [
        binary,
        f"--config.file={config_file}",
        f"--storage.tsdb.path={Path(workdir.name, 'data')}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    try:
        with running(
            argv,
            log=Path(workdir.name, "prometheus.log"),
            ready=lambda: bool(_instant(url, probe)),
            not_ready="prometheus had no samples after 30s",
        ):
            yield LivePrometheus(url=url, ready_at=time.time())
    finally:
        exporter.shutdown()
        exporter.server_close()
        exporter_thread.join(timeout=5)
        workdir.cleanup()


@pytest.fixture(scope="module")
def prometheus() -> Iterator[LivePrometheus]:
    probe = (
        'sum(rate(istio_requests_total{destination_workload="bad"}[10s])) and '
        'sum(rate(http_request_duration_seconds_count{kubernetes_pod_name=~"bad-.*"}[10s]))'
    )
    with serve_prometheus(FleetCollector(time.monotonic()), probe) as live:
        yield live


def test_the_prometheus_server_is_installed() -> None:
    """Fail (never skip) without the server: the e2e tests below need the real thing."""
    assert shutil.which("prometheus"), (
        "the prometheus server binary is not installed: apt-get install prometheus"
    )


def canary_body(name: str, provider: str) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "provider": provider,
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "service": {"port": 80},
            "analysis": {
                "interval": INTERVAL,
                "threshold": 1,
                "maxWeight": 50,
                "stepWeight": 25,
                "metrics": [
                    {
                        "name": "request-success-rate",
                        "interval": INTERVAL,
                        "thresholdRange": {"min": 99},
                    },
                    {
                        "name": "request-duration",
                        "interval": INTERVAL,
                        "thresholdRange": {"max": 500},
                    },
                ],
            },
        },
    }


def planned(url: str, name: str, provider: str, target: str = "canary") -> list[MetricQuery]:
    canary = parse_canary(canary_body(name, provider))
    return plan_queries(
        canary,
        {},
        provider=provider,
        default_server=url,
        target=target,  # type: ignore[arg-type]
    )


async def _no_sleep(seconds: float) -> None:
    return None


EXPECTED = {"good": 99.5, "good-primary": 99.5, "bad": 50.0, "bad-primary": 99.5}


@pytest.mark.parametrize("provider", ["kubernetes", "istio"])
async def test_builtin_queries_return_what_the_exporter_implies(
    prometheus: LivePrometheus, provider: str
) -> None:
    async with open_prometheus(sleep=_no_sleep) as source:
        assert await source.ping(prometheus.url) == ""
        for name in ("good", "bad"):
            for target in ("canary", "primary"):
                queries = planned(prometheus.url, name, provider, target)
                rate, duration = await source.fetch(queries)
                workload = name if target == "canary" else f"{name}-primary"
                assert not isinstance(rate, QueryFailure), rate
                assert not isinstance(duration, QueryFailure), duration
                assert rate == pytest.approx(EXPECTED[workload], rel=1e-9), workload
                assert duration == pytest.approx(P99_MS, rel=1e-9), workload  # ms, both providers


@pytest.mark.parametrize("provider", ["kubernetes", "istio"])
async def test_grouped_and_per_canary_answers_are_identical(
    prometheus: LivePrometheus, provider: str
) -> None:
    queries = [
        q
        for name in ("good", "bad", "absent")
        for target in ("canary", "primary")
        for q in planned(prometheus.url, name, provider, target)
    ]
    # Both evaluate at the same instant (Prometheus' `time` parameter), so they see the same data;
    # one at which the samples were there, and whose scrapes are all stored by now.
    instant = prometheus.ready_at
    await asyncio.sleep(max(0.0, instant + 1.5 - time.time()))
    async with (
        open_prometheus(sleep=_no_sleep, query_time=lambda: instant) as grouped,
        open_prometheus(sleep=_no_sleep, query_time=lambda: instant, group=False) as single,
    ):
        together = await grouped.fetch(queries)
        alone = await single.fetch(queries)
        assert (grouped.requests_sent, single.requests_sent) == (2, len(queries))
    assert together == alone  # bit for bit, failures included
    for query, answer in zip(queries, together, strict=True):
        if query.canary.endswith("/absent"):
            assert isinstance(answer, QueryFailure) and answer.kind == "no_data"
        else:
            assert isinstance(answer, float) and math.isfinite(answer)


async def test_crafted_names_cannot_break_a_grouped_query(prometheus: LivePrometheus) -> None:
    crafted = '"} or vector(100) or {__name__=~".+'
    body = canary_body("good", "istio")
    evil = dict(body, metadata={"name": "good", "namespace": crafted})
    queries = [
        *plan_queries(parse_canary(body), {}, provider="istio", default_server=prometheus.url),
        *plan_queries(parse_canary(evil), {}, provider="istio", default_server=prometheus.url),
    ]
    async with open_prometheus(sleep=_no_sleep) as source:
        answers = await source.fetch(queries)
        assert source.stats.requests == 2  # grouped, and Prometheus parsed it (no rejection)
    assert answers[0] == pytest.approx(99.5, rel=1e-9)
    assert answers[1] == pytest.approx(P99_MS, rel=1e-9)
    assert all(isinstance(a, QueryFailure) and a.kind == "no_data" for a in answers[2:])


def test_record_then_simulate_promotes_good_and_rolls_back_bad(
    prometheus: LivePrometheus, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = math.ceil(prometheus.ready_at) + 1
    end = start + 10
    time.sleep(max(0.0, end + 2.5 - time.time()))  # the last step's scrape is in
    outcomes: dict[str, tuple[int, dict[str, Any]]] = {}
    for name, provider, ext in (
        ("good", "istio", "csv"),
        ("bad", "istio", "json"),
        ("good", "kubernetes", "json"),
        ("bad", "kubernetes", "csv"),
    ):
        canary_file = tmp_path / f"{name}-{provider}.yaml"
        canary_file.write_text(yaml.safe_dump(canary_body(name, provider)))
        recording = tmp_path / f"{name}-{provider}.{ext}"
        status = main(
            [
                "record",
                "--prometheus",
                prometheus.url,
                "--canary",
                str(canary_file),
                "--start",
                str(start),
                "--end",
                str(end),
                "-o",
                str(recording),
            ]
        )
        captured = capsys.readouterr()
        assert status == 0, captured.err
        assert f"to {recording}" in captured.err
        loaded = load_recording(recording)
        assert loaded.keys == {
            (target, metric)
            for target in ("canary", "primary")
            for metric in ("request-success-rate", "request-duration")
        }
        for t in (0.0, 10.0):
            rate = loaded.value_at("canary", "request-success-rate", t)
            assert rate == pytest.approx(EXPECTED[name], rel=1e-9)
            assert loaded.value_at("primary", "request-success-rate", t) == pytest.approx(99.5)
            assert loaded.value_at("canary", "request-duration", t) == pytest.approx(P99_MS)
        status = main(
            [
                "simulate",
                "--canary",
                str(canary_file),
                "--recording",
                str(recording),
                "--output",
                "json",
            ]
        )
        outcomes[f"{name}/{provider}"] = (status, json.loads(capsys.readouterr().out))
    for key, (status, doc) in outcomes.items():
        expected = (0, "promoted") if key.startswith("good") else (1, "rolled_back")
        assert (status, doc["result"]) == expected, key
    bad_checks = next(t["checks"] for t in outcomes["bad/istio"][1]["ticks"] if t["checks"])
    assert bad_checks[0]["metric"] == "request-success-rate"
    assert bad_checks[0]["value"] == pytest.approx(50.0) and not bad_checks[0]["passed"]
    assert bad_checks[1]["value"] == 99  # whole milliseconds, as Flagger truncates


def test_record_reports_an_unreachable_prometheus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canary_file = tmp_path / "good.yaml"
    canary_file.write_text(yaml.safe_dump(canary_body("good", "istio")))
    status = main(
        [
            "record",
            "--prometheus",
            f"http://127.0.0.1:{free_port()}",
            "--canary",
            str(canary_file),
            "--start",
            "-1m",
            "--end",
            "-0s",
            "-o",
            str(tmp_path / "out.csv"),
        ]
    )
    err = capsys.readouterr().err
    assert status == 4, err
    assert "metric 'request-success-rate' (canary) query ' sum( rate( istio_requests_total" in err
    assert "unreachable" in err
