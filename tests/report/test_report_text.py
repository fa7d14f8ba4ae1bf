"""User-provided names drawn by plotly (axis titles, hover labels, category labels): a quote shows
as a quote, not as ``&quot;``, and markup stays text (no tag runs, no script, no image loads).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.cli.report_page import plot_text

pytestmark = pytest.mark.browser

QUOTED = "a\"b'<img src=x onerror=alert(2)>"
SCRIPT = "<script>alert(1)</script>"


def test_plot_text_escapes_markup_but_not_quotes() -> None:
    assert plot_text(QUOTED) == "a\"b'&lt;img src=x onerror=alert(2)&gt;"
    assert plot_text(SCRIPT) == "&lt;script&gt;alert(1)&lt;/script&gt;"


def hostile_report(tmp_path: Path) -> Path:
    """A simulate report of a Canary whose metric and webhook names carry quotes and markup."""
    names = [QUOTED, SCRIPT]
    quoted = ["'" + n.replace("'", "''") + "'" for n in names]  # YAML single-quoted
    metrics = "".join(
        f"      - {{name: {n}, query: up, thresholdRange: {{max: 5}}}}\n" for n in quoted
    )
    canary = tmp_path / "canary.yaml"
    canary.write_text(
        "apiVersion: flagger.app/v1beta1\nkind: Canary\n"
        "metadata: {name: web, namespace: staging}\n"
        "spec:\n  provider: kubernetes\n"
        "  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n"
        "  service: {port: 80}\n  analysis:\n    interval: 1m\n    threshold: 2\n"
        "    maxWeight: 30\n    stepWeight: 10\n    metrics:\n" + metrics + "    webhooks:\n"
        "      - {name: 'say \"hi\" <b>bold</b>', url: 'http://hook.invalid/', timeout: 5s}\n"
    )

    def csv_name(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    rows = ["time,target,metric,value"]
    for t in range(0, 600, 30):
        for n in names:
            value = 9 if t >= 210 else 1  # fails from 4:00: the hovers give reasons
            rows.append(f"{t},canary,{csv_name(n)},{value}")
            rows.append(f"{t},primary,{csv_name(n)},1")
    recording = tmp_path / "rec.csv"
    recording.write_text("\n".join(rows) + "\n")
    report = tmp_path / "report.html"
    command = [sys.executable, "-m", "engine.cli", "simulate", "--canary", str(canary)]
    command += ["--recording", str(recording), "--report", str(report)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert f"report written to {report}" in done.stderr, done.stderr
    return report


def test_quotes_show_as_quotes_and_markup_stays_text(tmp_path: Path, open_report: Any) -> None:
    report = hostile_report(tmp_path)
    opened = open_report(report)
    dialogs: list[str] = []
    opened.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    assert opened.console_errors == []
    assert opened.requests == [opened.url]  # the <img src=x> never loaded
    titles: list[str] = opened.page.evaluate(
        "() => [...document.querySelectorAll('.ytitle')].map((t) => t.textContent)"
    )
    assert QUOTED in titles and SCRIPT in titles  # as written: a quote, not &quot;
    assert not any("&quot;" in t or "&#" in t for t in titles)
    hooks: list[str] = opened.page.evaluate(
        """() => [...document.querySelectorAll('#webhooks .ytick text')]
            .map((t) => t.textContent)"""
    )
    assert 'say "hi" <b>bold</b> (rollout)' in hooks
    # nothing the names carried became an element, and no script ran
    assert opened.page.evaluate("() => document.querySelectorAll('img, b').length") == 0
    scripts: list[str] = opened.page.evaluate(
        "() => [...document.scripts].map((s) => s.textContent.slice(0, 40))"
    )
    assert not any("alert" in s for s in scripts)
    plots = dict(
        opened.page.evaluate(
            """() => [...document.querySelectorAll('h3')].map((h) => [h.textContent,
                h.nextElementSibling.querySelector('.plotly-graph-div').id])"""
        )
    )
    hover = opened.hover_text(plots[QUOTED], "fail", 0)
    assert "above max 5" in hover
    assert dialogs == []
    opened.screenshot("report-hostile-names.png")
