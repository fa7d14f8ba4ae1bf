"""`canary-engine sweep` as a user runs it: a grid file, folders of labelled recordings, a table
or one JSON document, the best settings first, and clear errors for bad input (issue 8, item 1)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import textwrap
from pathlib import Path
from typing import Any

import pytest

from engine.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "config" / "examples"
WHATIF = EXAMPLES / "whatif"


def _sweep_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code = main(["sweep", *args, "--output", "json"])
    out = capsys.readouterr().out
    assert code == 0, out
    document: dict[str, Any] = json.loads(out)
    return document


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_the_bundled_example_ranks_settings_by_detection_within_the_false_rollback_limit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    doc = _sweep_json(capsys)
    assert doc["recordings"] == 10 and doc["labelled"] is True
    assert doc["recordingLabels"].count("good") == 5 and doc["recordingLabels"].count("bad") == 5
    settings = doc["settings"]
    assert len(settings) == 4 * 3 * 2 + 1  # the grid's combinations plus one explicit setting
    labels = doc["recordingLabels"]
    for row in settings:
        # Every figure follows from the per-recording results and the labels.
        results = row["results"]
        bad = [r for r, label in zip(results, labels, strict=True) if label == "bad"]
        good = [r for r, label in zip(results, labels, strict=True) if label == "good"]
        assert row["detectionRate"] == bad.count("rolled_back") / len(bad)
        assert row["falseRollbackRate"] == good.count("rolled_back") / len(good)
        assert row["promoted"] + row["rolledBack"] + row["undecided"] == 10
        assert row["engine"] == "batch"
    within = [r for r in settings if r["falseRollbackRate"] <= doc["falseRollbackLimit"]]
    beyond = settings[len(within) :]
    assert within and settings[: len(within)] == within  # within the limit first
    assert all(r["falseRollbackRate"] > doc["falseRollbackLimit"] for r in beyond)
    rates = [r["detectionRate"] for r in within]
    assert rates == sorted(rates, reverse=True)
    # The what-if has an answer: smaller steps catch more regressions than the staging preset's
    # 15% steps, without a false rollback.
    assert within[0]["setting"]["analysis.stepWeight"] == 5
    staging_like = next(
        r
        for r in settings
        if r["setting"]
        == {
            "analysis.threshold": 5,
            "metrics[request-success-rate].thresholdRange.min": 95,
            "analysis.stepWeight": 15,
        }
    )
    assert within[0]["detectionRate"] > staging_like["detectionRate"]


def test_the_batch_and_the_engine_agree_on_every_replay(
    capsys: pytest.CaptureFixture[str],
) -> None:
    batch = _sweep_json(capsys)
    full = _sweep_json(capsys, "--full-engine")
    assert {r["engine"] for r in full["settings"]} == {"full"}
    by_id = {r["id"]: r for r in full["settings"]}
    for row in batch["settings"]:
        other = by_id[row["id"]]
        for key in ("results", "medianDecisionSeconds", "medianTimeToDetectSeconds"):
            assert row[key] == other[key], (row["id"], key)


def test_settings_the_batch_cannot_model_run_through_the_engine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = _write(
        tmp_path / "sweep.yaml",
        f"""
        canary: {EXAMPLES / "webhook-server-judged.yaml"}
        recordings:
          - {EXAMPLES / "webhook-server-judged-good.csv"}
          - {EXAMPLES / "webhook-server-judged-bad.csv"}
        grid:
          analysis.threshold: [1, 3]
        """,
    )
    doc = _sweep_json(capsys, str(sweep))
    assert [r["engine"] for r in doc["settings"]] == ["full", "full"]
    assert all("comparative judge" in r["fullEngineReason"] for r in doc["settings"])
    # The judged example's own verdicts: the good release promoted, the bad one rolled back.
    assert doc["recordingLabels"] == ["good", "bad"]
    for row in doc["settings"]:
        assert row["results"] == ["promoted", "rolled_back"]


def test_a_labels_file_wins_over_names_and_unlabelled_recordings_count_only_in_totals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "runs"
    folder.mkdir()
    for name in ("a.csv", "b.json", "c.csv"):
        source = "webhook-server-bad.json" if name.endswith(".json") else "webhook-server-good.csv"
        (folder / name).write_bytes((EXAMPLES / source).read_bytes())
    _write(tmp_path / "labels.csv", "recording,label\nruns/a.csv,good\nb.json,bad\n")
    sweep = _write(
        tmp_path / "sweep.yaml",
        f"""
        canary: {EXAMPLES / "webhook-server.yaml"}
        recordings: [runs/]
        labels: labels.csv
        """,
    )
    doc = _sweep_json(capsys, str(sweep))
    assert doc["recordingLabels"] == ["good", "bad", None]
    (row,) = doc["settings"]
    assert row["id"] == "s1" and row["setting"] == {}
    assert row["results"] == ["promoted", "rolled_back", "promoted"]
    assert row["detectionRate"] == 1.0 and row["falseRollbackRate"] == 0.0


def test_the_table_names_the_settings_and_the_ranking(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["#", "id", "promoted"]
    assert "stepWeight=5" in lines[1]
    assert lines[-1].startswith("25 settings x 10 recordings (5 good, 5 bad)")
    assert "\x1b[" not in out  # plain when not a terminal


@pytest.mark.parametrize(
    ("grid", "expected"),
    [
        ("analysis.threshold: 3", "grid.analysis.threshold: must be a non-empty list"),
        ("spec.provider: [istio]", "grid.spec.provider: a key is 'preset', 'analysis.<field>'"),
        (
            "metrics[latency].thresholdRange.max: [5]",
            "the Canary has no analysis metric named 'latency' (it has: request-success-rate",
        ),
        ("analysis.stepWeight: [-5]", "s1 (stepWeight=-5)"),
        ("preset: [fast]", "unknown preset 'fast'"),
    ],
)
def test_bad_grids_are_refused_with_the_key_and_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], grid: str, expected: str
) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        f"canary: {EXAMPLES / 'webhook-server.yaml'}\n"
        f"recordings: [{EXAMPLES / 'webhook-server-good.csv'}]\n"
        f"grid:\n  {grid}\n"
    )
    assert main(["sweep", str(sweep)]) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert "Traceback" not in err


def test_a_labels_file_naming_a_missing_recording_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = _write(tmp_path / "labels.csv", "recording,label\nnope.csv,bad\n")
    code = main(
        [
            "sweep",
            str(WHATIF / "sweep.yaml"),
            "--labels",
            str(labels),
            "--recordings",
            str(EXAMPLES / "webhook-server-good.csv"),
        ]
    )
    assert code == 2
    assert "labels name recordings that are not in the sweep: nope.csv" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("where", "why"),
    [("missing-dir/r.html", "does not exist; create it first"), (".", "is a directory")],
)
def test_an_unwritable_report_path_is_refused_before_replaying(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str, why: str
) -> None:
    assert main(["sweep", "--report", str(tmp_path / where)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("--report: ") and why in captured.err


def test_a_progress_bar_on_a_terminal_and_none_when_piped(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "engine.cli", "sweep", "--output", "json"]
    env = {**os.environ, "COLUMNS": "100"}
    piped = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    assert piped.returncode == 0 and piped.stderr == ""
    json.loads(piped.stdout)  # one document, nothing else

    leader, follower = pty.openpty()
    # A terminal 100 columns wide (a new pseudo-terminal has none, and tqdm draws to the width).
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    try:
        run = subprocess.run(
            command, stdout=subprocess.PIPE, stderr=follower, check=False, env=env, timeout=120
        )
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    drawn = b"".join(chunks).decode(errors="replace")
    assert run.returncode == 0
    assert "250/250" in drawn and "replay" in drawn
    json.loads(run.stdout)  # the bar went to the terminal (stderr), not into the JSON
