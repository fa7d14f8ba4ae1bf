"""The sweep report answers "which setting should we use?": the best-setting line under the
subtitle, its mark on the trade-off plot, and the outcome table (settings by recordings, wrong
outcomes marked by more than colour). Every number is checked against ``sweep --output json``.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from engine.cli import main
from engine.cli.report_sweep import OUTCOME_ROWS, render_sweep_report


def text_of(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def best_line(page: str) -> str:
    found = re.search(r"<p class='best' id='best'>(.*?)</p>", page, re.S)
    assert found, "no best-setting line"
    return text_of(found.group(1))


def outcome_rows(page: str) -> list[list[tuple[str, str]]]:
    """The outcome table's body: per row, (cell text, cell class) for every cell."""
    table = page.split('<table id="outcomes">', 1)[1].split("</table>", 1)[0]
    body = table.split("<tbody>", 1)[1]
    return [
        [
            (text_of(text), css)
            for css, text in re.findall(r'<td(?: class="([^"]*)")?>(.*?)</td>', tr)
        ]
        for tr in re.findall(r"<tr>(.*?)</tr>", body)
    ]


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """The bundled sweep as a user runs it: its JSON and its report."""
    report = tmp_path_factory.mktemp("sweep") / "sweep.html"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["sweep", "--output", "json", "--report", str(report)]) == 0
    return json.loads(out.getvalue()), report.read_text()


def test_the_best_setting_is_named_with_what_it_misses(bundled: tuple[dict[str, Any], str]) -> None:
    doc, page = bundled
    first = doc["settings"][0]  # the command's first row
    assert first["id"] == "s7" and first["falseRollbackRate"] <= doc["falseRollbackLimit"]
    labels, results = doc["recordingLabels"], first["results"]
    names = [Path(n).name for n in doc["recordingNames"]]
    bad = [n for n, label in zip(names, labels, strict=True) if label == "bad"]
    missed = [
        n
        for n, label, r in zip(names, labels, results, strict=True)
        if label == "bad" and r != "rolled_back"
    ]
    good = labels.count("good")
    assert len(bad) - len(missed) == round(first["detectionRate"] * len(bad))
    assert best_line(page) == (
        "Best within the 0.0 % false-rollback limit: s7 (analysis.threshold=2, "
        "metrics[request-success-rate].thresholdRange.min=95, analysis.stepWeight=5): "
        f"detects {len(bad) - len(missed)}/{len(bad)} bad recordings "
        f"(misses {', '.join(missed)}); false rollbacks 0/{good} good; "
        f"median time to detect {first['medianTimeToDetectSeconds']:g} s."
    )
    assert missed == ["crash.csv", "small-loss.csv"]
    # its point is marked on the trade-off plot
    assert '"name":"best within the limit: s7"' in page
    assert page.index("id='best'") < page.index('id="tradeoff"')


def test_the_outcome_table_shows_every_recordings_outcome(
    bundled: tuple[dict[str, Any], str],
) -> None:
    doc, page = bundled
    rows = outcome_rows(page)
    assert len(rows) == min(len(doc["settings"]), OUTCOME_ROWS) == 25
    letters = {"promoted": "P", "rolled_back": "R", "undecided": "U"}
    for rank, (row, setting) in enumerate(zip(rows, doc["settings"], strict=False), 1):
        assert row[0][0] == str(rank) and row[1][0] == setting["id"]
        for (text, css), result, label in zip(
            row[2:], setting["results"], doc["recordingLabels"], strict=True
        ):
            wrong = (label, result) in (("bad", "promoted"), ("good", "rolled_back"))
            # a wrong outcome is marked in words and weight, not by colour alone
            assert text == ("✗ " if wrong else "") + letters[result]
            assert ("wrong" in css.split()) is wrong
    header = page.split('<table id="outcomes">', 1)[1].split("</thead>", 1)[0]
    assert "crash.csv (bad)" in text_of(header) and "steady.csv (good)" in text_of(header)
    assert "✗ in bold: a wrong outcome" in page


def summary_of(settings: list[dict[str, Any]], limit: float) -> dict[str, Any]:
    return {
        "recordings": 2,
        "labelled": True,
        "falseRollbackLimit": limit,
        "recordingNames": ["good/a.csv", "bad/a.csv"],
        "recordingLabels": ["good", "bad"],
        "settings": settings,
    }


def setting(ident: str, results: list[str]) -> dict[str, Any]:
    good, bad = results
    return {
        "id": ident,
        "setting": {"analysis.threshold": 2},
        "promoted": results.count("promoted"),
        "rolledBack": results.count("rolled_back"),
        "undecided": results.count("undecided"),
        "medianDecisionSeconds": 300.0,
        "detectionRate": 1.0 if bad == "rolled_back" else 0.0,
        "falseRollbackRate": 1.0 if good == "rolled_back" else 0.0,
        "medianTimeToDetectSeconds": 120.0 if bad == "rolled_back" else None,
        "engine": "batch",
        "results": results,
    }


def test_no_setting_within_the_limit_is_said_so() -> None:
    page = render_sweep_report(summary_of([setting("x1", ["rolled_back", "rolled_back"])], 0.0))
    assert best_line(page).startswith("No setting stays within the 0.0 % false-rollback limit")
    assert "best within the limit" not in page


def test_recordings_sharing_a_file_name_keep_their_whole_name() -> None:
    page = render_sweep_report(summary_of([setting("x1", ["promoted", "undecided"])], 0.0))
    assert best_line(page).endswith(
        "detects 0/1 bad recordings (misses bad/a.csv (undecided)); false rollbacks 0/1 good."
    )


def test_a_long_sweep_shows_the_first_settings_and_says_so() -> None:
    settings = [setting(f"x{i}", ["promoted", "rolled_back"]) for i in range(OUTCOME_ROWS + 5)]
    page = render_sweep_report(summary_of(settings, 0.0))
    assert len(outcome_rows(page)) == OUTCOME_ROWS
    assert f"The first {OUTCOME_ROWS} of {OUTCOME_ROWS + 5} settings by rank" in page


def test_bad_per_recording_results_name_the_field() -> None:
    broken = setting("x1", ["promoted", "rolled_back"]) | {"results": ["promoted"]}
    with pytest.raises(ValueError, match=re.escape("'settings[0].results'")):
        render_sweep_report(summary_of([broken], 0.0))


def contrast(foreground: str, background: str = "#ffffff") -> float:
    """WCAG contrast ratio of two #rrggbb colours."""

    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_settings_over_the_limit_say_so_in_words_and_stay_readable(
    bundled: tuple[dict[str, Any], str],
) -> None:
    doc, page = bundled
    table = page.split('<table id="settings">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr(?: class=\"([^\"]*)\")?>(.*?)</tr>", table.split("<tbody>", 1)[1])
    assert len(rows) == len(doc["settings"])
    for (css, row), setting in zip(rows, doc["settings"], strict=True):
        over = setting["falseRollbackRate"] > doc["falseRollbackLimit"]
        assert (css == "over-limit") is over
        assert ("(over limit)" in text_of(row)) is over, setting["id"]
    assert sum(1 for css, _ in rows if css) == 9  # s11 ... s3: 20 % or 40 % false rollbacks
    grey = re.search(r"tr\.over-limit td \{ color: (#[0-9a-f]{6}); \}", page)
    assert grey and contrast(grey.group(1)) >= 4.5


def test_decision_bars_do_not_rely_on_red_against_green() -> None:
    settings = [
        setting("x1", ["promoted", "rolled_back"]),
        setting("x2", ["undecided", "promoted"]),
    ]
    summary = summary_of(settings, 0.0) | {"labelled": False}
    for s in settings:
        s["detectionRate"] = s["falseRollbackRate"] = s["medianTimeToDetectSeconds"] = None
    page = render_sweep_report(summary)
    found = re.search(r"Plotly\.newPlot\(\s*\"decisions\",\s*(\[.*?\]),\s*\{", page, re.S)
    assert found
    figure = json.loads(found.group(1))
    styles = {t["name"]: t["marker"] for t in figure}
    assert [t["text"] for t in figure] == [["1", "1"], ["1", ""], ["", "1"]]  # counts as text
    assert {styles[n]["color"] for n in styles} == {"#0072b2", "#d55e00", "#6b6b6b"}
    assert len({styles[n]["pattern"]["shape"] for n in styles}) == 3


def tradeoff_figure(page: str) -> dict[str, Any]:
    found = re.search(
        r"Plotly\.newPlot\(\s*\"tradeoff\",\s*(\[.*?\]),\s*(\{.*?\}),\s*\{", page, re.S
    )
    assert found
    return {"data": json.loads(found.group(1)), "layout": json.loads(found.group(2))}


def test_a_sweep_of_one_setting_still_draws_its_curve_and_says_setting() -> None:
    page = render_sweep_report(summary_of([setting("x1", ["promoted", "rolled_back"])], 0.0))
    assert "1 setting × 2 recordings (labelled good / bad)" in text_of(page)
    curve = next(t for t in tradeoff_figure(page)["data"] if t["name"] == "trade-off curve")
    assert len(curve["x"]) == 1 and "markers" in curve["mode"]  # a line of one point draws nothing


def test_the_limit_line_lies_under_the_points(bundled: tuple[dict[str, Any], str]) -> None:
    _, page = bundled
    shapes = tradeoff_figure(page)["layout"]["shapes"]
    limit = [s for s in shapes if s["type"] == "line" and s["x0"] == 0.0]
    assert limit and all(s["layer"] == "below" for s in limit)
