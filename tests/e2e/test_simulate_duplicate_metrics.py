"""Two entries of ``analysis.metrics`` may share a name (Flagger's CRD allows it, and evaluates
each on its own): each keeps its own ``dryRun`` and ``onNoData``. Keyed by name, the last entry's
``dryRun: true`` turned the first's real check into a dry run, and a bad release was promoted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"

CANARY = """\
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: webhook-server, namespace: staging}
spec:
  provider: kubernetes
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: webhook-server}
  service: {port: 80}
  analysis:
    interval: 60s
    threshold: 2
    maxWeight: 30
    stepWeight: 15
    metrics:
      - {name: request-success-rate, interval: 1m, thresholdRange: {min: 99}}
      - {name: request-success-rate, interval: 1m, dryRun: true, thresholdRange: {min: 0}}
"""


@pytest.mark.parametrize("order", ["real first", "dry run first"])
def test_a_dry_run_entry_never_makes_its_namesake_a_dry_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], order: str
) -> None:
    text = CANARY
    if order == "dry run first":
        real, dry = text.splitlines()[-2:]
        text = "\n".join([*text.splitlines()[:-2], dry, real]) + "\n"
    canary = tmp_path / "canary.yaml"
    canary.write_text(text)
    recording = EXAMPLES / "webhook-server-bad.json"
    code = main(
        ["simulate", "--canary", str(canary), "--recording", str(recording), "--output", "json"]
    )
    doc = json.loads(capsys.readouterr().out)
    assert (code, doc["result"]) == (1, "rolled_back")
    checks = [c for tick in doc["ticks"] for c in tick["checks"]]
    # simulate's JSON marks a dry-run check with "dryRun": true and leaves it out otherwise
    assert {c.get("dryRun", False) for c in checks if c["min"] == 99} == {False}
    assert {c.get("dryRun", False) for c in checks if c["min"] == 0} == {True}


@pytest.mark.parametrize(
    ("on_no_data", "says"),
    [(None, "a failed check"), ("inconclusive", "inconclusive (onNoData)"), ("pass", "a pass")],
)
def test_a_metric_the_recording_lacks_is_warned_about_with_its_no_data_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], on_no_data: str | None, says: str
) -> None:
    policy = f", onNoData: {on_no_data}" if on_no_data else ""
    canary = tmp_path / "canary.yaml"
    head = CANARY.split("    metrics:\n")[0]
    canary.write_text(
        head
        + "    metrics:\n"
        + f"      - {{name: absent, query: up, thresholdRange: {{min: 1}}{policy}}}\n"
    )
    recording = EXAMPLES / "webhook-server-good.csv"
    main(["simulate", "--canary", str(canary), "--recording", str(recording)])
    shown = capsys.readouterr()
    assert (
        "the recording has no canary samples for metric 'absent': every check of it will have "
        f"no data ({says}" in shown.out + shown.err
    )


@pytest.mark.parametrize("judged", ["first", "second", "both"])
def test_a_judged_metric_sharing_its_name_is_refused_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], judged: str
) -> None:
    # A judge finds its series and its verdict by the metric's name: of two namesakes one read
    # the other's samples and the second was never judged (its check passed unbounded).
    judge = "judge: {baseline: primary, harmful: increase}"
    first = (
        f"{{name: latency, query: a, {judge}}}"
        if judged != "second"
        else "{name: latency, query: a, thresholdRange: {max: 5}}"
    )
    second = (
        f"{{name: latency, query: b, {judge}}}"
        if judged != "first"
        else "{name: latency, query: b, thresholdRange: {max: 5}}"
    )
    head = CANARY.split("    metrics:\n")[0]
    canary = tmp_path / "canary.yaml"
    canary.write_text(head + "    metrics:\n" + f"      - {first}\n      - {second}\n")
    code = main(["validate", str(canary)])
    out = capsys.readouterr()
    judged_at = 1 if judged == "second" else 0
    assert code == 2
    assert f"spec.analysis.metrics[{judged_at}].name: 'latency' also names" in out.out + out.err
    assert "rename one of them" in out.out + out.err
    # Flagger's own case, two unjudged namesakes, stays valid (test above)
