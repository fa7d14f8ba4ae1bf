"""simulate: an Istio Canary with ``analysis.match`` and ``stepWeight`` (no ``iterations``) runs
Flagger's canary strategy, the steps splitting only the matching requests, and promotes on a
healthy recording (config/examples/flagger-docs/healthy.csv)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import main

HEALTHY = Path(__file__).resolve().parents[2] / "config/examples/flagger-docs/healthy.csv"

CANARY = """\
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  provider: istio
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  service:
    port: 9898
    match:
      - uri:
          prefix: /api
  analysis:
    interval: 30s
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    match:
      - headers:
          x-canary:
            exact: insider
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
        interval: 1m
      - name: request-duration
        thresholdRange:
          max: 500
        interval: 30s
"""


def test_match_with_step_weight_promotes_through_every_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "canary.yaml"
    path.write_text(CANARY, encoding="utf-8")
    assert main(["validate", str(path)]) == 0
    capsys.readouterr()
    code = main(
        ["simulate", "--canary", str(path), "--recording", str(HEALTHY), "--output", "json"]
    )
    result = json.loads(capsys.readouterr().out)
    assert (code, result["result"]) == (0, "promoted")
    weights = [tick["canaryWeight"] for tick in result["ticks"]]
    assert sorted(set(weights) - {0}) == [10, 20, 30, 40, 50]  # the canary strategy's steps
    assert {tick["iterations"] for tick in result["ticks"]} == {0}  # not A/B testing's
    events = [e for tick in result["ticks"] for e in tick["events"]]
    assert "Advance podinfo.test canary weight 10" in events
    assert "Copying podinfo.test template spec to podinfo-primary.test" in events
    assert not any("canary iteration" in e for e in events)
    main(["simulate", "--canary", str(path), "--recording", str(HEALTHY)])
    table = capsys.readouterr().out
    assert "strategy canary (weights on matching requests only), interval 30s" in table


@pytest.mark.parametrize(("mesh_provider", "code"), [("istio", 0), ("kubernetes", 2)])
def test_without_spec_provider_the_mesh_provider_decides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mesh_provider: str, code: int
) -> None:
    # A Flagger user on Flagger's default mesh (istio) often leaves spec.provider out: the
    # --mesh-provider routes it, and its router's rules apply (kubernetes cannot split matches).
    path = tmp_path / "canary.yaml"
    path.write_text(CANARY.replace("  provider: istio\n", ""), encoding="utf-8")
    assert main(["validate", str(path)]) == 0
    capsys.readouterr()
    args = ["simulate", "--canary", str(path), "--recording", str(HEALTHY)]
    assert main([*args, "--mesh-provider", mesh_provider, "--output", "json"]) == code
    out, err = capsys.readouterr()
    if code == 0:
        assert json.loads(out)["result"] == "promoted"
    else:
        assert "spec.analysis.match: the kubernetes router cannot route by header" in err


def test_validate_checks_against_the_mesh_provider_it_is_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "canary.yaml"
    path.write_text(CANARY.replace("  provider: istio\n", ""), encoding="utf-8")
    assert main(["validate", str(path), "--mesh-provider", "istio"]) == 0
    assert main(["validate", str(path), "--mesh-provider", "kubernetes"]) == 2
    assert "the kubernetes router cannot route by header" in capsys.readouterr().err


def test_validate_names_an_unknown_mesh_provider(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "canary.yaml"
    path.write_text(CANARY, encoding="utf-8")
    assert main(["validate", str(path), "--mesh-provider", "bogus"]) == 2
    assert capsys.readouterr().err.startswith("--mesh-provider: unknown provider 'bogus'; built: ")
