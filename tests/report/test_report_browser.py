"""The HTML reports, opened in headless Chromium as a person would open them (issue 8, item 4).

Each test makes a report through the command line (``simulate --report``) or the sweep renderer,
opens it from a file:// URL and checks what a reader relies on: the page loads with no console
error and no request besides the file itself (it works offline), every plot has drawn one mark per
tick / check / webhook answer of the simulation's own JSON, and hovering a failed check shows why
it failed. A full-page screenshot of each goes to the artefacts directory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from engine.cli.report_sweep import render_sweep_report

pytestmark = pytest.mark.browser

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"
VERDICT_NAMES = {
    "pass": "pass",
    "fail": "fail",
    "no_data": "no data",
    "error": "error",
    "inconclusive": "inconclusive",
}


def simulate_with_report(tmp_path: Path, canary: str, recording: Path) -> tuple[int, Any, Path]:
    """Run ``canary-engine simulate --output json --report`` as a user would (a process: the
    browser's driver owns this thread's event loop); return exit status, JSON and report path."""
    report = tmp_path / "report.html"
    command = [sys.executable, "-m", "engine.cli", "simulate", "--canary", str(EXAMPLES / canary)]
    command += ["--recording", str(recording), "--output", "json", "--report", str(report)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert f"report written to {report}" in done.stderr
    return done.returncode, json.loads(done.stdout), report


def assert_opened_cleanly(opened: Any) -> None:
    assert opened.console_errors == []
    assert opened.requests == [opened.url], "a report must make no request but its own file"


def metric_plots(opened: Any) -> dict[str, str]:
    """{metric heading: plot id} as the page lays them out."""
    found: list[list[str]] = opened.page.evaluate(
        """() => [...document.querySelectorAll('h3')].map((h) => [h.textContent,
            h.nextElementSibling.querySelector('.plotly-graph-div').id])"""
    )
    return dict(found)


def assert_every_tick_and_check_drawn(opened: Any, doc: dict[str, Any]) -> None:
    ticks = doc["ticks"]
    weight = opened.marks("weight")
    assert weight["canary weight (stepped)"] == len(ticks)
    achieved = [t for t in ticks if "achievedCanaryWeight" in t]
    assert weight.get("achieved canary weight (router)", 0) == len(achieved)
    events = [t for t in ticks if t["events"]]
    assert weight.get("events", 0) + weight.get("warning events", 0) >= len(events) > 0
    assert opened.marks("failed-checks")["failedChecks"] == len(ticks)

    calls = [w for t in ticks for w in t.get("webhooks", [])]
    if calls:
        hooks = opened.marks("webhooks")
        assert hooks.get("answered 2xx", 0) == sum(1 for c in calls if c["ok"])
        assert hooks.get("answered an error", 0) == sum(1 for c in calls if not c["ok"])
    else:
        assert opened.page.locator("#webhooks").count() == 0

    plots = metric_plots(opened)
    checked = {c["metric"] for t in ticks for c in t["checks"]}
    assert set(plots) == checked
    for metric, plot in plots.items():
        expected = Counter(
            VERDICT_NAMES[c["verdict"]] for t in ticks for c in t["checks"] if c["metric"] == metric
        )
        drawn = {k: v for k, v in opened.marks(plot).items() if k in VERDICT_NAMES.values()}
        assert drawn == dict(expected), metric


def first_failure(doc: dict[str, Any], metric: str) -> dict[str, Any]:
    return next(
        c
        for t in doc["ticks"]
        for c in t["checks"]
        if c["metric"] == metric and c["verdict"] == "fail"
    )


def test_a_rolled_back_release_shows_every_tick_and_why_each_check_failed(
    tmp_path: Path, open_report: Any
) -> None:
    code, doc, report = simulate_with_report(
        tmp_path, "webhook-server.yaml", EXAMPLES / "webhook-server-bad.json"
    )
    assert code == 1 and doc["result"] == "rolled_back"
    opened = open_report(report)
    assert_opened_cleanly(opened)
    assert "rolled back" in opened.page.locator("#verdict").inner_text()
    assert_every_tick_and_check_drawn(opened, doc)

    plots = metric_plots(opened)
    failed = first_failure(doc, "request-success-rate")
    hover = opened.hover_text(plots["request-success-rate"], "fail", 0)
    assert f"value {failed['value']:g} below min {failed['min']:g}" in hover
    failed = first_failure(doc, "request-duration")
    hover = opened.hover_text(plots["request-duration"], "fail", 0)
    assert f"value {failed['value']:g} above max {failed['max']:g}" in hover
    # Every time plot puts minute 0 at the same place on the page, the webhooks' with its
    # names too (its left margin was sized to fit them, shifting its time axis right).
    lefts = opened.page.evaluate(
        """() => [...document.querySelectorAll('.plotly-graph-div')].map((d) =>
            d.getBoundingClientRect().left + d._fullLayout.xaxis.l2p(0) + d._fullLayout.margin.l)"""
    )
    assert len(lefts) >= 4 and max(lefts) - min(lefts) < 1, lefts
    opened.screenshot("report-webhook-server-bad.png")


def test_a_judged_release_shows_the_judges_explanation_on_hover(
    tmp_path: Path, open_report: Any
) -> None:
    code, doc, report = simulate_with_report(
        tmp_path,
        "webhook-server-judged.yaml",
        EXAMPLES / "webhook-server-judged-bad.csv",
    )
    assert code == 1
    opened = open_report(report)
    assert_opened_cleanly(opened)
    assert_every_tick_and_check_drawn(opened, doc)
    failed = first_failure(doc, "request-duration")
    hover = opened.hover_text(metric_plots(opened)["request-duration"], "fail", 0)
    assert "".join(failed["explanation"].split()) in "".join(hover.split())
    opened.screenshot("report-webhook-server-judged-bad.png")


def test_a_promoted_release_with_missing_data_and_failing_webhooks_is_drawn_whole(
    tmp_path: Path, open_report: Any
) -> None:
    # A gap in the success rate (no data: a failed check) and a load test that errors once.
    rows = ["time,target,metric,value"]
    for t in range(0, 1500, 30):
        gap = 150 <= t < 270
        rows.append(f"{t},canary,request-success-rate,{'' if gap else 99.9}")
        rows.append(f"{t},primary,request-success-rate,99.95")
        rows.append(f"{t},canary,request-duration,{180 + t % 90}")
        rows.append(f"{t},canary,error-rate,0.1")
    rows += ["0,webhook,load-test,1", "100,webhook,load-test,0", "130,webhook,load-test,1"]
    recording = tmp_path / "gappy.csv"
    recording.write_text("\n".join(rows) + "\n")
    code, doc, report = simulate_with_report(tmp_path, "webhook-server.yaml", recording)
    verdicts = Counter(c["verdict"] for t in doc["ticks"] for c in t["checks"])
    assert code == 0 and verdicts["no_data"] > 0
    assert any(not w["ok"] for t in doc["ticks"] for w in t.get("webhooks", []))
    opened = open_report(report)
    assert_opened_cleanly(opened)
    assert_every_tick_and_check_drawn(opened, doc)
    hover = opened.hover_text(metric_plots(opened)["request-success-rate"], "no data", 0)
    assert "no data" in hover
    opened.screenshot("report-webhook-server-gappy.png")


def sweep_setting(ident: str, detection: float | None, false_rollbacks: float | None) -> Any:
    return {
        "id": ident,
        "setting": {"analysis.threshold": int(ident[-1]), "preset": "staging"},
        "promoted": 7,
        "rolledBack": 3,
        "undecided": 1,
        "medianDecisionSeconds": 420.0,
        "detectionRate": detection,
        "falseRollbackRate": false_rollbacks,
        "medianTimeToDetectSeconds": None if detection is None else 180.0,
        "engine": "batch",
    }


def test_the_sweep_report_plots_every_setting_on_the_trade_off(
    tmp_path: Path, open_report: Any
) -> None:
    settings = [
        sweep_setting("t1", 0.9, 0.04),
        sweep_setting("t2", 0.8, 0.01),
        sweep_setting("t3", 0.6, 0.02),  # beaten by t2 on both: off the curve
        sweep_setting("t5", 0.4, 0.0),
        sweep_setting("t7", 0.4, 0.0),  # decides as t5 does: they share a point
    ]
    path = tmp_path / "sweep.html"
    summary = {"recordings": 11, "labelled": True, "falseRollbackLimit": 0.02}
    path.write_text(render_sweep_report({**summary, "settings": settings}))
    opened = open_report(path)
    assert_opened_cleanly(opened)
    marks = opened.marks("tradeoff")
    assert marks["setting (several that decide alike share a point)"] == len(settings) - 1
    curve = opened.page.evaluate("() => document.getElementById('tradeoff').data[1].x.length")
    assert curve == 3  # t5, t2, t1: t3 is dominated
    point = "setting (several that decide alike share a point)"
    hover = opened.hover_text("tradeoff", point, 2)
    assert "t3" in hover and "analysis.threshold = 3" in hover and "60.0 %" in hover
    hover = opened.hover_text("tradeoff", point, 3)
    assert "2 settings" in hover and "t5: analysis.threshold=5" in hover and "t7:" in hover
    rows = opened.page.locator("#settings tbody tr")
    assert rows.count() == len(settings)
    assert rows.nth(0).locator("td").nth(1).inner_text() == "t1"
    opened.screenshot("report-sweep-labelled.png")


def test_an_unlabelled_sweep_report_shows_decision_counts(tmp_path: Path, open_report: Any) -> None:
    settings = [sweep_setting(f"t{i}", None, None) for i in (1, 2, 3)]
    path = tmp_path / "sweep.html"
    path.write_text(
        render_sweep_report(
            {"recordings": 11, "labelled": False, "falseRollbackLimit": None, "settings": settings}
        )
    )
    opened = open_report(path)
    assert_opened_cleanly(opened)
    assert opened.page.locator("#tradeoff").count() == 0
    marks = opened.marks("decisions")
    assert marks == {"promoted": 3, "rolled back": 3, "undecided": 3}
    hover = opened.hover_text("decisions", "rolled back", 1)
    assert "t2" in hover and "rolled back 3" in hover
    opened.screenshot("report-sweep-unlabelled.png")


def test_the_bundled_sweep_writes_a_report_with_every_setting(
    tmp_path: Path, open_report: Any
) -> None:
    """`canary-engine sweep --report` as a user runs it: the same settings as its JSON, each on
    the trade-off plot (settings that decide alike share a point) and in the table."""
    path = tmp_path / "sweep.html"
    run = subprocess.run(
        [sys.executable, "-m", "engine.cli", "sweep", "--output", "json", "--report", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    document = json.loads(run.stdout)
    opened = open_report(path)
    assert_opened_cleanly(opened)
    points = {(s["falseRollbackRate"], s["detectionRate"]) for s in document["settings"]}
    marks = opened.marks("tradeoff")
    assert marks["setting (several that decide alike share a point)"] == len(points)
    rows = opened.page.locator("#settings tbody tr")
    assert rows.count() == len(document["settings"]) == 25
    opened.screenshot("report-sweep-bundled.png")
