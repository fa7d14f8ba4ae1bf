"""The HTML report of a what-if sweep: which settings catch bad releases without rolling back good
ones (issue 8, item 4).

``render_sweep_report(summary)`` takes the sweep's ``--output json`` document (``SweepSummary``)
and returns one self-contained page (engine.cli.report_page) with

* for labelled recordings, the **trade-off plot**: every setting as a point at (false-rollback
  rate, detection rate), the settings no other beats on both (the trade-off curve) joined by a
  line, and the false-rollback limit as a vertical line; hovering a point shows its setting;
* without labels (detection fields are None), **decision counts** per setting instead: promoted,
  rolled back and undecided as stacked bars;
* for labelled recordings, **which setting to use**: one line under the subtitle naming the
  best setting within the false-rollback limit (the first row of the sweep's ranking, as in the
  command's table) with the bad recordings it detects and misses, its false rollbacks and its
  median time to detect; the trade-off plot marks its point;
* an **outcome table**: the best-ranked settings as rows, the recordings as columns, each cell
  R (rolled back), P (promoted) or U (undecided), a wrong outcome (a bad recording promoted, a
  good one rolled back) in bold with a cross;
* a **table** of every setting in the order the sweep ranked them.

A malformed summary raises ``ValueError`` naming the field, so a sweep bug does not produce a
misleading page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any, Literal, NotRequired, TypedDict, cast

from engine.cli.report_page import (
    escape,
    figure_div,
    hover_lines,
    page,
    plot_text,
    plotly,
    table,
)


class SweepSetting(TypedDict):
    id: str
    setting: dict[str, Any]
    promoted: int
    rolledBack: int
    undecided: int
    medianDecisionSeconds: float | None
    detectionRate: float | None
    falseRollbackRate: float | None
    medianTimeToDetectSeconds: float | None
    engine: Literal["batch", "full"]
    #: Each recording's outcome, in ``recordingNames`` order.
    results: NotRequired[list[Literal["promoted", "rolled_back", "undecided"]]]


class SweepSummary(TypedDict):
    recordings: int
    labelled: bool
    falseRollbackLimit: float | None
    settings: list[SweepSetting]
    title: NotRequired[str]
    recordingNames: NotRequired[list[str]]
    recordingLabels: NotRequired[list[Literal["good", "bad"] | None]]


_COUNT_KEYS = ("promoted", "rolledBack", "undecided")
_RESULTS = ("promoted", "rolled_back", "undecided")
#: Settings (by rank) that get a row of the outcome table.
OUTCOME_ROWS = 25
_RATE_KEYS = (
    "medianDecisionSeconds",
    "detectionRate",
    "falseRollbackRate",
    "medianTimeToDetectSeconds",
)


def validate_summary(summary: Mapping[str, Any]) -> SweepSummary:
    """The summary, checked field by field; ValueError names the first bad field."""
    if not isinstance(summary, Mapping):
        raise ValueError(f"sweep summary: expected an object, got {type(summary).__name__}")
    for key, kind in (("recordings", int), ("labelled", bool), ("settings", list)):
        if not isinstance(summary.get(key), kind):
            raise ValueError(
                f"sweep summary field {key!r}: expected {kind.__name__}, got {summary.get(key)!r}"
            )
    limit = summary.get("falseRollbackLimit")
    if limit is not None and not _is_number(limit):
        raise ValueError(
            f"sweep summary field 'falseRollbackLimit': expected a number or null, got {limit!r}"
        )
    for i, setting in enumerate(summary["settings"]):
        where = f"sweep summary field 'settings[{i}]"
        if not isinstance(setting, Mapping):
            raise ValueError(f"{where}': expected an object, got {setting!r}")
        if not isinstance(setting.get("id"), str):
            raise ValueError(f"{where}.id': expected a string, got {setting.get('id')!r}")
        if not isinstance(setting.get("setting"), Mapping):
            raise ValueError(f"{where}.setting': expected an object of dotted keys")
        for key in _COUNT_KEYS:
            value = setting.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{where}.{key}': expected a count >= 0, got {value!r}")
        for key in _RATE_KEYS:
            value = setting.get(key)
            if value is not None and not _is_number(value):
                raise ValueError(f"{where}.{key}': expected a number or null, got {value!r}")
        if setting.get("engine") not in ("batch", "full"):
            raise ValueError(
                f"{where}.engine': expected 'batch' or 'full', got {setting.get('engine')!r}"
            )
        _check_list(setting, "results", summary["recordings"], _RESULTS, f"settings[{i}].results")
    count = summary["recordings"]
    _check_list(summary, "recordingNames", count, None, "recordingNames")
    _check_list(summary, "recordingLabels", count, ("good", "bad", None), "recordingLabels")
    return cast(SweepSummary, summary)


def _check_list(
    parent: Mapping[str, Any],
    key: str,
    length: int,
    allowed: Sequence[str | None] | None,
    name: str,
) -> None:
    """An optional per-recording list: ``length`` items, each one of ``allowed`` (any string
    when None); ValueError names the field."""
    if key not in parent:
        return
    value = parent[key]
    if not isinstance(value, list) or len(value) != length:
        raise ValueError(f"sweep summary field '{name}': expected a list of {length} items")
    for item in value:
        if not isinstance(item, str) if allowed is None else item not in allowed:
            raise ValueError(f"sweep summary field '{name}': unexpected item {item!r}")


def _is_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _pct(rate: float | None) -> str:
    return "–" if rate is None else f"{100 * rate:.1f} %"


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:g} s"


def _setting_text(setting: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in setting.items()) or "(the Canary as written)"


def plotted(setting: SweepSetting) -> bool:
    """Whether a setting has a point on the trade-off plot (both rates known)."""
    return setting["detectionRate"] is not None and setting["falseRollbackRate"] is not None


def tradeoff_curve(settings: Sequence[SweepSetting]) -> list[SweepSetting]:
    """The settings no other setting beats on both rates (at most as many false rollbacks and at
    least as much detection, better on one), by false-rollback rate."""
    points = sorted(
        (s for s in settings if plotted(s)),
        key=lambda s: (s["falseRollbackRate"], -(s["detectionRate"] or 0.0)),
    )
    curve: list[SweepSetting] = []
    best = -1.0
    for s in points:
        detection = s["detectionRate"] or 0.0
        if detection > best:
            curve.append(s)
            best = detection
    return curve


def render_sweep_report(summary: Mapping[str, Any]) -> str:
    """The sweep's report as a complete HTML document (see the module docstring)."""
    checked = validate_summary(summary)
    settings = checked["settings"]
    limit = checked["falseRollbackLimit"]
    title = checked.get("title") or "canary-engine what-if sweep"
    body = [
        f"<h1>{escape(title)}</h1>",
        "<p class='sub'>"
        + escape(
            f"{_count(len(settings), 'setting')} × {_count(checked['recordings'], 'recording')}"
            + (" (labelled good / bad)" if checked["labelled"] else " (not labelled)")
            + (f" · false-rollback limit {_pct(limit)}" if limit is not None else "")
        )
        + "</p>",
    ]
    best = best_setting(checked)
    if checked["labelled"] and settings:
        body.append(f"<p class='best' id='best'>{escape(best_line(checked, best))}</p>")
    if any(plotted(s) for s in settings):
        body.append("<h2>Detection against false rollbacks</h2>")
        body.append(figure_div(_tradeoff_figure(settings, limit, best), "tradeoff", height=460))
    else:
        if checked["labelled"]:
            body.append(
                "<p class='note'>No setting has both a detection rate and a false-rollback "
                "rate (the labelled recordings need good and bad ones): decision counts "
                "instead.</p>"
            )
        body.append("<h2>Decisions per setting</h2>")
        body.append(
            figure_div(_counts_figure(settings), "decisions", height=_counts_height(settings))
        )
    outcomes = _outcome_table(checked)
    if outcomes:
        body.append("<h2>Outcome per recording</h2>")
        body.extend(outcomes)
    body.append("<h2>Settings</h2>")
    body.append(_settings_table(settings, limit))
    return page(title, body)


def best_setting(summary: SweepSummary) -> SweepSetting | None:
    """The setting to use: the sweep's first-ranked setting (the command's first row) when it
    stays within the false-rollback limit; None without labels or when none does."""
    settings, limit = summary["settings"], summary["falseRollbackLimit"]
    if not summary["labelled"] or not settings:
        return None
    first = settings[0]
    within = limit is None or (first["falseRollbackRate"] or 0.0) <= limit
    return first if within else None


def short_names(summary: SweepSummary) -> list[str]:
    """The recordings by file name ("crash.csv"), by their whole name where two share one."""
    names = summary.get("recordingNames") or [
        f"recording {i + 1}" for i in range(summary["recordings"])
    ]
    short = [PurePath(n).name or n for n in names]
    return [s if short.count(s) == 1 else n for s, n in zip(short, names, strict=True)]


def _labels(summary: SweepSummary) -> list[str | None]:
    return list(summary.get("recordingLabels") or [None] * summary["recordings"])


def _tally(summary: SweepSummary, setting: SweepSetting, label: str) -> tuple[int, int, list[str]]:
    """(recordings labelled ``label``, of those rolled back, the names of the others)."""
    names = short_names(summary)
    results = setting.get("results") or []
    pairs = [
        (n, r) for n, r, lab in zip(names, results, _labels(summary), strict=False) if lab == label
    ]
    others = [f"{n} (undecided)" if r == "undecided" else n for n, r in pairs if r != "rolled_back"]
    return len(pairs), len(pairs) - len(others), others


def best_line(summary: SweepSummary, best: SweepSetting | None) -> str:
    """One sentence naming the setting to use, with its detection k/n (and the bad recordings
    it misses), false rollbacks k/n and median time to detect."""
    limit = summary["falseRollbackLimit"]
    limit_text = f"the {_pct(limit)} false-rollback limit" if limit is not None else "no limit"
    if best is None:
        return (
            f"No setting stays within {limit_text}: every one rolls back too many good "
            "recordings (the table ranks them by false rollbacks)."
        )
    ttd = _seconds(best["medianTimeToDetectSeconds"])
    head = f"Best within {limit_text}: {best['id']} ({_setting_text(best['setting'])})"
    if "results" not in best or "recordingLabels" not in summary:
        return (
            f"{head}: detects {_pct(best['detectionRate'])} of bad recordings, false rollbacks "
            f"{_pct(best['falseRollbackRate'])}, median time to detect {ttd}."
        )
    bad, detected, missed = _tally(summary, best, "bad")
    good, rolled_back, _ = _tally(summary, best, "good")
    misses = f" (misses {', '.join(missed)})" if missed else ""
    parts = [
        f"detects {detected}/{bad} bad recordings{misses}" if bad else "no bad recording to detect",
        f"false rollbacks {rolled_back}/{good} good" if good else "no good recording",
    ]
    if best["medianTimeToDetectSeconds"] is not None:
        parts.append(f"median time to detect {ttd}")
    return f"{head}: {'; '.join(parts)}."


def write_sweep_report(summary: Mapping[str, Any], path: str | Path) -> None:
    Path(path).write_text(render_sweep_report(summary), encoding="utf-8", errors="replace")


def _hover(setting: SweepSetting) -> str:
    return hover_lines(
        [
            setting["id"],
            *(f"{k} = {v}" for k, v in setting["setting"].items()),
            f"detection {_pct(setting['detectionRate'])} · false rollbacks "
            f"{_pct(setting['falseRollbackRate'])}",
            f"median time to detect {_seconds(setting['medianTimeToDetectSeconds'])}",
            f"promoted {setting['promoted']} · rolled back {setting['rolledBack']} · "
            f"undecided {setting['undecided']}",
            f"engine: {setting['engine']}",
        ]
    )


#: Settings listed in the hover of one point before "... and N more".
HOVER_SETTINGS = 8


def group_points(settings: Sequence[SweepSetting]) -> list[list[SweepSetting]]:
    """Settings with both rates, grouped by where they fall on the plot: settings that decide
    alike share a point (one mark, whose hover lists them all), in the sweep's order."""
    groups: dict[tuple[float, float], list[SweepSetting]] = {}
    for s in settings:
        if plotted(s):
            key = (round(s["falseRollbackRate"] or 0.0, 9), round(s["detectionRate"] or 0.0, 9))
            groups.setdefault(key, []).append(s)
    return list(groups.values())


def _group_hover(group: Sequence[SweepSetting]) -> str:
    if len(group) == 1:
        return _hover(group[0])
    first = group[0]
    lines = [
        f"{len(group)} settings: detection {_pct(first['detectionRate'])} · false rollbacks "
        f"{_pct(first['falseRollbackRate'])}",
        *(
            f"{s['id']}: {_setting_text(s['setting'])} (time to detect "
            f"{_seconds(s['medianTimeToDetectSeconds'])})"
            for s in group[:HOVER_SETTINGS]
        ),
    ]
    if len(group) > HOVER_SETTINGS:
        lines.append(f"... and {len(group) - HOVER_SETTINGS} more (see the table)")
    return hover_lines(lines)


def _tradeoff_figure(
    settings: Sequence[SweepSetting], limit: float | None, best: SweepSetting | None
) -> Any:
    go, _ = plotly()
    fig = go.Figure()
    groups = group_points(settings)
    rates = [(g[0]["falseRollbackRate"] or 0.0, g[0]["detectionRate"] or 0.0) for g in groups]
    within = [limit is None or x <= limit for x, _ in rates]
    fig.add_trace(
        go.Scatter(
            x=[100 * x for x, _ in rates],
            y=[100 * y for _, y in rates],
            name="setting (several that decide alike share a point)",
            mode="markers+text",
            text=[f"×{len(g)}" if len(g) > 1 else "" for g in groups],
            textposition="middle right",
            marker={
                "size": [10 + 2 * min(len(g) - 1, 8) for g in groups],
                "color": ["#2b6cb0" if ok else "#a0aec0" for ok in within],
                "line": {"width": 1, "color": "#1a202c"},
            },
            hovertext=[_group_hover(g) for g in groups],
            hoverinfo="text",
        )
    )
    curve = tradeoff_curve(settings)
    fig.add_trace(
        go.Scatter(
            x=[100 * (s["falseRollbackRate"] or 0.0) for s in curve],
            y=[100 * (s["detectionRate"] or 0.0) for s in curve],
            name="trade-off curve",  # short: a longer name ran off a phone's screen
            mode="lines+markers",  # one point alone draws no line: its marker still shows
            marker={"size": 6, "color": "#2f855a"},
            line={"shape": "hv", "color": "#2f855a", "width": 2},
            hoverinfo="skip",
        )
    )
    if best is not None and plotted(best):
        x, y = 100 * (best["falseRollbackRate"] or 0.0), 100 * (best["detectionRate"] or 0.0)
        fig.add_trace(
            go.Scatter(
                x=[x],
                y=[y],
                name=plot_text(f"best within the limit: {best['id']}"),
                mode="markers+text",
                text=[plot_text(f"best: {best['id']}")],
                textposition="top right",
                marker={"size": 20, "symbol": "star", "color": "#dd6b20"},
                hovertext=[_hover(best)],
                hoverinfo="text",
            )
        )
    if limit is not None:
        fig.add_vline(
            x=100 * limit,
            line={"dash": "dash", "color": "#c53030", "width": 2},
            layer="below",  # under the points it would hide (the best sit on it at 0 %)
            annotation_text=f"false-rollback limit {_pct(limit)}",
            annotation_position="top right",
        )
    widest = max((100 * x for x, _ in rates), default=0.0)
    if limit is not None:
        widest = max(widest, 100 * limit)
    margin = max(widest * 0.05, 0.5)  # points at 0 % stay whole, not cut by the axis
    fig.update_layout(
        xaxis={
            "title": {"text": "false rollbacks of good releases (%)"},
            "range": [-margin, widest + margin],
        },
        yaxis={"title": {"text": "bad releases rolled back (%)"}, "range": [-3, 103]},
    )
    return fig


#: Decision bars: colour and fill pattern. Okabe-Ito's blue and vermilion and a grey, which
#: colour-blind readers tell apart (red against green they could not), and a pattern besides.
DECISION_STYLE: dict[str, tuple[str, str]] = {
    "promoted": ("#0072b2", ""),
    "rolled back": ("#d55e00", "/"),
    "undecided": ("#6b6b6b", "."),
}


def _counts_height(settings: Sequence[SweepSetting]) -> int:
    return 160 + 28 * max(len(settings), 1)


def _counts_figure(settings: Sequence[SweepSetting]) -> Any:
    go, _ = plotly()
    fig = go.Figure()
    ids = [plot_text(s["id"]) for s in settings]  # category labels: plotly reads tags in them
    for key, name in (
        ("promoted", "promoted"),
        ("rolledBack", "rolled back"),
        ("undecided", "undecided"),
    ):
        colour, pattern = DECISION_STYLE[name]
        counts = [s[key] for s in settings]  # type: ignore[literal-required]
        fig.add_trace(
            go.Bar(
                y=ids,
                x=counts,
                name=name,
                orientation="h",
                # the count as text and a pattern, so the bars read without telling colours apart
                text=[str(c) if c else "" for c in counts],
                textposition="inside",
                insidetextanchor="middle",
                marker={"color": colour, "pattern": {"shape": pattern, "fgcolor": "#ffffff"}},
                hovertext=[_hover(s) for s in settings],
                hoverinfo="text",
            )
        )
    fig.update_layout(
        barmode="stack",
        xaxis={"title": {"text": "recordings"}},
        yaxis={"type": "category", "autorange": "reversed", "automargin": True},
    )
    return fig


def _settings_table(settings: Sequence[SweepSetting], limit: float | None) -> str:
    headers = [
        "#",
        "id",
        "setting",
        "detection",
        "false rollbacks",
        "median time to detect",
        "promoted",
        "rolled back",
        "undecided",
        "median time to decision",
        "engine",
    ]
    rows = []
    for rank, s in enumerate(settings, 1):
        over = (
            limit is not None
            and s["falseRollbackRate"] is not None
            and s["falseRollbackRate"] > limit
        )
        rows.append(
            (
                [
                    str(rank),
                    s["id"],
                    _setting_text(s["setting"]),
                    _pct(s["detectionRate"]),
                    _pct(s["falseRollbackRate"]) + (" (over limit)" if over else ""),
                    _seconds(s["medianTimeToDetectSeconds"]),
                    str(s["promoted"]),
                    str(s["rolledBack"]),
                    str(s["undecided"]),
                    _seconds(s["medianDecisionSeconds"]),
                    s["engine"],
                ],
                "over-limit" if over else "",
            )
        )
    return table(headers, rows, numeric={0, 3, 4, 5, 6, 7, 8, 9}, table_id="settings")


def _outcome_cell(result: str, label: str | None) -> tuple[str, str]:
    letter = {"promoted": "P", "rolled_back": "R", "undecided": "U"}[result]
    wrong = (label == "bad" and result == "promoted") or (
        label == "good" and result == "rolled_back"
    )
    return (f"✗ {letter}", "outcome wrong") if wrong else (letter, "outcome")


def _outcome_table(summary: SweepSummary) -> list[str]:
    """The outcome table's HTML fragments (key, table, note), or none when the summary has no
    per-recording results."""
    settings = summary["settings"]
    if not settings or any("results" not in s for s in settings):
        return []
    labels = _labels(summary)
    headers = ["#", "id"] + [
        f"{name} ({label})" if label else name
        for name, label in zip(short_names(summary), labels, strict=True)
    ]
    shown = settings[:OUTCOME_ROWS]
    rows = [
        (
            [str(rank), s["id"]]
            + [_outcome_cell(r, lab) for r, lab in zip(s.get("results", []), labels, strict=True)],
            "",
        )
        for rank, s in enumerate(shown, 1)
    ]
    key = "R rolled back · P promoted · U undecided"
    if any(labels):
        key += " · ✗ in bold: a wrong outcome (a bad recording promoted or a good one rolled back)"
    out = [
        f"<p class='note'>{escape(key)}</p>",
        table(headers, rows, numeric={0}, table_id="outcomes"),
    ]
    if len(settings) > len(shown):
        note = (
            f"The first {len(shown)} of {len(settings)} settings by rank; every setting is in "
            "the table below and in sweep --output json."
        )
        out.append(f"<p class='note'>{escape(note)}</p>")
    return out
