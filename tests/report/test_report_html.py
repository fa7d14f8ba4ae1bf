"""The HTML reports without a browser: what ``simulate --report`` writes and refuses, that the page
is self-contained, that ``--report`` changes nothing else, and the sweep renderer's input checks
and trade-off curve. What the page shows in a browser is in test_report_browser.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from analysis import CheckKind, CheckResult, MetricQuery, Verdict
from engine.cli import main
from engine.cli.report_html import check_reason
from engine.cli.report_sweep import render_sweep_report, tradeoff_curve, validate_summary

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"
BAD = ["--canary", str(EXAMPLES / "webhook-server.yaml")]
BAD += ["--recording", str(EXAMPLES / "webhook-server-bad.json")]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["simulate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_report_leaves_the_json_and_the_exit_status_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = run(capsys, *BAD, "--output", "json")
    report = tmp_path / "bad.html"
    with_report = run(capsys, *BAD, "--output", "json", "--report", str(report))
    assert plain[0] == with_report[0] == 1
    assert json.loads(plain[1]) == json.loads(with_report[1])
    assert with_report[2].strip().endswith(f"report written to {report}")
    assert report.stat().st_size > 1_000_000  # plotly.js is inside


def test_the_timeline_still_prints_with_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, *BAD, "--report", str(tmp_path / "r.html"))
    assert code == 1 and "result: ROLLED BACK" in out


def test_the_report_is_one_self_contained_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "bad.html"
    run(capsys, *BAD, "--report", str(report))
    page = report.read_text()
    # nothing is loaded from anywhere: no external script, style sheet, image or frame ...
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", page, re.I)
    # ... and the browser is told to refuse any request the page might still try
    assert "Content-Security-Policy" in page and "connect-src 'none'" in page
    assert "Plotly.newPlot" in page and page.count("<script>") >= 2
    # what a reader searches for is in the page as text
    assert "Halt webhook-server.staging advancement success rate 91.07% &lt; 95%" in page


def test_operator_commands_and_a_paused_run_are_marked_on_the_traffic_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = ["--canary", str(EXAMPLES / "webhook-server.yaml")]
    good += ["--recording", str(EXAMPLES / "webhook-server-good.csv")]
    commands = ["--command", "2m:pause", "--command", "6m:resume", "--command", "9m:promote-full"]
    report = tmp_path / "commands.html"
    code, out, _ = run(capsys, *good, *commands, "--output", "json", "--report", str(report))
    ticks = json.loads(out)["ticks"]
    sent = [t["command"] for t in ticks if t.get("command")]
    page = report.read_text()
    assert code == 0 and sent == ["pause", "resume", "promote --full"]
    assert all(f"operator command: {c}" in page for c in sent)
    # one band over the ticks the pause held, labelled
    assert page.count('"text":"paused"') == 1
    paused = [t["t"] for t in ticks if t.get("paused")]
    assert paused and min(paused) == 120


def test_a_blue_green_report_shows_its_iterations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A blue/green run's weight stays put while it counts iterations: the page says how many
    # it runs and, on each tick, how many it has counted (status.iterations, as in the JSON).
    docs = EXAMPLES / "flagger-docs"
    args = ["--canary", str(docs / "daemonset.yaml"), "--recording", str(docs / "healthy.csv")]
    report = tmp_path / "bg.html"
    code, out, _ = run(capsys, *args, "--output", "json", "--report", str(report))
    counted = {t["iterations"] for t in json.loads(out)["ticks"]} - {0}
    page = report.read_text()
    assert code == 0 and "<td>iterations</td><td>3</td>" in page
    assert counted and all(f"status.iterations {n}" in page for n in counted)


@pytest.mark.parametrize(
    ("where", "why"),
    [("missing-dir/report.html", "does not exist; create it first"), (".", "is a directory")],
)
def test_an_unwritable_report_path_is_bad_input_before_simulating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str, why: str
) -> None:
    code, out, err = run(capsys, *BAD, "--report", str(tmp_path / where))
    assert code == 2 and out == ""
    assert err.startswith("--report: ") and why in err and "Traceback" not in err


def test_html_in_names_is_shown_as_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    canary = (EXAMPLES / "webhook-server.yaml").read_text()
    canary = canary.replace("name: load-test", "name: <img src=x onerror=alert(1)>")
    path = tmp_path / "canary.yaml"
    path.write_text(canary)
    report = tmp_path / "r.html"
    code, _, err = run(
        capsys,
        "--canary",
        str(path),
        "--recording",
        str(EXAMPLES / "webhook-server-good.csv"),
        "--report",
        str(report),
    )
    assert code == 0, err
    page = report.read_text()
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_a_report_draws_at_most_fifty_metric_charts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 10,000 metrics made an 88 MB page of 10,000 charts; 2,000 took Chromium four minutes
    metrics = "".join(
        f"      - {{name: m{i}, query: up, thresholdRange: {{min: 0}}}}\n" for i in range(60)
    )
    path = tmp_path / "canary.yaml"
    path.write_text(
        "apiVersion: flagger.app/v1beta1\nkind: Canary\n"
        "metadata: {name: webhook-server, namespace: staging}\n"
        "spec:\n  provider: kubernetes\n"
        "  targetRef: {apiVersion: apps/v1, kind: Deployment, name: webhook-server}\n"
        "  service: {port: 80}\n  analysis:\n    interval: 1m\n    threshold: 2\n"
        "    maxWeight: 30\n    stepWeight: 15\n    metrics:\n" + metrics
    )
    recording = tmp_path / "rec.csv"
    recording.write_text(
        "time,target,metric,value\n"
        + "".join(f"{t},canary,m{i},1\n" for t in range(0, 600, 60) for i in range(60))
    )
    report = tmp_path / "r.html"
    code, _, err = run(
        capsys, "--canary", str(path), "--recording", str(recording), "--report", str(report)
    )
    assert code == 0, err
    page = report.read_text()
    assert len(set(re.findall(r'id="(metric-[0-9]+)"', page))) == 50
    assert "10 more metrics are not drawn" in page


def test_neither_help_nor_a_plain_simulate_imports_plotly() -> None:
    probe = (
        "import contextlib, io, sys\n"
        "from engine.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(sys.argv[1:])\n"
        "print('plotly' in sys.modules, file=sys.stderr)"
    )
    for args in (["--help"], ["simulate", "--output", "json"]):
        done = subprocess.run(
            [sys.executable, "-c", probe, *args], capture_output=True, text=True, check=False
        )
        assert done.stderr.strip().splitlines()[-1] == "False", args


def check(value: float | None, verdict: Verdict, **extra: Any) -> CheckResult:
    query = MetricQuery(canary="staging/web", metric="request-duration", kind=CheckKind.DURATION)
    extra.setdefault("message", "")
    return CheckResult(query=query, value=value, verdict=verdict, **extra)


def test_a_checks_reason_says_which_bound_it_broke() -> None:
    assert check_reason(check(641, Verdict.FAIL, hi=500)) == "value 641 above max 500"
    assert check_reason(check(91.07, Verdict.FAIL, lo=95)) == "value 91.07 below min 95"
    assert check_reason(check(210, Verdict.PASS, lo=1, hi=500)) == "value 210 within [1, 500]"
    judged = check(
        332, Verdict.FAIL, explanation="canary 332 above the primary's 24h before the analysis"
    )
    assert check_reason(judged) == "canary 332 above the primary's 24h before the analysis"
    no_data = check(None, Verdict.NO_DATA, hi=500, message="no values found for metric")
    assert check_reason(no_data) == "no values found for metric"


def setting(ident: str, detection: float | None, false_rollbacks: float | None) -> Any:
    return {
        "id": ident,
        "setting": {"analysis.threshold": 2},
        "promoted": 3,
        "rolledBack": 2,
        "undecided": 0,
        "medianDecisionSeconds": 300,
        "detectionRate": detection,
        "falseRollbackRate": false_rollbacks,
        "medianTimeToDetectSeconds": 120.0,
        "engine": "full",
    }


def test_the_trade_off_curve_keeps_only_settings_nothing_beats() -> None:
    settings = [
        setting("a", 0.9, 0.05),
        setting("b", 0.7, 0.01),
        setting("c", 0.7, 0.02),  # same detection as b, more false rollbacks
        setting("d", 0.5, 0.03),  # beaten by b on both
        setting("e", 0.2, 0.0),
        setting("f", None, None),  # not plotted
    ]
    assert [s["id"] for s in tradeoff_curve(settings)] == ["e", "b", "a"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"labelled": "yes"}, "'labelled'"),
        ({"settings": [setting("a", 0.5, 0.1) | {"promoted": -1}]}, "'settings[0].promoted'"),
        ({"settings": [setting("a", 0.5, 0.1) | {"engine": "gpu"}]}, "'settings[0].engine'"),
        ({"settings": [setting("a", "high", 0.1)]}, "'settings[0].detectionRate'"),
        ({"falseRollbackLimit": float("nan")}, "'falseRollbackLimit'"),
    ],
)
def test_a_malformed_sweep_summary_names_the_field(change: dict[str, Any], field: str) -> None:
    summary = {"recordings": 2, "labelled": True, "falseRollbackLimit": 0.02, "settings": []}
    with pytest.raises(ValueError, match=re.escape(field)):
        render_sweep_report(summary | change)


def test_a_sweep_summary_from_json_is_accepted_as_is() -> None:
    summary = {
        "recordings": 4,
        "labelled": False,
        "falseRollbackLimit": None,
        "settings": [setting("a", None, None), setting("b", None, None)],
    }
    roundtrip = json.loads(json.dumps(summary))
    assert validate_summary(roundtrip) == summary
    page = render_sweep_report(roundtrip)
    assert 'id="decisions"' in page and 'id="tradeoff"' not in page
    assert "2 settings × 4 recordings (not labelled)" in page
