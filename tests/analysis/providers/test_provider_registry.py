"""The metric-provider registry: what ``validate`` accepts and says, what simulate replays, and
that the Prometheus path keeps one grouped request per query shape when other providers join."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import httpx
import pytest
import respx

import config
from analysis import (
    BUILT_METRIC_PROVIDERS,
    METRIC_PROVIDERS,
    FailureKind,
    QueryFailure,
    SeriesRequest,
    open_metric_sources,
    plan_queries,
)
from analysis.providers import _sources
from analysis.providers._base import MetricProvider
from config import load_manifests, parse_canary
from engine.cli import main
from tests.analysis.providers.providers_testkit import (
    DOCS_CANARY,
    DOCS_HEALTHY,
    DOCS_TEMPLATES,
    NOW,
    SECRETS,
    docs_query,
    fetch_one,
)


def test_the_loaders_accepted_names_are_the_registry() -> None:
    assert set(config.METRIC_PROVIDER_TYPES) == set(METRIC_PROVIDERS)


def test_every_flagger_metric_provider_is_built() -> None:
    assert set(BUILT_METRIC_PROVIDERS) == set(config.METRIC_PROVIDER_TYPES)


def test_flagger_documentation_templates_validate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(DOCS_TEMPLATES), str(DOCS_CANARY)]) == 0
    out = capsys.readouterr().out
    assert "valid (0 Canaries, 10 MetricTemplates" in out


def test_simulate_replays_the_documentation_canary_to_a_promotion(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main(
        [
            "simulate",
            "--canary",
            str(DOCS_CANARY),
            "--template",
            str(DOCS_TEMPLATES),
            "--recording",
            str(DOCS_HEALTHY),
            "--output",
            "json",
        ]
    )
    assert status == 0, capsys.readouterr().err
    assert '"result": "promoted"' in capsys.readouterr().out


def _validate(tmp_path: Path, provider: str, capsys: pytest.CaptureFixture[str]) -> str:
    path = tmp_path / "template.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            apiVersion: flagger.app/v1beta1
            kind: MetricTemplate
            metadata: {{name: t, namespace: test}}
            spec:
              provider: {provider}
              query: some query
            """
        )
    )
    assert main(["validate", str(path)]) == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("{type: stackdriver}", "spec.provider.secretRef: required for stackdriver"),
        ("{type: splunk, address: 'https://api.us1.signalfx.com'}", "'sf_token_key'"),
        ("{type: graphite}", "spec.provider.address: required for graphite"),
        ("{type: influxdb}", "spec.provider.address: required for influxdb"),
        ("{type: dynatrace, secretRef: {name: d}}", "spec.provider.address: required"),
        ("{type: datadog}", "spec.provider.secretRef: required for datadog"),
        ("{type: newrelic}", "'newrelic_account_id' and 'newrelic_query_key'"),
        ("{type: cloudwatch}", "spec.provider.region: required for cloudwatch"),
        ("{type: graphite, address: 'graphite:80'}", "is not a valid URL"),
    ],
)
def test_validate_names_what_a_provider_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], provider: str, expected: str
) -> None:
    err = _validate(tmp_path, provider, capsys)
    assert "[MetricTemplate/t]" in err
    assert expected in err


def test_validate_names_a_query_that_renders_for_no_canary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A template function the renderer does not run would fail every check at run time: say it
    when the template is validated. Names a Canary supplies later (variables) are not judged."""
    path = tmp_path / "t.yaml"
    path.write_text(
        textwrap.dedent(
            """
            apiVersion: flagger.app/v1beta1
            kind: MetricTemplate
            metadata: {name: t, namespace: test}
            spec:
              provider: {type: prometheus, address: 'http://prometheus:9090'}
              query: x{a="{{ upper target }}", b="{{ variables.anything }}"}
            """
        )
    )
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert '[MetricTemplate/t] spec.query: function "upper" not defined' in err
    assert "anything" not in err
    path.write_text(path.read_text().replace("upper target", 'printf "%s-x" target'))
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err


def test_validate_refuses_a_provider_not_built_yet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from analysis import providers

    unbuilt = MetricProvider(type="splunk", summary="test", not_built="no SignalFlow client")
    monkeypatch.setattr(providers, "PROVIDERS", {**providers.PROVIDERS, "splunk": unbuilt})
    err = _validate(tmp_path, "{type: splunk}", capsys)
    assert "spec.provider.type: 'splunk' is not built yet: no SignalFlow client" in err


async def test_a_check_on_a_provider_not_built_fails_saying_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unbuilt = MetricProvider(type="splunk", summary="test", not_built="no SignalFlow client")
    monkeypatch.setattr(_sources, "PROVIDERS", {"splunk": unbuilt})
    found = load_manifests([DOCS_CANARY, DOCS_TEMPLATES])
    canary = found.canaries[0]
    template = config.parse_metric_template(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "MetricTemplate",
            "metadata": {"name": "not-found-percentage", "namespace": "test"},
            "spec": {"provider": {"type": "splunk"}, "query": "data('x').publish()"},
        }
    )
    queries = plan_queries(
        canary,
        {("test", "not-found-percentage"): template},
        provider="kubernetes",
        default_server="http://prometheus.test:9090",
    )
    query = next(q for q in queries if q.metric == "404s percentage")
    answer = await fetch_one(query)
    assert isinstance(answer, QueryFailure)
    assert answer.kind is FailureKind.REJECTED
    assert "'splunk' is not built yet: no SignalFlow client" in answer.message
    assert "MetricTemplate not-found-percentage.test" in answer.message


async def test_a_provider_without_series_says_so_naming_the_template(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def one(call: object) -> float:
        return 1.0

    values_only = MetricProvider(type="datadog", summary="test", value=one)
    monkeypatch.setattr(_sources, "PROVIDERS", {"datadog": values_only})
    query = docs_query("404s percentage")
    async with open_metric_sources(
        sleep=asyncio.sleep, now=lambda: NOW, credentials=SECRETS.get
    ) as live:
        [answer] = await live.fetch_series(
            [SeriesRequest(query=query, start=NOW - 600, end=NOW, step=60)]
        )
    assert isinstance(answer, QueryFailure)
    assert "cannot answer series" in answer.message
    assert "datadog MetricTemplate not-found-percentage.test" in answer.message


@respx.mock(assert_all_called=True)
async def test_prometheus_stays_one_grouped_request_beside_other_providers(
    respx_mock: respx.MockRouter,
) -> None:
    def vector(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "vector", "result": []}}
        )

    prom = respx_mock.get("http://prometheus.test:9090/api/v1/query").mock(side_effect=vector)
    datadog = respx_mock.get("https://api.datadoghq.com/api/v1/query").mock(
        return_value=httpx.Response(200, json={"series": [{"pointlist": [[NOW * 1000, 1.0]]}]})
    )
    builtin = {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}
    canaries = [
        parse_canary(
            {
                "apiVersion": "flagger.app/v1beta1",
                "kind": "Canary",
                "metadata": {"name": name, "namespace": "test"},
                "spec": {
                    "provider": "istio",
                    "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                    "service": {"port": 80},
                    "analysis": {
                        "interval": "1m",
                        "threshold": 1,
                        "stepWeight": 10,
                        "metrics": [builtin],
                    },
                },
            }
        )
        for name in ("a", "b", "c")
    ]
    queries = [
        q
        for c in canaries
        for q in plan_queries(c, {}, provider="istio", default_server="http://prometheus.test:9090")
    ]
    queries += [docs_query("404s percentage")] * 2  # identical checks: asked once
    async with open_metric_sources(
        sleep=asyncio.sleep, now=lambda: NOW, credentials=SECRETS.get
    ) as live:
        answers = await live.fetch(queries)
    assert prom.call_count == 1  # three canaries, one query shape
    assert datadog.call_count == 1
    assert answers[-2:] == [1.0, 1.0]
    assert all(isinstance(a, QueryFailure) for a in answers[:3])  # empty vector: no data
