"""`simulate` of a Canary whose target is a core `v1` Service (backends managed elsewhere), as a
user runs it: the release is a change of the Service's spec, the router moves traffic between
the `-canary` and `-primary` copies, and the analysis decides as for any other target."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.cli import main

CANARY: dict[str, Any] = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "Canary",
    "metadata": {"name": "backend", "namespace": "test"},
    "spec": {
        "provider": "gatewayapi:v1",
        "targetRef": {"apiVersion": "v1", "kind": "Service", "name": "backend"},
        "service": {
            "port": 9898,
            "hosts": ["backend.example.com"],
            "gatewayRefs": [{"name": "gateway", "namespace": "istio-ingress"}],
        },
        "analysis": {
            "interval": "1m",
            "threshold": 2,
            "maxWeight": 50,
            "stepWeight": 25,
            "metrics": [
                {
                    "name": "error-rate",
                    "query": "sum(rate(errors[1m]))",
                    "thresholdRange": {"max": 1},
                }
            ],
        },
    },
}


def _run(tmp_path: Path, error_rate: float, capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    canary = tmp_path / "canary.yaml"
    canary.write_text(yaml.safe_dump(CANARY))
    recording = tmp_path / "rec.csv"
    rows = [f"{t},canary,error-rate,{error_rate}" for t in range(0, 480, 60)]
    recording.write_text("time,target,metric,value\n" + "\n".join(rows) + "\n")
    code = main(
        ["simulate", "--canary", str(canary), "--recording", str(recording), "--output", "json"]
    )
    return code, json.loads(capsys.readouterr().out)


def test_a_healthy_release_of_a_service_target_is_promoted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = _run(tmp_path, 0.1, capsys)
    assert (code, result["result"]) == (0, "promoted")
    weights = [t["canaryWeight"] for t in result["ticks"] if t["phase"] == "Progressing"]
    assert weights == [0, 25, 50]
    events = [e for t in result["ticks"] for e in t["events"]]
    assert "Copying backend.test template spec to backend-primary.test" in events


def test_a_bad_release_of_a_service_target_is_rolled_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = _run(tmp_path, 5.0, capsys)
    assert (code, result["result"]) == (1, "rolled_back")
    assert result["ticks"][-1]["primaryWeight"] == 100
