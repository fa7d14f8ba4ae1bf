"""Graphite templates end to end against a real Graphite (Debian's ``graphite-web``).

The test writes whisper files (the storage carbon writes; Debian's ``python3-whisper``, run by
``/usr/bin/python3``) for a healthy canary ``good`` (success rate 99.5 every 10 s over the last
hour), a canary ``bad`` (50) and their ``-primary`` workloads, and serves them with graphite-web's
render API on 127.0.0.1 (Django's server under ``/usr/bin/python3``, a private settings module
and storage directory; stopped in the fixture's teardown). Then, through the same
``MetricSources`` the controller uses: values, no data, a rejected query and the availability
check; series over a window; and ``canary-engine record`` (no ``--prometheus``: nothing queries
it) writing recordings that ``simulate`` replays to a promotion (good) and a rollback (bad).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from analysis import (
    MetricQuery,
    QueryFailure,
    Series,
    SeriesRequest,
    load_recording,
    open_metric_sources,
    plan_queries,
)
from analysis._types import FailureKind
from config import MetricTemplate, parse_canary, parse_metric_template
from engine.cli import main
from tests.servers import free_port, running

pytestmark = pytest.mark.slow

SYSTEM_PYTHON = "/usr/bin/python3"
NAMESPACE = "e2e"
VALUES = {"good": 99.5, "good-primary": 99.5, "bad": 50.0, "bad-primary": 99.5}
HISTORY_SECONDS = 3600
RESOLUTION = 10

SETTINGS = """\
import os
_d = os.environ["CANARY_ENGINE_GRAPHITE_DIR"]
SECRET_KEY = "canary-engine-e2e"
STORAGE_DIR = _d
WHISPER_DIR = os.path.join(_d, "whisper")
LOG_DIR = _d
INDEX_FILE = os.path.join(_d, "index")
DATABASES = {
    "default": {"NAME": os.path.join(_d, "graphite.db"), "ENGINE": "django.db.backends.sqlite3"}
}
"""

WRITE = """\
import sys, time, whisper
path, value = sys.argv[1], float(sys.argv[2])
seconds, resolution = int(sys.argv[3]), int(sys.argv[4])
whisper.create(path, [(resolution, 2 * seconds // resolution)])
now = int(time.time())
whisper.update_many(path, [(t, value) for t in range(now - seconds, now + 1, resolution)])
"""


@contextlib.contextmanager
def serve_graphite() -> Iterator[str]:
    """graphite-web's render API on 127.0.0.1 over freshly written whisper files."""
    missing = [p for p in ("/usr/lib/python3/dist-packages/graphite",) if not Path(p).exists()]
    if missing or not Path(SYSTEM_PYTHON).exists():
        pytest.fail(
            "graphite-web is not installed: apt-get install graphite-web graphite-carbon "
            "(Debian's packages; .ci/run installs them)"
        )
    workdir = tempfile.TemporaryDirectory(prefix="canary-engine-graphite-")
    root = Path(workdir.name)
    (root / "graphite_e2e_settings.py").write_text(SETTINGS)
    (root / "write.py").write_text(WRITE)
    for workload, value in VALUES.items():
        target = root / "whisper" / "app" / workload / "success_rate.wsp"
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                SYSTEM_PYTHON,
                str(root / "write.py"),
                str(target),
                str(value),
                str(HISTORY_SECONDS),
                str(RESOLUTION),
            ],
            check=True,
        )
    port = free_port()
    env = {
        **os.environ,
        "CANARY_ENGINE_GRAPHITE_DIR": str(root),
        "PYTHONPATH": str(root),
        "GRAPHITE_SETTINGS_MODULE": "graphite_e2e_settings",
        "DJANGO_SETTINGS_MODULE": "graphite.settings",
    }
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        answer = httpx.get(
            f"{url}/render",
            params={"target": "app.good.success_rate", "from": "-1min", "format": "json"},
            timeout=5,
        )
        return answer.status_code == 200 and bool(answer.json())

    try:
        with running(
            [SYSTEM_PYTHON, "-m", "django", "runserver", f"127.0.0.1:{port}", "--noreload"],
            log=root / "graphite.log",
            ready=answers,
            not_ready="graphite-web did not answer after 30s",
            name="graphite-web",
            env=env,
            cwd=root,
        ):
            yield url
    finally:
        workdir.cleanup()


@pytest.fixture(scope="module")
def graphite() -> Iterator[str]:
    with serve_graphite() as url:
        yield url


def test_graphite_web_is_installed() -> None:
    """Fail (never skip) without the server: the e2e tests below need the real thing."""
    assert Path("/usr/lib/python3/dist-packages/graphite").exists(), (
        "graphite-web is not installed: apt-get install graphite-web graphite-carbon"
    )


def template(url: str, query: str = "target=app.{{ target }}.success_rate&from=-5min") -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: flagger.app/v1beta1
        kind: MetricTemplate
        metadata: {{name: success-rate, namespace: {NAMESPACE}}}
        spec:
          provider: {{type: graphite, address: "{url}"}}
          query: |
            {query}
        """
    )


def canary(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "service": {"port": 80},
            "analysis": {
                "interval": "1m",
                "threshold": 1,
                "maxWeight": 50,
                "stepWeight": 25,
                "metrics": [
                    {
                        "name": "success-rate",
                        "interval": "1m",
                        "templateRef": {"name": "success-rate"},
                        "thresholdRange": {"min": 99},
                    }
                ],
            },
        },
    }


def _queries(url: str, name: str, query: str | None = None) -> list[MetricQuery]:
    parsed: MetricTemplate = parse_metric_template(
        yaml.safe_load(template(url, query) if query else template(url))
    )
    return plan_queries(
        parse_canary(canary(name)),
        {(NAMESPACE, "success-rate"): parsed},
        provider="kubernetes",
        default_server="http://prometheus.invalid:9090",
    )


async def _fetch(queries: list[MetricQuery]) -> list[float | QueryFailure]:
    async with open_metric_sources(sleep=asyncio.sleep, now=time.time) as sources:
        return await sources.fetch(queries)


async def test_values_come_from_the_render_api(graphite: str) -> None:
    good, bad = await _fetch([*_queries(graphite, "good"), *_queries(graphite, "bad")])
    assert good == pytest.approx(99.5)
    assert bad == pytest.approx(50.0)


async def test_a_metric_without_datapoints_is_no_data_naming_the_template(graphite: str) -> None:
    [answer] = await _fetch(_queries(graphite, "absent"))
    assert isinstance(answer, QueryFailure)
    assert answer.kind is FailureKind.NO_DATA
    assert "graphite MetricTemplate success-rate.e2e" in answer.message


async def test_an_unknown_function_is_rejected_with_graphites_reason(graphite: str) -> None:
    [answer] = await _fetch(_queries(graphite, "good", "target=noSuchFunction(app.x)"))
    assert isinstance(answer, QueryFailure)
    assert answer.kind in (FailureKind.REJECTED, FailureKind.TRANSPORT)
    assert "noSuchFunction" in answer.message
    assert "success-rate.e2e" in answer.message


async def test_availability_check_passes_live_and_names_a_dead_server(graphite: str) -> None:
    async with open_metric_sources(sleep=asyncio.sleep, now=time.time) as sources:
        assert await sources.check_providers(_queries(graphite, "good")) == ""
        dead = f"http://127.0.0.1:{free_port()}"
        reason = await sources.check_providers(_queries(dead, "good"))
    assert "graphite" in reason and "unreachable" in reason


async def test_series_hold_every_stored_point_of_the_window(graphite: str) -> None:
    [query] = _queries(graphite, "bad")
    end = float(int(time.time()) // RESOLUTION * RESOLUTION)
    start = end - 300
    async with open_metric_sources(sleep=asyncio.sleep, now=time.time) as sources:
        [series] = await sources.fetch_series(
            [SeriesRequest(query=query, start=start, end=end, step=60)]
        )
    assert isinstance(series, Series)
    assert series.times[0] >= start and series.times[-1] <= end
    finite = [v for v in series.values.tolist() if math.isfinite(v)]
    assert len(finite) >= 25  # ten-second points over five minutes
    assert set(finite) == {50.0}


def test_record_then_simulate_promotes_good_and_rolls_back_bad(
    graphite: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    templates = tmp_path / "template.yaml"
    templates.write_text(template(graphite))
    results: dict[str, int] = {}
    for name in ("good", "bad"):
        canary_file = tmp_path / f"{name}.yaml"
        canary_file.write_text(yaml.safe_dump(canary(name)))
        recording = tmp_path / f"{name}.csv"
        status = main(
            [
                "record",
                "--canary",
                str(canary_file),
                "--template",
                str(templates),
                "--start",
                "-15m",
                "--end",
                "-0s",
                "-o",
                str(recording),
            ]
        )
        captured = capsys.readouterr()
        assert status == 0, captured.err
        loaded = load_recording(recording)
        assert loaded.keys == {("canary", "success-rate"), ("primary", "success-rate")}
        canary_value = loaded.value_at("canary", "success-rate", 600.0)
        assert canary_value == pytest.approx(VALUES[name])
        assert loaded.value_at("primary", "success-rate", 600.0) == pytest.approx(99.5)
        results[name] = main(
            [
                "simulate",
                "--canary",
                str(canary_file),
                "--template",
                str(templates),
                "--recording",
                str(recording),
                "--output",
                "json",
            ]
        )
        capsys.readouterr()
    assert results == {"good": 0, "bad": 1}
