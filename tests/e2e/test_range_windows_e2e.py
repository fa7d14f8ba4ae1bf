"""Long judge windows and the shared range grid against a real Prometheus (Debian's 2.42).

History is backfilled with ``promtool tsdb create-blocks-from openmetrics`` (hours of samples
that a scraping fixture could not produce) and Prometheus is started on it, on 127.0.0.1 and a
free port, stopped in the fixture's teardown:

* a gauge ``lat`` for the primary ``peak-primary`` (namespace ``edge``), one sample a minute for
  8 hours: about 200, but 400 from 5h to 4h before the data ends; its canary ``peak`` answers 300
  for the last 30 minutes. Judged over ``window: 6h`` at ``step: 1s`` (21,600 points, more than
  the 11,000 Prometheus answers per range query), the canary is inside the day's envelope only if
  the whole window is read: the old source kept the newest 11,000 steps (3.06 h), missed the
  peak and failed the canary;
* Istio request counters for six workloads and their primaries, one sample every 15 s for the
  last 2 hours, for the builtin request-success-rate judged for six canaries on one tick.

Also pinned here, as the unit tests' fake Prometheus assumes: a range query is evaluated at
``start + k * step <= end`` and refused past 11,000 steps per series.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from analysis import (
    Verdict,
    analyze,
    judge_checks,
    judge_ticks,
    open_metric_sources,
    plan_checks,
    plan_queries,
)
from analysis._judged import JudgeTick
from analysis._prometheus import open_prometheus
from analysis._types import Series, SeriesRequest
from config import MetricTemplate, parse_canary, parse_metric_template
from tests.servers import free_port, running

pytestmark = pytest.mark.slow

HOUR = 3600.0
PEAK = (5 * HOUR, 4 * HOUR)  # the primary's peak: from 5h to 4h before the data ends
FLEET = [f"svc{n}" for n in range(6)]
LAT_QUERY = 'avg(lat{namespace="{{ namespace }}",deployment="{{ target }}"})'


@dataclass(frozen=True)
class History:
    url: str
    end: float  # the last sample's time (a whole minute in the past)


def primary_lat(t: int, end: int) -> float:
    if end - PEAK[0] <= t < end - PEAK[1]:
        return 400.0
    return round(200.0 + 3.0 * math.sin(t / 600.0), 3)


def _openmetrics(end: int) -> str:
    primary = 'lat{namespace="edge",deployment="peak-primary"}'
    lines = ["# TYPE lat gauge"]
    lines += [f"{primary} {primary_lat(t, end)} {t}" for t in range(end - 8 * 3600, end + 1, 60)]
    lines += [
        f'lat{{namespace="edge",deployment="peak"}} 300 {t}' for t in range(end - 1800, end + 1, 60)
    ]
    lines.append("# TYPE istio_requests counter")
    for workload in [*FLEET, *(f"{name}-primary" for name in FLEET)]:
        for code, per_second in (("200", 99.0), ("503", 1.0)):
            labels = (
                f'reporter="destination",destination_workload_namespace="fleet",'
                f'destination_workload="{workload}",response_code="{code}"'
            )
            for t in range(end - 2 * 3600, end + 1, 15):
                count = per_second * (t - end + 2 * 3600)
                lines.append(f"istio_requests_total{{{labels}}} {count} {t}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def history() -> Iterator[History]:
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if prometheus is None or promtool is None:
        pytest.fail("prometheus and promtool are needed: apt-get install prometheus")
    end = int(time.time()) // 60 * 60 - 120
    with tempfile.TemporaryDirectory(prefix="canary-engine-range-") as work:
        data = Path(work, "data")
        data.mkdir()
        source = Path(work, "history.om")
        source.write_text(_openmetrics(end))
        subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
            check=True,
            capture_output=True,
        )
        config = Path(work, "prometheus.yml")
        config.write_text("global:\n  scrape_interval: 15s\n")
        port = free_port()
        url = f"http://127.0.0.1:{port}"

        def loaded() -> bool:
            answer = httpx.get(
                f"{url}/api/v1/query",
                params={"query": 'count(lat{namespace="edge"})', "time": str(end)},
                timeout=5,
            )
            return answer.status_code == 200 and bool(answer.json()["data"]["result"])

        argv = [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=30d",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]
        with running(
            argv,
            log=Path(work, "prometheus.log"),
            ready=loaded,
            not_ready="prometheus did not load the backfilled history within 30s",
        ):
            yield History(url=url, end=float(end))


async def _no_sleep(seconds: float) -> None:
    return None


def _templates(url: str) -> dict[tuple[str, str], MetricTemplate]:
    template = parse_metric_template(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "MetricTemplate",
            "metadata": {"name": "lat", "namespace": "edge"},
            "spec": {"provider": {"type": "prometheus", "address": url}, "query": LAT_QUERY},
        }
    )
    return {("edge", "lat"): template}


def _canary(name: str, namespace: str, metric: dict[str, Any], provider: str) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "provider": provider,
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "service": {"port": 80},
            "analysis": {
                "interval": "1m",
                "threshold": 2,
                "maxWeight": 50,
                "stepWeight": 10,
                "metrics": [metric],
            },
        },
    }


def _peak_canary(window: str, step: str) -> Any:
    metric = {
        "name": "lat",
        "interval": "1m",
        "templateRef": {"name": "lat", "namespace": "edge"},
        "judge": {"baseline": "primary", "harmful": "increase", "window": window, "step": step},
    }
    return parse_canary(_canary("peak", "edge", metric, "kubernetes"))


def _primary_request(url: str, now: float, window: float, step: float) -> SeriesRequest:
    canary = _peak_canary("6h", "1s")
    [query] = plan_queries(
        canary, _templates(url), provider="kubernetes", default_server=url, target="primary"
    )
    return SeriesRequest(query=query, start=now - window, end=now, step=step)


# ---------------------------------------------------------------------------------------------
# Prometheus' own rules, which the source and the unit tests' fake Prometheus rely on
# ---------------------------------------------------------------------------------------------


def test_prometheus_answers_11000_steps_per_series_and_refuses_more(history: History) -> None:
    query = 'lat{namespace="edge",deployment="peak-primary"}'
    end = history.end
    for steps, ok in ((11_000, True), (11_001, False)):
        answer = httpx.get(
            f"{history.url}/api/v1/query_range",
            params={"query": query, "start": str(end - steps), "end": str(end), "step": "1"},
            timeout=30,
        )
        if ok:
            assert answer.status_code == 200, answer.text
            assert len(answer.json()["data"]["result"][0]["values"]) == steps + 1
        else:
            assert answer.status_code == 400
            assert "exceeded maximum resolution of 11,000 points per timeseries" in answer.text
    # Evaluated at start, start + step, ... <= end: an end between two steps adds nothing.
    answer = httpx.get(
        f"{history.url}/api/v1/query_range",
        params={"query": query, "start": str(end - 120), "end": str(end - 0.5), "step": "60"},
        timeout=30,
    )
    times = [t for t, _ in answer.json()["data"]["result"][0]["values"]]
    assert times == [end - 120, end - 60]


# ---------------------------------------------------------------------------------------------
# A window of more than 11,000 points is read whole
# ---------------------------------------------------------------------------------------------


async def test_a_window_of_21600_points_is_read_whole_on_one_grid(history: History) -> None:
    now = history.end + 0.437
    request = _primary_request(history.url, now, 6 * HOUR, 1.0)
    async with open_prometheus(sleep=_no_sleep) as source:
        [answer] = await source.fetch_series([request])
        assert source.requests_sent == 2  # two range queries of at most 11,000 points each
    assert isinstance(answer, Series), answer
    expected = np.arange(history.end - 6 * HOUR + 1, history.end + 1, 1.0)
    assert answer.times.tolist() == expected.tolist()  # every second once: no seam gap or twin
    # Each second holds the minute's sample (Prometheus' lookback), the peak included.
    minute = (expected // 60 * 60).astype(int)
    assert answer.values.tolist() == [primary_lat(t, int(history.end)) for t in minute.tolist()]
    assert answer.values.max() == 400.0


async def test_the_judge_reads_the_whole_window_it_names(history: History) -> None:
    """The peak 5h ago is inside ``window: 6h``: the canary's 300 is within the envelope."""
    now = history.end + 0.437
    templates = _templates(history.url)
    canary = _peak_canary("6h", "1s")
    async with open_metric_sources(sleep=_no_sleep, now=lambda: now, query_time=lambda: now) as src:
        plan = plan_checks(canary, templates, provider="kubernetes", default_server=history.url)
        primary = plan_queries(
            canary,
            templates,
            provider="kubernetes",
            default_server=history.url,
            target="primary",
        )
        static = await analyze(src, plan)
        [result] = await judge_checks(
            src, canary, static, primary, now=now, start=history.end - 1200
        )
    assert result.verdict is Verdict.PASS, result.explanation
    assert result.explanation.startswith(
        "canary 300 within the primary's 6h before the analysis"
    ), result.explanation


async def test_a_long_running_cache_reads_what_a_restarted_process_reads(
    history: History,
) -> None:
    """The controller's kept series (the day once, then tails) equal a fresh read each tick."""
    async with (
        open_metric_sources(sleep=_no_sleep, now=time.time) as cached,
        open_prometheus(sleep=_no_sleep) as fresh,
    ):
        read: list[tuple[float, Series, Series]] = []
        for tick, jitter in enumerate((0.123, 0.901, 0.004, 0.55)):
            now = history.end - 240 + 60 * tick + jitter
            request = _primary_request(history.url, now, 6 * HOUR, 1.0)
            [kept] = await cached.fetch_series([request])
            [whole] = await fresh.fetch_series([request])
            assert isinstance(kept, Series) and isinstance(whole, Series), (kept, whole)
            read.append((now, kept, whole))
        sent = cached.requests_sent
    for tick, (_, kept, whole) in enumerate(read):
        assert kept.times.tolist() == whole.times.tolist(), tick
        assert kept.values.tolist() == whole.values.tolist(), tick
    for now, _, whole in read:
        assert len(whole) == 6 * 3600 and whole.times[-1] == math.floor(now)
    assert sent == 2 + 3  # the window once (2 parts), then a tail per tick


# ---------------------------------------------------------------------------------------------
# One grid for the canaries of a tick
# ---------------------------------------------------------------------------------------------


async def test_canaries_of_one_tick_share_one_range_request(history: History) -> None:
    """Six canaries judged on one tick, their ``now`` a few milliseconds apart: one grouped range
    query for all canaries and primaries, on the last minute boundary before every ``now``."""
    base = history.end + 30.2
    metric = {
        "name": "request-success-rate",
        "interval": "1m",
        "judge": {"baseline": "primary", "harmful": "decrease", "window": "1h"},
    }
    async with open_prometheus(sleep=_no_sleep, query_time=lambda: base) as source:
        ticks = []
        for n, name in enumerate(FLEET):
            canary = parse_canary(_canary(name, "fleet", metric, "istio"))
            plan = plan_checks(canary, {}, provider="istio", default_server=history.url)
            primary = plan_queries(
                canary, {}, provider="istio", default_server=history.url, target="primary"
            )
            static = await analyze(source, plan)
            now = base + 0.003 * n
            ticks.append(
                JudgeTick(
                    canary=canary,
                    results=static,
                    primary_queries=primary,
                    now=now,
                    start=now - 600,
                )
            )
        before = source.requests_sent
        results = await judge_ticks(source, ticks)
        assert source.requests_sent - before == 1
    for tick, [result] in zip(ticks, results, strict=True):
        assert result.verdict is Verdict.PASS, (tick.canary.metadata.name, result.explanation)
        assert result.explanation.startswith(
            "canary 99 within the primary's 1h before the analysis"
        ), result.explanation


async def test_the_newest_sample_is_the_last_step_boundary_before_now(history: History) -> None:
    """Never a sample after ``now``; the newest one is in the last step, evaluated by
    Prometheus with its lookback (the minute's sample)."""
    now = history.end + 59.999
    request = _primary_request(history.url, now, HOUR, 60.0)
    async with open_prometheus(sleep=_no_sleep) as source:
        [answer] = await source.fetch_series([request])
    assert isinstance(answer, Series), answer
    assert answer.times[-1] == history.end  # <= now, > now - step
    assert answer.values[-1] == primary_lat(int(history.end), int(history.end))
    assert answer.times.tolist() == [history.end - 60 * k for k in range(59, -1, -1)]
