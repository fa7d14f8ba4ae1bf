"""``canary-engine report NAME -n NS`` end to end: the Kubernetes API test server
(``tests/kubeapi.py``, over real HTTP) holds the Canaries, their status and events as the
controller left them after a rollout, and a real Prometheus (Debian's ``prometheus``, scraping the
exporter of tests/e2e/test_prometheus_e2e.py) holds the metrics of that rollout. The command runs
as a process, as a user would run it, and must replay the window the events give.

The exporter's ``bad`` canary answers half its requests with 5xx, ``good`` 0.5 %; both primaries
0.5 %. The cluster says ``bad`` Failed and ``good`` Succeeded; the replays must agree.
"""

from __future__ import annotations

import asyncio
import copy
import math
import os
import re
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_prometheus_e2e import (
    NAMESPACE,
    FleetCollector,
    LivePrometheus,
    canary_body,
    serve_prometheus,
)
from tests.kubeapi import FakeKubeApi, serve_kube_api
from tests.report.browser_env import (
    CHROMIUM,
    CHROMIUM_ARGS,
    VIEWPORT,
    artifacts_dir,
    require_chromium,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pr0m-pa55word"


@pytest.fixture(scope="module")
def prometheus() -> Iterator[LivePrometheus]:
    probe = 'sum(rate(http_request_duration_seconds_count{kubernetes_pod_name=~"bad-.*"}[10s]))'
    with serve_prometheus(FleetCollector(time.monotonic()), probe) as live:
        yield live


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def canary(name: str, phase: str, ended: float) -> dict[str, Any]:
    body = copy.deepcopy(canary_body(name, "kubernetes"))  # analysis every 10s, threshold 1
    body["status"] = {
        "phase": phase,
        "canaryWeight": 0,
        "failedChecks": 1 if phase == "Failed" else 0,
        "iterations": 0,
        "lastTransitionTime": iso(ended),
    }
    return body


def event(name: str, index: int, when: float, message: str, kind: str = "Normal") -> Any:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.{index}", "namespace": NAMESPACE},
        "involvedObject": {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "name": name},
        "reason": "Synced",
        "type": kind,
        "message": message,
        "firstTimestamp": iso(when),
        "lastTimestamp": iso(when),
        "count": 1,
    }


def seed_rollouts(api: FakeKubeApi, start: float, end: float) -> None:
    """``good`` and ``bad`` as the controller leaves them; an older rollout's revision event
    (a day before) must not be taken for the last one."""
    for name, phase, last in (
        ("bad", "Failed", f"Canary failed! Scaling down {name_ns('bad')}"),
        ("good", "Succeeded", f"Promotion completed! Scaling down {name_ns('good')}"),
    ):
        api.store.put(canary(name, phase, end))
        revision = f"New revision detected! Scaling up {name_ns(name)}"
        api.store.put(event(name, 0, start - 86_400, revision))
        api.store.put(event(name, 1, start, revision))
        api.store.put(event(name, 2, end, last, "Warning" if phase == "Failed" else "Normal"))


def name_ns(name: str) -> str:
    return f"{name}.{NAMESPACE}"


async def report(api: FakeKubeApi, tmp_path: Path, *args: str) -> tuple[int, str]:
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", namespace=NAMESPACE)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "engine.cli",
        "report",
        "--kubeconfig",
        str(kubeconfig),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("CANARY_ENGINE_")},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode is not None and out == b""
    return proc.returncode, err.decode()


async def open_in_chromium(path: Path) -> None:
    """Open the report as a person would: it loads with no console error and no request but
    its own file, every plot draws, and a screenshot goes to the artefacts."""
    require_chromium()
    from playwright.async_api import async_playwright

    url = path.as_uri()  # tmp_path is absolute
    errors: list[str] = []
    requests: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page(viewport=VIEWPORT)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            await page.goto(url, wait_until="load")
            drawn = await page.wait_for_function(
                """() => [...document.querySelectorAll('.plotly-graph-div')]
                    .every((gd) => gd.querySelector('.main-svg .scatterlayer .trace'))
                    && document.querySelectorAll('.plotly-graph-div').length""",
                timeout=20_000,
            )
            assert await drawn.json_value() >= 4  # weight, failed checks, two metrics
            assert await page.locator("h2", has_text="What the cluster says").count() == 1
            await page.screenshot(
                path=str(artifacts_dir() / "report-cluster-bad.png"), full_page=True
            )
        finally:
            await browser.close()
    assert errors == [] and requests == [url]


@pytest.mark.browser
async def test_report_replays_the_last_rollout_the_cluster_describes(
    prometheus: LivePrometheus, tmp_path: Path
) -> None:
    start = math.ceil(prometheus.ready_at) + 1
    end = start + 20
    async with serve_kube_api() as api:
        seed_rollouts(api, start, end)
        await asyncio.sleep(max(0.0, end + 2.5 - time.time()))  # the last step's scrape is in
        url = prometheus.url.replace("http://", f"http://reader:{PASSWORD}@")
        pages = {}
        for name, verdict in (("bad", "rolled back"), ("good", "promoted")):
            out = tmp_path / f"{name}.html"
            code, err = await report(api, tmp_path, name, "--prometheus", url, "-o", str(out))
            assert code == 0, err
            assert f"the cluster says {'Failed' if name == 'bad' else 'Succeeded'}" in err
            assert f"the replay of {iso(start)} .. {iso(end)} {verdict}" in err
            assert PASSWORD not in err
            pages[name] = out.read_text()
            if name == "bad":
                await open_in_chromium(out)
    bad = pages["bad"]
    assert "<h2>What the cluster says</h2>" in bad
    assert f"{iso(start)} (the newest &#x27;New revision detected!&#x27; event)" in bad
    assert f"{iso(end)} (status.lastTransitionTime (phase Failed))" in bad
    assert "Canary failed! Scaling down bad.e2e" in bad
    assert "rolled back</span>" in bad and "promoted</span>" in pages["good"]
    # the replay's own checks: the bad canary's success rate is 50 %
    assert "Halt bad.e2e advancement success rate 50.00% &lt; 99%" in bad
    assert PASSWORD not in bad and "reader:xxxxx@127.0.0.1" in bad  # the source, redacted


async def test_report_without_a_revision_event_asks_for_start(tmp_path: Path) -> None:
    async with serve_kube_api() as api:
        api.store.put(canary("bad", "Failed", time.time()))
        code, err = await report(
            api, tmp_path, "bad", "-n", NAMESPACE, "-o", str(tmp_path / "r.html")
        )
        assert code == 2
        assert "--start" in err and "New revision detected!" in err
        assert "Traceback" not in err


async def test_report_of_a_missing_canary_or_an_unreachable_prometheus(tmp_path: Path) -> None:
    async with serve_kube_api() as api:
        code, err = await report(api, tmp_path, "nothere", "-o", str(tmp_path / "r.html"))
        assert (code, err.strip()) == (
            1,
            f"canary-engine report: canary {NAMESPACE}/nothere not found",
        )
        now = time.time()
        seed_rollouts(api, now - 60, now - 30)
        closed = f"http://reader:{PASSWORD}@127.0.0.1:9"  # the discard port: nothing listens
        code, err = await report(
            api, tmp_path, "bad", "--prometheus", closed, "-o", str(tmp_path / "r.html")
        )
        assert code == 4, err
        assert "127.0.0.1:9" in err and PASSWORD not in err
        assert re.search(r"unreachable|refused|connect", err, re.I), err
        assert not (tmp_path / "r.html").exists()
