"""``canary-engine simulate --command TIME:COMMAND``: operator commands tried offline.

Through the command line, as a user would run it, against the bundled webhook-server example
(interval 60 s, stepWeight 15, maxWeight 30, threshold 5) and its good and bad recordings: the
exit status, the JSON ticks (a command's tick carries ``command`` and its events and alerts) and
the timeline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"
CANARY = str(EXAMPLES / "webhook-server.yaml")
BAD = str(EXAMPLES / "webhook-server-bad.json")


def simulate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["simulate", *args, "--output", "json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def by_command(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["command"]: t for t in doc["ticks"] if "command" in t}


def test_without_commands_the_run_is_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = simulate(capsys)
    assert code == 0 and doc["result"] == "promoted"
    assert not any("command" in t or "paused" in t for t in doc["ticks"])


def test_promote_full_promotes_at_its_time(capsys: pytest.CaptureFixture[str]) -> None:
    _, plain = simulate(capsys)
    code, doc = simulate(capsys, "--command", "90:promote-full")
    assert code == 0 and doc["result"] == "promoted"
    tick = by_command(doc)["promote --full"]
    assert (tick["t"], tick["phase"], tick["checks"]) == (90, "Promoting", [])
    assert tick["events"] == [
        "Command promote --full (sim-0001) for webhook-server.staging: skipping the rest of the "
        "analysis, promoting webhook-server.staging",
        "Copying webhook-server.staging template spec to webhook-server-primary.staging",
    ]
    assert tick["alerts"] == [
        {
            "message": "Operator command promote --full: skipping the rest of the analysis, "
            "promoting webhook-server.staging",
            "severity": "info",
        }
    ]
    assert doc["decidedAt"] < plain["decidedAt"]


def test_promote_steps_at_once_and_the_regular_ticks_keep_their_times(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, doc = simulate(capsys, "--command", "90:promote", "--command", "1m40s:promote")
    assert code == 0
    ticks = [(t["t"], t.get("command"), t["canaryWeight"]) for t in doc["ticks"]]
    assert ticks[:5] == [
        (0, None, 0),
        (60, None, 15),
        (90, "promote", 30),
        (100, "promote", 30),
        (120, None, 0),
    ]
    # the second step was the promotion; the regular tick at 120 went on from there
    assert [t["phase"] for t in doc["ticks"][3:5]] == ["Promoting", "Finalising"]
    assert doc["ticks"][2]["events"][-1] == "Advance webhook-server.staging canary weight 30"


def test_abort_rolls_back_a_good_revision_at_its_time(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = simulate(capsys, "--command", "150:abort")
    assert code == 1 and doc["result"] == "rolled_back" and doc["decidedAt"] == 150
    tick = doc["ticks"][-1]
    assert (tick["command"], tick["phase"], tick["canaryWeight"], tick["primaryWeight"]) == (
        "abort",
        "Failed",
        0,
        100,
    )
    assert tick["events"][1:] == [
        "Rolling back webhook-server.staging aborted by operator",
        "Canary failed! Scaling down webhook-server.staging",
    ]
    assert tick["alerts"][0]["severity"] == "warn"


def test_retry_after_abort_runs_the_analysis_again_to_a_promotion(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, doc = simulate(capsys, "--command", "150:abort", "--command", "200:retry")
    assert code == 0 and doc["result"] == "promoted"
    phases = [t["phase"] for t in doc["ticks"]]
    assert phases.index("Failed") < phases.index("Succeeded")
    retry = by_command(doc)["retry"]
    assert (retry["t"], retry["phase"], retry["failedChecks"]) == (200, "Progressing", 0)
    after = [t for t in doc["ticks"] if t["t"] > 200]
    assert after[0]["events"][:2] == [
        "Starting canary analysis for webhook-server.staging",
        "Pre-rollout check acceptance-test passed",
    ]
    # The regular ticks keep the interval's grid through the abort and the retry, as the
    # controller's do (the first regular tick after the retry at 200 is at 240, not at 260).
    regular = [t["t"] for t in doc["ticks"] if "command" not in t]
    assert all(t % 60 == 0 for t in regular), regular
    assert after[0]["t"] == 240
    # A retry at a regular tick's time takes that tick: the next one is a whole interval later,
    # not at the same instant (which ran the pre-rollout hooks right after the retry).
    code, doc = simulate(capsys, "--command", "2m:abort", "--command", "3m:retry")
    assert code == 0 and by_command(doc)["abort"]["phase"] == "Failed"
    retry = by_command(doc)["retry"]
    assert (retry["t"], retry["phase"]) == (180, "Progressing")
    times = [t["t"] for t in doc["ticks"]]
    assert times.count(180) == 1
    assert min(t for t in times if t > 180) == 240


def test_pause_holds_a_failing_revision_until_resume(capsys: pytest.CaptureFixture[str]) -> None:
    _, plain = simulate(capsys, "--recording", BAD)
    assert plain["result"] == "rolled_back"
    code, doc = simulate(
        capsys, "--recording", BAD, "--command", "61:pause", "--command", "4m:resume"
    )
    paused = [t for t in doc["ticks"] if t.get("paused")]
    assert paused and all(t["checks"] == [] and t["events"] == [] for t in paused[1:])
    assert {t["failedChecks"] for t in paused} == {paused[0]["failedChecks"]}
    resumed = by_command(doc)["resume"]
    assert resumed["t"] == 240 and "paused" not in resumed
    # the bad revision still rolls back, later by the time it was paused (3 of 4 ticks)
    assert code == 1 and doc["decidedAt"] == plain["decidedAt"] + 180


def test_a_command_that_does_not_apply_is_shown_with_its_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, doc = simulate(capsys, "--command", "10:resume")
    assert code == 0
    assert by_command(doc)["resume"]["events"] == [
        "Command resume (sim-0001) for webhook-server.staging ignored: not paused"
    ]


def test_the_timeline_marks_command_ticks_and_paused_ticks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["simulate", "--command", "90:pause", "--command", "200:resume"])
    out = capsys.readouterr().out
    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith("  1:30")]
    assert rows and rows[0].rstrip().endswith("command: pause")
    assert any(
        line.startswith("  2:00") and line.rstrip().endswith("paused") for line in out.splitlines()
    )
    assert "· Command pause (sim-0001) for webhook-server.staging: holding canary weight 15" in out


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("promote", "expected TIME:COMMAND"),
        ("300:rollback", "unknown command 'rollback'"),
        ("soon:abort", "bad time 'soon'"),
        ("=-5:abort", "time must be 0 to 7 days"),
        ("8000000:abort", "time must be 0 to 7 days"),
    ],
)
def test_bad_commands_are_refused_naming_the_option(
    capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    code = main(
        ["simulate", *(["--command" + value] if value.startswith("=") else ["--command", value])]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("--command: ") and message in err and "Traceback" not in err


def test_a_command_after_the_recording_ended_is_reported_as_not_sent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        ["simulate", "--command", "61:pause", "--command", "144h:resume", "--output", "json"]
    )
    captured = capsys.readouterr()
    assert code == 3 and json.loads(captured.out)["result"] == "undecided"
    assert "warning: --command 518400:resume was not sent: the simulation ended at t=" in (
        captured.err
    )


def test_a_command_after_the_verdict_is_still_sent_and_shown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, doc = simulate(capsys, "--command", "144h:abort")
    assert code == 0 and doc["result"] == "promoted"
    tick = doc["ticks"][-1]
    assert (tick["t"], tick["command"]) == (518400, "abort")
    assert tick["events"] == [
        "Command abort (sim-0001) for webhook-server.staging ignored: no analysis is in "
        "progress (phase Succeeded)"
    ]
