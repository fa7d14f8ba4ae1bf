"""`canary-engine validate FILE...`: exit 0 when valid, 2 with every problem and its field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"

BAD = """\
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: web, namespace: prod}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service: {port: 80}
  analysis:
    interval: 1m
    threshold: 5
    stepWeight: 150
    stepweights: [1, 2]
    metrics:
      - name: request-duration
---
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {name: errors}
spec:
  provider: {type: graphite2}
  query: up
"""


def test_valid_examples_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["validate", str(EXAMPLES / "webhook-server.yaml"), str(EXAMPLES / "claude-runner.yaml")]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "webhook-server.yaml: valid (1 Canary, 1 MetricTemplate, 0 AlertProviders)" in out
    assert "claude-runner.yaml: valid (1 Canary, 3 MetricTemplates, 0 AlertProviders)" in out


def test_a_file_without_flagger_manifests_says_nothing_was_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # e.g. a snippet of a Canary's analysis pasted from a runbook: valid YAML, nothing to check
    path = tmp_path / "snippet.yaml"
    path.write_text("metrics:\n  - name: custom-metric\n    threshold: 90\n")
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "valid (0 Canaries, 0 MetricTemplates, 0 AlertProviders)" in out
    assert "no flagger.app/v1beta1 manifest in it, nothing was checked" in out


def test_every_problem_is_listed_with_its_path_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    code = main(["validate", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "[Canary/web] spec.analysis.stepWeight: must be 0..100, got 150" in err
    assert (
        "[Canary/web] spec.analysis.stepweights: unknown field; did you mean 'stepWeights'?" in err
    )
    assert (
        "[MetricTemplate/errors] spec.provider.type: unknown metric provider type 'graphite2'"
        in err
    )
    assert "Traceback" not in err


def test_minimal_canary_needs_a_preset(capsys: pytest.CaptureFixture[str]) -> None:
    minimal = str(EXAMPLES / "webhook-server-minimal.yaml")
    assert main(["validate", minimal]) == 2
    assert "set exactly one of iterations" in capsys.readouterr().err
    assert main(["validate", "--preset", "production", minimal]) == 0


def test_valid_flagger_input_we_cannot_drive_yet_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "smi.yaml"
    path.write_text(  # Flagger accepts any smi:<version> variant; no router serves v1alpha9
        (EXAMPLES / "webhook-server.yaml")
        .read_text()
        .replace("provider: kubernetes", "provider: smi:v1alpha9")
    )
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "spec.provider: provider 'smi:v1alpha9' is not built yet in canary-engine" in err


def test_a_gloo_mesh_canary_is_refused_for_its_provider_not_its_route_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Newer Flagger's gloo-mesh tutorial: spec.routeTableRef is read (no 'unknown field, did
    you mean routeRef'), and the provider is what is not built."""
    path = tmp_path / "gloo-mesh.yaml"
    path.write_text(
        (EXAMPLES / "webhook-server.yaml")
        .read_text()
        .replace("provider: kubernetes", "provider: gloo-mesh\n  routeTableRef: {name: podinfo}")
    )
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "routeTableRef" not in err
    assert "spec.provider: provider 'gloo-mesh' is not built yet in canary-engine" in err
    assert "built: " in err and "istio" in err


def test_unreadable_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: file not found" in capsys.readouterr().err


def test_a_password_in_an_address_is_never_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the problems quote the address; its user:password@ is masked as in every other message
    path = tmp_path / "templates.yaml"
    path.write_text(
        "\n---\n".join(
            "apiVersion: flagger.app/v1beta1\nkind: MetricTemplate\n"
            f"metadata: {{name: t{index}, namespace: test}}\n"
            f"spec:\n  provider: {{type: {kind}, address: '{address}'}}\n  query: up\n"
            for index, (kind, address) in enumerate(
                [
                    ("azuremonitor", "https://alice:AzS3cretPass99@example.com"),
                    ("chronosphere", "ftp://bob:ChS3cretPass99@tenant.chronosphere.io"),
                ]
            )
        )
    )
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "spec.provider.address" in err and "alice:xxxxx@" in err
    assert "S3cretPass99" not in err
