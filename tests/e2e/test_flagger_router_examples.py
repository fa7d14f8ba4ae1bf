"""Flagger's tutorial Canaries for each router canary-engine builds: they validate, and simulate
steps the weight through the router to a promotion on a healthy recording, or rolls back on a bad
one (config/examples/flagger-docs/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from engine.cli import main

DOCS = Path(__file__).resolve().parents[2] / "config" / "examples" / "flagger-docs"
ROUTERS = ["linkerd", "osm", "contour", "gloo", "traefik", "apisix", "skipper", "kuma", "appmesh"]


@pytest.mark.parametrize("provider", ROUTERS)
def test_the_tutorial_canary_validates(provider: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(DOCS / f"{provider}.yaml")]) == 0
    assert "valid (1 Canary" in capsys.readouterr().out


@pytest.mark.parametrize("provider", ROUTERS)
def test_a_healthy_recording_promotes_through_every_weight_step(
    provider: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "simulate",
            "--canary",
            str(DOCS / f"{provider}.yaml"),
            "--recording",
            str(DOCS / "healthy.csv"),
            "--output",
            "json",
        ]
    )
    result = json.loads(capsys.readouterr().out)
    assert (code, result["result"]) == (0, "promoted")
    weights = [tick["canaryWeight"] for tick in result["ticks"]]
    # stepWeight 5 up to maxWeight 50: each step was routed and read back from the router
    assert sorted(set(weights) - {0}) == list(range(5, 55, 5))
    assert "achievedCanaryWeight" not in result["ticks"][3]  # a mesh routes weights exactly


@pytest.mark.parametrize("provider", ROUTERS)
def test_a_failing_canary_rolls_back(
    provider: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    rows = ["time,target,metric,value"]
    rows += [f"{t},canary,request-success-rate,80" for t in range(0, 1500, 30)]
    rows += [f"{t},canary,request-duration,180" for t in range(0, 1500, 30)]
    bad.write_text("\n".join(rows) + "\n")
    code = main(["simulate", "--canary", str(DOCS / f"{provider}.yaml"), "--recording", str(bad)])
    assert code == 1
    assert "Rolling back podinfo.test failed checks threshold reached 5" in capsys.readouterr().out


def test_a_daemonset_canary_promotes_blue_green(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(DOCS / "daemonset.yaml")
    assert main(["validate", path]) == 0
    capsys.readouterr()
    code = main(
        ["simulate", "--canary", path, "--recording", str(DOCS / "healthy.csv"), "--output", "json"]
    )
    result = json.loads(capsys.readouterr().out)
    assert (code, result["result"]) == (0, "promoted")
    assert [t["iterations"] for t in result["ticks"]][:5] == [0, 1, 2, 3, 4]
    events = [e for t in result["ticks"] for e in t["events"]]
    assert "Routing all traffic to canary" in events
    assert "Copying podinfo.test template spec to podinfo-primary.test" in events


def test_the_knative_tutorial_canary_promotes(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(DOCS / "knative.yaml")
    assert main(["validate", path]) == 0
    capsys.readouterr()
    code = main(
        ["simulate", "--canary", path, "--recording", str(DOCS / "healthy.csv"), "--output", "json"]
    )
    result = json.loads(capsys.readouterr().out)
    assert (code, result["result"]) == (0, "promoted")
    weights = [tick["canaryWeight"] for tick in result["ticks"]]
    assert sorted(set(weights) - {0}) == [10, 20, 30, 40, 50]  # stepWeight 10 up to 50


def test_a_keda_scaled_canary_promotes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Flagger's linkerd tutorial Canary with a KEDA ScaledObject instead of its HPA (simulate
    # synthesises the ScaledObject, as it does the HPA, when the file has none)
    text = (DOCS / "linkerd.yaml").read_text()
    hpa_ref = (
        "    apiVersion: autoscaling/v2\n    kind: HorizontalPodAutoscaler\n    name: podinfo\n"
    )
    assert hpa_ref in text
    keda_ref = "    apiVersion: keda.sh/v1alpha1\n    kind: ScaledObject\n    name: podinfo-so\n"
    path = tmp_path / "keda.yaml"
    path.write_text(text.replace(hpa_ref, keda_ref))
    assert main(["validate", str(path)]) == 0
    code = main(["simulate", "--canary", str(path), "--recording", str(DOCS / "healthy.csv")])
    assert code == 0, capsys.readouterr().err


def test_simulate_replays_a_service_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (DOCS / "linkerd.yaml").read_text().split("\n---\n")[0]  # the Canary, no HPA
    text = text.replace(
        "    apiVersion: apps/v1\n    kind: Deployment\n    name: podinfo\n",
        "    apiVersion: v1\n    kind: Service\n    name: podinfo\n",
    ).replace(
        "  autoscalerRef:\n    apiVersion: autoscaling/v2\n    kind: HorizontalPodAutoscaler\n"
        "    name: podinfo\n",
        "",
    )
    path = tmp_path / "service-target.yaml"
    path.write_text(text)
    assert main(["validate", str(path)]) == 0
    capsys.readouterr()
    code = main(["simulate", "--canary", str(path), "--recording", str(DOCS / "healthy.csv")])
    assert code == 0  # promoted: the Service's spec is the release, as in the cluster
    assert "Copying podinfo.test template spec to podinfo-primary.test" in capsys.readouterr().out


#: Tutorials whose analysis differs from the ones above: recording, and a bad recording's rows
#: (the first metric fails, the others stay healthy).
OWN_ANALYSIS = {
    "istio": ("healthy.csv", {"request-success-rate": 80, "request-duration": 180}),
    "nginx": ("healthy.csv", {"request-success-rate": 80}),
    "gatewayapi": ("gatewayapi-healthy.csv", {"error-rate": 20, "latency": 0.2}),
}


def _analysis(provider: str) -> dict[str, int]:
    canary = yaml.safe_load((DOCS / f"{provider}.yaml").read_text().split("\n---\n")[0])
    analysis: dict[str, int] = canary["spec"]["analysis"]
    return analysis


@pytest.mark.parametrize("provider", sorted(OWN_ANALYSIS))
def test_the_tutorial_canary_with_its_own_analysis_promotes_through_its_steps(
    provider: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(DOCS / f"{provider}.yaml")
    assert main(["validate", path]) == 0
    capsys.readouterr()
    recording = str(DOCS / OWN_ANALYSIS[provider][0])
    code = main(["simulate", "--canary", path, "--recording", recording, "--output", "json"])
    result = json.loads(capsys.readouterr().out)
    assert (code, result["result"]) == (0, "promoted")
    analysis = _analysis(provider)
    step, most = analysis["stepWeight"], analysis["maxWeight"]
    weights = {tick["canaryWeight"] for tick in result["ticks"]}
    assert sorted(weights - {0}) == list(range(step, most + step, step))


@pytest.mark.parametrize("provider", sorted(OWN_ANALYSIS))
def test_the_tutorial_canary_with_its_own_analysis_rolls_back_at_its_threshold(
    provider: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    rows = ["time,target,metric,value"]
    for metric, value in OWN_ANALYSIS[provider][1].items():
        rows += [f"{t},canary,{metric},{value}" for t in range(0, 3000, 10)]
    bad.write_text("\n".join(rows) + "\n")
    code = main(["simulate", "--canary", str(DOCS / f"{provider}.yaml"), "--recording", str(bad)])
    threshold = _analysis(provider)["threshold"]
    assert code == 1
    out = capsys.readouterr().out
    assert f"Rolling back podinfo.test failed checks threshold reached {threshold}" in out
