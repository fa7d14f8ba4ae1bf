"""The simulate report's Why block: under the header, what decided the run, in words a platform
engineer asking "why was my release rolled back?" reads first. Every number is checked against
``simulate --output json`` of the same run.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest

from engine.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"
WEBHOOK_SERVER = str(EXAMPLES / "webhook-server.yaml")


def simulate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str
) -> tuple[dict[str, Any], str]:
    """Run simulate with ``--output json --report``; return its JSON and the report's HTML."""
    report = tmp_path / "report.html"
    main(["simulate", *args, "--output", "json", "--report", str(report)])
    out, _ = capsys.readouterr()
    return json.loads(out), report.read_text()


def why_block(page: str) -> tuple[str, list[list[str]]]:
    """The Why block as a reader sees it: its text (tags dropped, entities decoded, one line per
    paragraph or item) and its failures table as rows of cell texts."""
    found = re.search(r"<section id='why' class='why'>(.*?)</section>", page, re.S)
    assert found, "no Why block"
    block = found.group(1)
    assert page.index("<section id='why'") < page.index("<h2>Traffic weight</h2>")
    rows = [
        [
            html.unescape(re.sub(r"<[^>]+>", "", cell))
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", tr)
        ]
        for tr in re.findall(r"<tr>(.*?)</tr>", block.partition("<tbody>")[2])
    ]
    text = re.sub(r"</(p|li|h2)>", "\n", block.split("<table")[0])
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return "\n".join(line for line in text.splitlines() if line.strip()), rows


def failures_in(doc: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    return [
        {**c, "t": t["t"]}
        for t in doc["ticks"]
        for c in t["checks"]
        if c["metric"] == metric and c["verdict"] != "pass"
    ]


def clock(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


def test_a_rolled_back_report_says_why_at_the_top(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    recording = str(EXAMPLES / "webhook-server-bad.json")
    doc, page = simulate(capsys, tmp_path, "--canary", WEBHOOK_SERVER, "--recording", recording)
    text, rows = why_block(page)
    assert doc["result"] == "rolled_back" and doc["decidedAt"] == 420
    assert text.splitlines() == [
        "Why",
        "Rolled back at 7:00:",
        "Rolling back webhook-server.staging failed checks threshold reached 5",
        "Canary failed! Scaling down webhook-server.staging",
    ]
    # one row per failed metric: how many, first and last time, the last failure's reason
    expected = []
    for metric in ("request-success-rate", "request-duration", "error-rate"):
        failed = failures_in(doc, metric)
        last = failed[-1]
        bound = (
            f"below min {last['min']:g}"
            if last["min"] is not None
            else f"above max {last['max']:g}"
        )
        expected.append(
            [
                metric,
                str(len(failed)),
                clock(failed[0]["t"]),
                clock(last["t"]),
                f"value {last['value']:g} {bound}",
            ]
        )
    assert rows == expected
    assert rows[1] == ["request-duration", "5", "2:00", "6:00", "value 640 above max 500"]


def test_an_aborted_release_says_the_operator_aborted_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    recording = str(EXAMPLES / "webhook-server-good.csv")
    args = ["--canary", WEBHOOK_SERVER, "--recording", recording, "--command", "2m:abort"]
    doc, page = simulate(capsys, tmp_path, *args)
    text, rows = why_block(page)
    assert doc["result"] == "rolled_back"
    assert "Rolled back at 2:00:" in text
    assert "Rolling back webhook-server.staging aborted by operator" in text
    assert "No check or webhook failed." in text and rows == []


def test_a_judged_rollback_gives_the_judges_sentence(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    canary = str(EXAMPLES / "webhook-server-judged.yaml")
    recording = str(EXAMPLES / "webhook-server-judged-bad.csv")
    doc, page = simulate(capsys, tmp_path, "--canary", canary, "--recording", recording)
    _, rows = why_block(page)
    failed = failures_in(doc, "request-duration")
    assert rows == [
        [
            "request-duration",
            str(len(failed)),
            clock(failed[0]["t"]),
            clock(failed[-1]["t"]),
            failed[-1]["explanation"],
        ]
    ]
    assert "'s 24h" in rows[0][4]  # an apostrophe, as written


def test_a_promoted_report_says_so_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    recording = str(EXAMPLES / "webhook-server-good.csv")
    doc, page = simulate(capsys, tmp_path, "--canary", WEBHOOK_SERVER, "--recording", recording)
    text, rows = why_block(page)
    analysis = [t for t in doc["ticks"] if t["checks"]]
    checks = sum(len(t["checks"]) for t in analysis)
    assert doc["result"] == "promoted" and rows == []
    assert text.splitlines()[1] == (
        f"Promoted at {clock(doc['decidedAt'])} after {len(analysis)} analysis ticks "
        f"({checks} checks); no check failed."
    )


def test_an_undecided_report_says_the_recording_ended(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    recording = tmp_path / "empty.csv"
    recording.write_text("time,target,metric,value\n")  # no data: failures, too few to decide
    doc, page = simulate(
        capsys, tmp_path, "--canary", WEBHOOK_SERVER, "--recording", str(recording)
    )
    text, rows = why_block(page)
    last = doc["ticks"][-1]
    assert doc["result"] == "undecided"
    assert text.splitlines()[1] == (
        f"Undecided: the recording ended the run at {clock(last['t'])} with "
        f"{last['failedChecks']} failed checks (threshold 5)."
    )
    assert [r[0] for r in rows] == ["request-success-rate", "request-duration", "error-rate"]
    assert all(r[1] == str(len(failures_in(doc, r[0]))) for r in rows)


@pytest.mark.parametrize(
    ("recording", "label"),
    [
        ("webhook-server-bad.json", "rolled back at 7:00"),
        ("webhook-server-good.csv", "promoted at 5:00"),
    ],
)
def test_every_time_chart_marks_the_decision(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, recording: str, label: str
) -> None:
    args = ["--canary", WEBHOOK_SERVER, "--recording", str(EXAMPLES / recording)]
    doc, page = simulate(capsys, tmp_path, *args)
    assert label.endswith(clock(doc["decidedAt"]))
    charts = re.findall(r'<div class="plot" id="([a-z0-9-]+)-section">', page)
    assert len(charts) == 6  # weight, failed checks, webhooks and one per metric: all in time
    assert page.count(f'"text":"{label}"') == len(charts)
    x = float(doc["decidedAt"]) / 60
    assert page.count(f'"x0":{x!r},"x1":{x!r},') == len(charts)  # a vertical line on each
