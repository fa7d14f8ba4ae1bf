"""``canary-engine record`` through the providers' series path (Datadog mocked with respx).

The Canary's only metric is Flagger's documented Datadog template; the Secret it references is
in the ``--template`` file, as ``record`` reads credentials there. No ``--prometheus`` is given:
nothing queries Prometheus.
"""

from __future__ import annotations

import base64
import textwrap
from pathlib import Path

import httpx
import pytest
import respx

from analysis import load_recording
from analysis.providers._base import MetricProvider
from engine.cli import main
from tests.analysis.providers.providers_testkit import DOCS_TEMPLATES

START = 1_800_000_000
CANARY = """\
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: test}
spec:
  provider: kubernetes
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis:
    interval: 1m
    threshold: 2
    maxWeight: 50
    stepWeight: 25
    metrics:
      - name: not-found
        templateRef: {name: %s}
        thresholdRange: {max: 5}
        interval: 1m
"""


def _secret(api_key: str) -> str:
    encoded = base64.b64encode(api_key.encode()).decode()
    return textwrap.dedent(
        f"""\
        ---
        apiVersion: v1
        kind: Secret
        metadata: {{name: datadog, namespace: test}}
        data:
          datadog_api_key: {encoded}
        stringData:
          datadog_application_key: dd-app-key-from-file-42
        """
    )


def _files(tmp_path: Path, template: str = "not-found-percentage") -> tuple[Path, Path]:
    canary = tmp_path / "canary.yaml"
    canary.write_text(CANARY % template)
    templates = tmp_path / "templates.yaml"
    templates.write_text(DOCS_TEMPLATES.read_text() + _secret("dd-api-key-from-file-42"))
    return canary, templates


def _record(canary: Path, templates: Path, output: Path) -> int:
    return main(
        [
            "record",
            "--canary",
            str(canary),
            "--template",
            str(templates),
            "--start",
            str(START),
            "--end",
            str(START + 180),
            "-o",
            str(output),
        ]
    )


@respx.mock
def test_record_captures_a_datadog_template_for_canary_and_primary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["DD-API-KEY"] == "dd-api-key-from-file-42"
        assert request.headers["DD-APPLICATION-KEY"] == "dd-app-key-from-file-42"
        primary = "destination_workload:podinfo-primary" in request.url.params["query"]
        base = 1.0 if primary else 2.0
        points = [[(START + 60 * k) * 1000, base + k] for k in range(4)]
        return httpx.Response(200, json={"series": [{"pointlist": points}]})

    route = respx.get("https://api.datadoghq.com/api/v1/query").mock(side_effect=answer)
    canary, templates = _files(tmp_path)
    output = tmp_path / "out.csv"
    status = _record(canary, templates, output)
    assert status == 0, capsys.readouterr().err
    assert route.call_count == 2  # one range request per target
    params = route.calls[0].request.url.params
    assert (params["from"], params["to"]) == (str(START), str(START + 180))
    recording = load_recording(output)
    assert [recording.value_at("canary", "not-found", t) for t in (0, 60, 120, 180)] == [
        2.0,
        3.0,
        4.0,
        5.0,
    ]
    assert recording.value_at("primary", "not-found", 180) == 4.0


@respx.mock
def test_record_reports_a_rejected_query_without_the_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    respx.get("https://api.datadoghq.com/api/v1/query").mock(
        return_value=httpx.Response(403, text="bad key dd-api-key-from-file-42")
    )
    canary, templates = _files(tmp_path)
    assert _record(canary, templates, tmp_path / "out.csv") == 4
    err = capsys.readouterr().err
    assert "datadog MetricTemplate not-found-percentage.test" in err
    assert "HTTP 403" in err
    assert "dd-api-key-from-file-42" not in err


def test_record_refuses_a_provider_not_built_yet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import analysis._record

    unbuilt = MetricProvider(type="splunk", summary="test", not_built="no SignalFlow client")
    monkeypatch.setattr(analysis._record, "PROVIDERS", {"splunk": unbuilt})
    canary = tmp_path / "canary.yaml"
    canary.write_text(CANARY % "sfx")
    templates = tmp_path / "templates.yaml"
    templates.write_text(
        textwrap.dedent(
            """\
            apiVersion: flagger.app/v1beta1
            kind: MetricTemplate
            metadata: {name: sfx, namespace: test}
            spec:
              provider: {type: splunk, address: "https://api.us1.signalfx.com"}
              query: data('errors').publish()
            """
        )
    )
    assert _record(canary, templates, tmp_path / "out.csv") == 2
    assert "'splunk', which is not built yet: no SignalFlow client" in capsys.readouterr().err


def test_record_needs_prometheus_only_for_prometheus_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canary = tmp_path / "canary.yaml"
    canary.write_text(
        (CANARY % "x").replace("templateRef: {name: x}", "query: sum(rate(errors[1m]))")
    )
    assert _record(canary, DOCS_TEMPLATES, tmp_path / "out.csv") == 2
    assert "--prometheus URL: is required: not-found query Prometheus" in capsys.readouterr().err


def test_a_malformed_secret_value_is_named_and_not_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canary, templates = _files(tmp_path)
    text = templates.read_text()
    encoded = base64.b64encode(b"dd-api-key-from-file-42").decode()
    templates.write_text(text.replace(encoded, "'dd-api-key-from-file-42*'"))
    assert _record(canary, templates, tmp_path / "out.csv") == 2
    err = capsys.readouterr().err
    assert "Secret test/datadog data.datadog_api_key: is not base64-encoded UTF-8 text" in err
    assert "dd-api-key-from-file-42" not in err
