"""`canary-engine simulate` end to end, through the command line, for every strategy and path.

Each test writes a Canary and a recording, runs the CLI as a user would, and checks the exit status
and the JSON document (interfaces.md §1–3) or the timeline.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"


def canary_yaml(analysis: dict[str, Any], **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "webhook-server", "namespace": "staging"},
        "spec": {
            "provider": "istio",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "webhook-server"},
            "service": {"port": 80},
            "analysis": analysis,
            **spec,
        },
    }
    return body


HEALTHY = {
    "interval": "1m",
    "threshold": 2,
    "maxWeight": 30,
    "stepWeight": 10,
    "metrics": [
        {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"},
        {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "1m"},
    ],
}


def recording(rows: list[tuple[float, str, str, float | str]]) -> str:
    lines = ["time,target,metric,value"] + [f"{t},{tg},{m},{v}" for t, tg, m, v in rows]
    return "\n".join(lines) + "\n"


def steady(
    until: int = 1200, rate: float = 99.9, duration: float = 200, step: int = 60
) -> list[Any]:
    rows: list[Any] = []
    for t in range(0, until + 1, step):
        rows.append((t, "canary", "request-success-rate", rate))
        rows.append((t, "canary", "request-duration", duration))
    return rows


class Sim:
    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.tmp = tmp_path
        self.capsys = capsys

    def run(
        self,
        canary: dict[str, Any] | str | Path,
        rows: list[Any] | str | Path,
        *extra: str,
        output: str = "json",
    ) -> tuple[int, Any, str]:
        if isinstance(canary, dict):
            path = self.tmp / "canary.yaml"
            path.write_text(yaml.safe_dump(canary))
            canary = path
        if isinstance(rows, list):
            rec = self.tmp / "rec.csv"
            rec.write_text(recording(rows))
            rows = rec
        code = main(
            [
                "simulate",
                "--canary",
                str(canary),
                "--recording",
                str(rows),
                "--output",
                output,
                *extra,
            ]
        )
        out, err = self.capsys.readouterr()
        doc = json.loads(out) if output == "json" and code != 2 else out
        return code, doc, err


@pytest.fixture
def sim(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Sim:
    return Sim(tmp_path, capsys)


def phases(doc: dict[str, Any]) -> list[str]:
    return [t["phase"] for t in doc["ticks"]]


def weights(doc: dict[str, Any]) -> list[int]:
    return [t["canaryWeight"] for t in doc["ticks"]]


def all_events(doc: dict[str, Any]) -> list[str]:
    return [e for t in doc["ticks"] for e in t["events"]]


# -- the bundled example -----------------------------------------------------------------------


def test_no_arguments_replays_the_bundled_example_as_a_timeline(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["simulate"])
    out = capsys.readouterr().out
    assert code == 0
    assert "staging/webhook-server" in out
    assert "New revision detected! Scaling up webhook-server.staging" in out
    assert "request-success-rate" in out
    assert "result: PROMOTED" in out
    assert "\033[" not in out  # piped: no colour


def test_bundled_good_recording_promotes_with_the_documented_json(sim: Sim) -> None:
    code, doc, _ = sim.run(EXAMPLES / "webhook-server.yaml", EXAMPLES / "webhook-server-good.csv")
    assert code == 0
    assert doc["canary"] == "staging/webhook-server" and doc["result"] == "promoted"
    first = doc["ticks"][0]
    assert first["t"] == 0 and first["phase"] == "Progressing"
    assert (first["canaryWeight"], first["primaryWeight"], first["failedChecks"]) == (0, 100, 0)
    assert first["events"] == ["New revision detected! Scaling up webhook-server.staging"]
    assert phases(doc) == [
        "Progressing",
        "Progressing",
        "Progressing",
        "Promoting",
        "Finalising",
        "Succeeded",
    ]
    assert weights(doc)[:4] == [0, 15, 30, 30]
    assert [t["t"] for t in doc["ticks"]] == [0, 60, 120, 180, 240, 300]
    assert doc["decidedAt"] == 300
    checked = doc["ticks"][2]["checks"]
    assert [c["metric"] for c in checked] == [
        "request-success-rate",
        "request-duration",
        "error-rate",
    ]
    assert checked[0]["min"] == 95 and checked[0]["max"] is None and checked[0]["passed"] is True
    # the mesh-free router approximates 15 % with replicas and says what it achieved
    assert "achievedCanaryWeight" in doc["ticks"][1]


def test_bundled_bad_recording_rolls_back_at_the_threshold(sim: Sim) -> None:
    code, doc, _ = sim.run(EXAMPLES / "webhook-server.yaml", EXAMPLES / "webhook-server-bad.json")
    assert code == 1 and doc["result"] == "rolled_back"
    assert phases(doc)[-1] == "Failed"
    failed = [t["failedChecks"] for t in doc["ticks"]]
    assert max(failed) == 5 and failed[-1] == 0
    assert "Rolling back webhook-server.staging failed checks threshold reached 5" in all_events(
        doc
    )
    assert "Canary failed! Scaling down webhook-server.staging" in all_events(doc)
    assert doc["ticks"][-1]["primaryWeight"] == 100
    assert any(
        e.startswith("Halt webhook-server.staging advancement success rate 9")
        for e in all_events(doc)
    )


def test_claude_runner_templates_promote(sim: Sim) -> None:
    code, doc, _ = sim.run(EXAMPLES / "claude-runner.yaml", EXAMPLES / "claude-runner-good.csv")
    assert code == 0
    names = {c["metric"] for t in doc["ticks"] for c in t["checks"]}
    assert names == {"cpu-usage", "memory-usage", "job-success-rate"}


# -- canary strategy paths ---------------------------------------------------------------------


def test_nan_that_heals_costs_failed_checks_but_still_promotes(sim: Sim) -> None:
    rows = steady()
    rows = [
        (t, tg, m, "NaN" if t in (60, 120) and m == "request-success-rate" else v)
        for t, tg, m, v in rows
    ]
    code, doc, _ = sim.run(canary_yaml({**HEALTHY, "threshold": 3}), rows)
    assert code == 0
    assert max(t["failedChecks"] for t in doc["ticks"]) == 1
    assert any("no values found" in e for e in all_events(doc))
    nodata = [c for t in doc["ticks"] for c in t["checks"] if c["value"] is None]
    assert nodata and all(c["passed"] is False for c in nodata)


def test_step_weights_with_overflow_past_100(sim: Sim) -> None:
    analysis = {**HEALTHY, "stepWeights": [1, 2, 10, 200]}
    del analysis["stepWeight"], analysis["maxWeight"]
    code, doc, _ = sim.run(canary_yaml(analysis), steady())
    assert code == 0
    progressing = [t["canaryWeight"] for t in doc["ticks"] if t["phase"] == "Progressing"]
    assert progressing == [0, 1, 2, 10, 100]


def test_step_weight_promotion_shifts_traffic_back_in_steps(sim: Sim) -> None:
    analysis = {**HEALTHY, "stepWeight": 50, "maxWeight": 100, "stepWeightPromotion": 50}
    code, doc, _ = sim.run(canary_yaml(analysis), steady())
    assert code == 0
    promoting = [
        (t["phase"], t["primaryWeight"])
        for t in doc["ticks"]
        if t["phase"] in ("Promoting", "Finalising")
    ]
    assert promoting == [("Promoting", 0), ("Promoting", 50), ("Finalising", 100)]
    assert "Advance webhook-server.staging primary weight 50" in all_events(doc)


def test_blue_green_runs_iterations_then_switches_all_traffic(sim: Sim) -> None:
    analysis = {**HEALTHY, "iterations": 3}
    del analysis["stepWeight"], analysis["maxWeight"]
    code, doc, _ = sim.run(canary_yaml(analysis, provider="kubernetes"), steady())
    assert code == 0
    assert [t["iterations"] for t in doc["ticks"]][:5] == [0, 1, 2, 3, 4]
    assert "Routing all traffic to canary" in all_events(doc)
    switched = next(t for t in doc["ticks"] if "Routing all traffic to canary" in t["events"])
    assert switched["primaryWeight"] == 0
    assert all(t["canaryWeight"] == 0 for t in doc["ticks"])  # B/G never writes canaryWeight (Q9)
    analysed = [t for t in doc["ticks"] if t["checks"]]
    assert len(analysed) == 4  # N + 1 analyses, as Flagger


def test_skip_analysis_promotes_without_checks(sim: Sim) -> None:
    code, doc, _ = sim.run(canary_yaml(HEALTHY, skipAnalysis=True), steady(rate=10))
    assert code == 0
    assert all(not t["checks"] for t in doc["ticks"])
    assert (
        "Promotion completed! Canary analysis was skipped for webhook-server.staging"
        in all_events(doc)
    )


def test_suspended_canary_stays_put_and_is_undecided(sim: Sim) -> None:
    code, doc, _ = sim.run(canary_yaml(HEALTHY, suspend=True), steady(until=300))
    assert code == 3 and doc["result"] == "undecided"
    assert all(t["phase"] == "Initialized" for t in doc["ticks"])
    assert all(t["events"] == ["skipping canary run as object is suspended"] for t in doc["ticks"])


# -- webhooks from the recording ---------------------------------------------------------------


def with_hooks(*hooks: dict[str, Any]) -> dict[str, Any]:
    return canary_yaml({**HEALTHY, "webhooks": list(hooks)})


def test_failing_pre_rollout_hook_counts_failed_checks_until_rollback(sim: Sim) -> None:
    rows = [*steady(), (0, "webhook", "smoke", 0)]
    code, doc, _ = sim.run(
        with_hooks({"name": "smoke", "type": "pre-rollout", "url": "http://t/"}), rows
    )
    assert code == 1
    assert "Halt webhook-server.staging advancement pre-rollout check smoke failed" in " ".join(
        all_events(doc)
    )


def test_confirm_rollout_gate_keeps_the_canary_waiting_until_opened(sim: Sim) -> None:
    rows = [*steady(), (0, "webhook", "gate", 0), (180, "webhook", "gate", 1)]
    code, doc, _ = sim.run(
        with_hooks({"name": "gate", "type": "confirm-rollout", "url": "http://t/"}), rows
    )
    assert code == 0
    assert phases(doc)[:3] == ["Waiting", "Waiting", "Waiting"]
    assert phases(doc)[3] == "Progressing"
    assert (
        "Halt webhook-server.staging advancement waiting for approval gate"
        in doc["ticks"][0]["events"]
    )


def test_closed_confirm_rollout_gate_is_undecided(sim: Sim) -> None:
    rows = [*steady(until=300), (0, "webhook", "gate", 0)]
    code, doc, _ = sim.run(
        with_hooks({"name": "gate", "type": "confirm-rollout", "url": "http://t/"}), rows
    )
    assert code == 3 and doc["result"] == "undecided" and doc["decidedAt"] is None
    assert doc["ticks"][-1]["t"] <= 300 + 300


def test_confirm_promotion_waits_for_promotion_then_promotes(sim: Sim) -> None:
    rows = [*steady(), (0, "webhook", "approve", 0), (420, "webhook", "approve", 1)]
    code, doc, _ = sim.run(
        with_hooks({"name": "approve", "type": "confirm-promotion", "url": "http://t/"}), rows
    )
    assert code == 0
    assert "WaitingPromotion" in phases(doc)
    waiting = [t for t in doc["ticks"] if t["phase"] == "WaitingPromotion"]
    assert all(t["primaryWeight"] == 70 for t in waiting)  # routing keeps the weight (Q8)
    assert all(t["checks"] for t in waiting)  # analysis keeps running while waiting


def test_rollback_hook_aborts_the_run(sim: Sim) -> None:
    rows = [*steady(), (130, "webhook", "abort", 1)]
    code, doc, _ = sim.run(
        with_hooks({"name": "abort", "type": "rollback", "url": "http://t/"}), rows
    )
    assert code == 1
    assert "Rolling back webhook-server.staging manual webhook invoked" in all_events(doc)
    assert doc["decidedAt"] == 180


def test_rollout_hook_failure_is_a_failed_check(sim: Sim) -> None:
    rows = [*steady(), (100, "webhook", "load-test", 0), (200, "webhook", "load-test", 1)]
    body = with_hooks({"name": "load-test", "url": "http://t/"})
    body["spec"]["analysis"]["threshold"] = 3
    code, doc, _ = sim.run(body, rows)
    assert code == 0
    assert max(t["failedChecks"] for t in doc["ticks"]) == 2
    assert "Halt webhook-server.staging advancement external check load-test failed" in " ".join(
        all_events(doc)
    )


def test_confirm_traffic_increase_holds_the_weight(sim: Sim) -> None:
    rows = [
        *steady(),
        (0, "webhook", "step", 1),
        (100, "webhook", "step", 0),
        (250, "webhook", "step", 1),
    ]
    code, doc, _ = sim.run(
        with_hooks({"name": "step", "type": "confirm-traffic-increase", "url": "http://t/"}), rows
    )
    assert code == 0
    assert weights(doc)[:6] == [0, 10, 10, 10, 10, 20]
    assert max(t["failedChecks"] for t in doc["ticks"]) == 0


def test_post_rollout_hook_result_is_reported(sim: Sim) -> None:
    rows = [*steady(), (0, "webhook", "notify", 0)]
    code, doc, _ = sim.run(
        with_hooks({"name": "notify", "type": "post-rollout", "url": "http://t/"}), rows
    )
    assert code == 0  # a failing post-rollout hook never changes the outcome
    assert any(e.startswith("Post-rollout hook notify failed") for e in doc["ticks"][-1]["events"])


# -- presets -----------------------------------------------------------------------------------


def test_production_preset_steps_5_to_20_and_decides_at_840(sim: Sim) -> None:
    code, doc, _ = sim.run(
        EXAMPLES / "webhook-server-minimal.yaml",
        EXAMPLES / "webhook-server-good.csv",
        "--preset",
        "production",
    )
    assert code == 0 and doc["decidedAt"] == 840
    assert [t["canaryWeight"] for t in doc["ticks"] if t["phase"] == "Progressing"] == [
        0,
        5,
        10,
        15,
        20,
    ]
    assert doc["ticks"][2]["checks"][0]["min"] == 99.5


def test_canary_fields_win_over_the_preset(sim: Sim) -> None:
    body = canary_yaml(
        {
            "stepWeight": 25,
            "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 50}}],
        }
    )
    code, doc, _ = sim.run(body, steady(rate=70), "--preset", "development")
    assert code == 0  # 70 % passes the Canary's own min (50), though not the preset's (80)
    assert [t["canaryWeight"] for t in doc["ticks"] if t["phase"] == "Progressing"] == [
        0,
        25,
        50,
        75,
        100,
    ]
    rate = doc["ticks"][2]["checks"][0]
    assert rate["metric"] == "request-success-rate" and rate["min"] == 50
    assert doc["ticks"][1]["t"] == 30  # interval from the development preset


def test_preset_threshold_decides_the_rollback(sim: Sim) -> None:
    body = canary_yaml({})
    code, doc, _ = sim.run(body, steady(rate=70, until=1800, step=30), "--preset", "development")
    assert code == 1
    assert max(t["failedChecks"] for t in doc["ticks"]) == 2  # development threshold


# -- bad input ---------------------------------------------------------------------------------


def test_invalid_canary_is_exit_2_naming_the_field(sim: Sim) -> None:
    code, _, err = sim.run(canary_yaml({**HEALTHY, "stepWeight": 150}), steady())
    assert code == 2
    assert "spec.analysis.stepWeight: must be 0..100, got 150" in err


def test_bad_recording_is_exit_2_naming_file_and_line(sim: Sim, tmp_path: Path) -> None:
    rec = tmp_path / "bad.csv"
    rec.write_text(
        "time,target,metric,value\n0,canary,request-success-rate,99\n60,canary,request-success-rate,lots\n"
    )
    code, _, err = sim.run(canary_yaml(HEALTHY), rec)
    assert code == 2
    assert str(rec) in err and "3" in err


def test_unreadable_files_are_exit_2(sim: Sim, tmp_path: Path) -> None:
    code, _, err = sim.run(tmp_path / "missing.yaml", steady())
    assert code == 2 and "missing.yaml" in err
    code, _, err = sim.run(canary_yaml(HEALTHY), tmp_path / "missing.csv")
    assert code == 2 and "missing.csv" in err


def test_missing_template_is_exit_2(sim: Sim) -> None:
    body = canary_yaml(
        {
            **HEALTHY,
            "metrics": [
                {"name": "errors", "templateRef": {"name": "nope"}, "thresholdRange": {"max": 1}}
            ],
        }
    )
    code, _, err = sim.run(body, steady())
    assert code == 2 and "MetricTemplate staging/nope" in err


def test_missing_template_variable_fails_checks_with_a_clear_event(
    sim: Sim, tmp_path: Path
) -> None:
    text = textwrap.dedent(
        """\
        apiVersion: flagger.app/v1beta1
        kind: MetricTemplate
        metadata: {name: errors, namespace: staging}
        spec:
          provider: {type: prometheus, address: "http://prom:9090"}
          query: 'sum(rate(errors_total{job="{{ variables.job }}"}[{{ interval }}]))'
        """
    )
    canary = canary_yaml(
        {
            **HEALTHY,
            "metrics": [
                {"name": "errors", "templateRef": {"name": "errors"}, "thresholdRange": {"max": 1}}
            ],
        }
    )
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(canary) + "---\n" + text)
    rows = [(t, "canary", "errors", 0) for t in range(0, 1200, 60)]
    code, doc, _ = sim.run(path, rows)
    assert code == 1
    assert any("job" in e and "render" in e for e in all_events(doc))


def test_timeline_is_coloured_only_on_a_terminal(sim: Sim) -> None:
    code, out, _ = sim.run(canary_yaml(HEALTHY), steady(), output="table")
    assert code == 0 and "\033[" not in out
    assert "result: PROMOTED" in out


def test_o_is_short_for_output(capsys: pytest.CaptureFixture[str]) -> None:
    # as in get, record and kubectl: simulate -o json is simulate --output json
    assert main(["simulate", "-o", "json"]) == 0
    short = json.loads(capsys.readouterr().out)
    assert main(["simulate", "--output", "json"]) == 0
    assert short == json.loads(capsys.readouterr().out)
