"""``canary-engine simulate --report FILE.html``: one simulated rollout as a page to look at.

The page (engine.cli.report_page: self-contained, opens offline) shows, top to bottom:

* the verdict and the Canary's analysis settings, with simulate's warnings;
* **why**: the deciding tick's Warning events ("Rolling back ... failed checks threshold reached
  5", "... aborted by operator") and, per metric or webhook that failed, how often, when first and
  last, and the reason of its last failure; for a promotion, one line saying so;
* **traffic weight**: the stepped canary weight (``status.canaryWeight``) on every tick, the weight
  the router really achieved where it can only approximate one, the phases as coloured bands and
  the tick's events as markers along the top (Warning events in red);
* **failed checks** on every tick against ``analysis.threshold``;
* **webhooks**: every answer a webhook gave, per webhook;
* **one plot per metric**: the canary's and the primary's recorded values over the analysis, the
  check's bounds, and every check as a mark coloured by its verdict (pass, fail, no data, error,
  inconclusive; hollow for a dry-run metric), whose hover says why: the judge's explanation, or
  "value X above max Y" for a static bound;
* every event as a table.

Time runs in minutes since the new revision was applied (simulate's time 0); every time plot has
a labelled vertical line where the run was rolled back or promoted. One mark is drawn per
tick on the weight and failed-checks plots and one per check on the metric plots, so a reader (and
tests/report/test_report_browser.py) can count them against simulate's JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis import CheckKind, CheckResult, Recording, Verdict
from config import Phase
from engine.cli.formatting import clock, number
from engine.cli.report_page import (
    escape,
    figure_div,
    hover_lines,
    page,
    plot_text,
    plotly,
    table,
)

if TYPE_CHECKING:
    from engine.cli.simulate import SimulationResult
    from engine.shell.loop import TickReport

#: How a verdict is drawn: legend name, colour, marker symbol.
VERDICT_STYLE: dict[Verdict, tuple[str, str, str]] = {
    Verdict.PASS: ("pass", "#2f855a", "circle"),
    Verdict.FAIL: ("fail", "#c53030", "x"),
    Verdict.NO_DATA: ("no data", "#718096", "square"),
    Verdict.ERROR: ("error", "#702459", "diamond"),
    Verdict.INCONCLUSIVE: ("inconclusive", "#b7791f", "triangle-up"),
}
_PHASE_COLOUR = {
    Phase.PROGRESSING: "rgba(66, 153, 225, 0.10)",
    Phase.WAITING: "rgba(236, 201, 75, 0.18)",
    Phase.WAITING_PROMOTION: "rgba(236, 201, 75, 0.18)",
    Phase.PROMOTING: "rgba(72, 187, 120, 0.15)",
    Phase.FINALISING: "rgba(72, 187, 120, 0.22)",
    Phase.SUCCEEDED: "rgba(47, 133, 90, 0.25)",
    Phase.FAILED: "rgba(197, 48, 48, 0.18)",
}
_OTHER_PHASE = "rgba(160, 174, 192, 0.12)"
#: Recorded samples shown before time 0 (in analysis intervals): enough to see the primary's
#: level before the rollout without squeezing the analysis into a corner of a day of history.
_HISTORY_INTERVALS = 5
_UNITS = {CheckKind.SUCCESS_RATE: "%", CheckKind.DURATION: "ms"}
#: Where the event markers sit on the weight plot (above 100 %).
_EVENT_ROW = 110.0


def minutes(t: float) -> float:
    return t / 60.0


def check_reason(check: CheckResult) -> str:
    """Why a check has its verdict, in one sentence: the judge's explanation, else the value
    against the static bound ("value 91.07 below min 95"), else Flagger's message."""
    if check.explanation:
        return check.explanation
    lo, hi = check.lo, check.hi
    if check.verdict in (Verdict.PASS, Verdict.FAIL) and check.value is not None:
        value = number(check.value)
        if lo is not None and check.value < lo:
            return f"value {value} below min {lo:g}"
        if hi is not None and check.value > hi:
            return f"value {value} above max {hi:g}"
        if check.verdict is Verdict.PASS:
            return f"value {value} within {_bounds_text(lo, hi)}"
    return check.message or VERDICT_STYLE[check.verdict][0]


def _bounds_text(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"[{lo:g}, {hi:g}]"
    if lo is not None:
        return f"min {lo:g}"
    if hi is not None:
        return f"max {hi:g}"
    return "no bound"


@dataclass(frozen=True, slots=True)
class _MetricChecks:
    name: str
    kind: CheckKind
    checks: list[tuple[float, CheckResult]]


def time_range(ticks: Sequence[TickReport]) -> list[float]:
    """The x range (minutes) every time plot shares, so they line up on the page: the ticks, with
    half an interval of margin. History before the first tick stays reachable by panning."""
    if not ticks:
        return [0.0, 1.0]
    margin = ticks[-1].interval / 2
    return [minutes(min(0.0, ticks[0].t) - margin), minutes(ticks[-1].t + margin)]


#: Metrics drawn one chart each; more would make a page no browser opens in reasonable time (2,000
#: charts took Chromium four minutes).
MAX_METRIC_FIGURES = 50


def render_simulation_report(
    result: SimulationResult, recording: Recording, *, preface: Sequence[str] = ()
) -> str:
    """The report of one simulation as a complete HTML document; ``preface`` (HTML fragments,
    escaped by the caller) goes between the header and the plots (``report`` puts what the
    cluster says there)."""
    ticks = result.ticks
    interval = ticks[0].interval if ticks else 60.0
    body = [_header(result, recording), _why(result), *preface]
    body.append("<h2>Traffic weight</h2>")
    fig = _mark_decision(_weight_figure(ticks), result)
    body.append(figure_div(fig, "weight", height=380))
    body.append("<h2>Failed checks</h2>")
    fig = _mark_decision(_failed_figure(result), result)
    body.append(figure_div(fig, "failed-checks", height=260))
    body.append("<h2>Webhooks</h2>")
    calls = sum(len(t.hook_calls) for t in ticks)
    if calls:
        fig = _mark_decision(_webhook_figure(ticks), result)
        body.append(figure_div(fig, "webhooks", height=_webhook_height(ticks)))
    else:
        body.append("<p class='note'>No webhook was called.</p>")
    body.append("<h2>Metrics</h2>")
    metrics = _metric_checks(result)
    if not metrics:
        body.append("<p class='note'>No metric was checked.</p>")
    for index, metric in enumerate(metrics[:MAX_METRIC_FIGURES]):
        body.append(f"<h3>{escape(metric.name)}</h3>")
        fig = _mark_decision(_metric_figure(metric, recording, ticks, interval), result)
        body.append(figure_div(fig, f"metric-{index}", height=340))
    if len(metrics) > MAX_METRIC_FIGURES:
        rest = len(metrics) - MAX_METRIC_FIGURES
        body.append(
            f"<p class='note'>{rest} more metrics are not drawn (a page of thousands of charts "
            "does not open): every check is in simulate's timeline and JSON.</p>"
        )
    body.append("<h2>Events</h2>")
    body.append(_events_table(ticks))
    return page(f"canary-engine: {result.canary} {result.result.replace('_', ' ')}", body)


def write_simulation_report(
    result: SimulationResult,
    recording: Recording,
    path: str | Path,
    *,
    preface: Sequence[str] = (),
) -> None:
    # errors="replace": a recording's file name need not be UTF-8 (the header quotes it)
    Path(path).write_text(
        render_simulation_report(result, recording, preface=preface),
        encoding="utf-8",
        errors="replace",
    )


# ---------------------------------------------------------------------------------------------
# Header and tables
# ---------------------------------------------------------------------------------------------


def _header(result: SimulationResult, recording: Recording) -> str:
    verdict = result.result.replace("_", " ")
    when = f" at {clock(result.decided_at)}" if result.decided_at is not None else ""
    if result.result == "undecided":
        when = f" (stopped by {result.stopped_by})" if result.stopped_by else " (recording ended)"
    parts = [
        f"<h1>{escape(result.canary)} <span class='badge {result.result}' id='verdict'>"
        f"{escape(verdict)}</span></h1>",
        f"<p class='sub'>{escape(f'{verdict}{when} · exit status {result.exit_code}')}"
        f"{' · recording ' + escape(recording.source) if recording.source else ''}</p>",
    ]
    spec = result.canary_spec
    if spec is not None:
        a = spec.spec.effective_analysis
        settings = [
            ("strategy", a.strategy.value),
            ("interval", f"{a.interval_seconds:g}s"),
            ("threshold (failed checks)", str(a.failed_checks_threshold)),
            # iterations: blue/green and A/B runs count them; their weight stays put
            *([("iterations", str(a.iterations))] if a.iterations is not None else []),
            ("max weight", str(a.effective_max_weight)),
            ("metrics", ", ".join(m.name for m in a.metrics) or "none"),
            ("webhooks", ", ".join(w.name for w in a.webhooks) or "none"),
        ]
        parts.append(table(["setting", "value"], [(row, "") for row in settings], numeric=set()))
    parts.extend(f"<div class='warning'>warning: {escape(w)}</div>" for w in result.warnings)
    return "\n".join(parts)


@dataclass(slots=True)
class _Failures:
    """The failures of one metric or webhook over the run, for the Why block."""

    count: int
    first: float
    last: float
    reason: str


def _metric_label(check: CheckResult) -> str:
    """A check's metric as the page names it: its name, with the target when not the canary."""
    metric = check.query.metric
    return metric if check.query.target == "canary" else f"{metric} ({check.query.target})"


def run_failures(ticks: Sequence[TickReport]) -> dict[str, _Failures]:
    """{metric or webhook: its failures}, in the order they first failed. A metric's failures
    are its checks that counted as failed (no data and errors too, as in Flagger); a dry-run
    metric's failing checks are listed under "NAME (dry run, not counted)"; a webhook's are its
    answers that were not 2xx."""
    found: dict[str, _Failures] = {}

    def add(name: str, t: float, reason: str) -> None:
        seen = found.get(name)
        if seen is None:
            found[name] = _Failures(1, t, t, reason)
        else:
            seen.count, seen.last, seen.reason = seen.count + 1, t, reason

    for report in ticks:
        for check in report.checks:
            name = _metric_label(check)
            if check.counted is Verdict.FAIL:
                add(name, report.t, check_reason(check))
            elif check.dry_run and check.verdict is not Verdict.PASS:
                add(f"{name} (dry run, not counted)", report.t, check_reason(check))
        for call in report.hook_calls:
            if not call.ok:
                label = f"webhook {call.hook.name} ({call.hook.hook_type.value})"
                add(label, report.t, call.message or "answered an error")
    return found


def deciding_warnings(result: SimulationResult) -> list[str]:
    """The Warning events (and errors) of the tick that decided the run: the one at
    ``decided_at`` (an operator command's tick shares its time), else the last tick."""
    if not result.ticks:
        return []
    when = result.decided_at if result.decided_at is not None else result.ticks[-1].t
    deciding = [t for t in result.ticks if t.t == when]
    return [e.message for t in deciding for e in t.events if e.type == "Warning"] + [
        t.error for t in deciding if t.error
    ]


def _why(result: SimulationResult) -> str:
    """The answer to "why was my release rolled back?" (or not), under the header."""
    ticks = result.ticks
    failures = run_failures(ticks)
    analysis_ticks = [t for t in ticks if t.checks]
    checks = sum(len(t.checks) for t in analysis_ticks)
    parts = ["<section id='why' class='why'>", "<h2>Why</h2>"]
    if result.result == "promoted" and result.decided_at is not None:
        failed = sum(f.count for f in failures.values())
        line = (
            f"Promoted at {clock(result.decided_at)} after {len(analysis_ticks)} analysis "
            f"tick{'' if len(analysis_ticks) == 1 else 's'} ({checks} checks); "
            + ("no check failed." if not failures else f"{failed} failed (below).")
        )
        parts.append(f"<p id='why-summary'>{escape(line)}</p>")
    else:
        if result.result == "rolled_back" and result.decided_at is not None:
            lead = f"Rolled back at {clock(result.decided_at)}:"
        else:
            stop = f"{result.stopped_by} stopped" if result.stopped_by else "the recording ended"
            lead = f"Undecided: {stop} the run at {clock(ticks[-1].t) if ticks else '0:00'}"
            status = ticks[-1].status if ticks else None
            if status is not None and result.canary_spec is not None:
                threshold = result.canary_spec.spec.effective_analysis.failed_checks_threshold
                lead += f" with {status.failed_checks} failed checks (threshold {threshold})"
            lead += "."
        parts.append(f"<p id='why-summary'>{escape(lead)}</p>")
        warnings = deciding_warnings(result)
        if warnings:
            items = "".join(f"<li>{escape(w)}</li>" for w in warnings)
            parts.append(f"<ul id='why-events'>{items}</ul>")
        if not failures:
            parts.append("<p class='note'>No check or webhook failed.</p>")
    if failures:
        rows = [
            ((name, str(f.count), clock(f.first), clock(f.last), f.reason), "")
            for name, f in failures.items()
        ]
        parts.append(
            table(
                ["failed", "failures", "first", "last", "reason of the last failure"],
                rows,
                numeric={1, 2, 3},
                table_id="why-failures",
            )
        )
    parts.append("</section>")
    return "\n".join(parts)


def _events_table(ticks: Sequence[TickReport]) -> str:
    rows = [((clock(t.t), e.type, e.message), e.type) for t in ticks for e in t.events] + [
        ((clock(t.t), "Error", t.error), "Warning") for t in ticks if t.error
    ]
    if not rows:
        return "<p class='note'>No events.</p>"
    rows.sort(key=lambda r: _seconds(r[0][0]))
    return table(["time", "type", "message"], rows, numeric={0})


def _seconds(text: str) -> float:
    sign = -1 if text.startswith("-") else 1
    m, s = text.lstrip("-").split(":")
    return sign * (int(m) * 60 + int(s))


# ---------------------------------------------------------------------------------------------
# Traffic weight, failed checks, webhooks
# ---------------------------------------------------------------------------------------------


def decision_label(result: SimulationResult) -> str | None:
    """The decision line's label ("rolled back at 7:00"), None for an undecided run."""
    if result.decided_at is None or result.result == "undecided":
        return None
    return f"{result.result.replace('_', ' ')} at {clock(result.decided_at)}"


def _mark_decision(fig: Any, result: SimulationResult) -> Any:
    """A labelled vertical line at the decision on a time plot, so every plot shows where the
    run was rolled back or promoted."""
    label = decision_label(result)
    if label is None or result.decided_at is None:
        return fig
    colour = "#c53030" if result.result == "rolled_back" else "#2f855a"
    fig.add_vline(
        x=minutes(result.decided_at),
        line={"color": colour, "width": 2, "dash": "dot"},
        annotation={"text": label, "font": {"color": colour, "size": 11}},
        annotation_position="top left",
    )
    return fig


def _phase(report: TickReport) -> Phase:
    return report.status.phase if report.status else Phase.NONE


def _phase_bands(ticks: Sequence[TickReport]) -> list[dict[str, Any]]:
    """One background band per run of ticks in the same phase, labelled with the phase."""
    shapes: list[dict[str, Any]] = []
    start = 0
    for i in range(1, len(ticks) + 1):
        if i < len(ticks) and _phase(ticks[i]) is _phase(ticks[start]):
            continue
        phase = _phase(ticks[start])
        x0 = minutes(ticks[start].t)
        x1 = minutes(ticks[i].t if i < len(ticks) else ticks[-1].t + ticks[-1].interval / 2)
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": x0,
                "x1": x1,
                "y0": 0,
                "y1": 1,
                "fillcolor": _PHASE_COLOUR.get(phase, _OTHER_PHASE),
                "line": {"width": 0},
                "layer": "below",
                "label": {
                    "text": phase.value or "-",
                    "textposition": "bottom center",
                    "font": {"size": 10, "color": "#52606d"},
                },
            }
        )
        start = i
    return shapes


def _paused_bands(ticks: Sequence[TickReport]) -> list[dict[str, Any]]:
    """A hatched band over each run of ticks an operator's ``pause`` held (``status.pausedAt``):
    the weight is flat there because the run was held, not because it was slow."""
    shapes: list[dict[str, Any]] = []
    i = 0
    while i < len(ticks):
        if not _paused(ticks[i]):
            i += 1
            continue
        end = i
        while end + 1 < len(ticks) and _paused(ticks[end + 1]):
            end += 1
        last = ticks[end]
        x1 = ticks[end + 1].t if end + 1 < len(ticks) else last.t + last.interval / 2
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": minutes(ticks[i].t),
                "x1": minutes(x1),
                "y0": 0,
                "y1": 1,
                "fillcolor": "rgba(82, 96, 109, 0.18)",
                "line": {"width": 1, "color": "#52606d", "dash": "dot"},
                "layer": "below",
                "label": {
                    "text": "paused",
                    "textposition": "top center",
                    "font": {"size": 11, "color": "#52606d"},
                },
            }
        )
        i = end + 1
    return shapes


def _paused(tick: TickReport) -> bool:
    return tick.status is not None and bool(tick.status.paused_at)


def _weight_figure(ticks: Sequence[TickReport]) -> Any:
    go, _ = plotly()
    fig = go.Figure()
    x = [minutes(t.t) for t in ticks]
    stepped = [t.status.canary_weight if t.status else 0 for t in ticks]
    hover = [
        hover_lines(
            [
                f"t {clock(t.t)} · {_phase(t).value or '-'}",
                f"canary weight {w} (stepped)",
                *(
                    [f"status.iterations {t.status.iterations}"]
                    if t.status and t.status.iterations
                    else []
                ),
                *(
                    [f"achieved {t.routes.achieved.canary} / {t.routes.achieved.primary}"]
                    if t.routes is not None and t.routes.achieved is not None
                    else []
                ),
                f"failed checks {t.status.failed_checks if t.status else 0}",
            ]
        )
        for t, w in zip(ticks, stepped, strict=True)
    ]
    fig.add_trace(
        go.Scatter(
            x=x,
            y=stepped,
            name="canary weight (stepped)",
            mode="lines+markers",
            line={"shape": "hv", "color": "#2b6cb0", "width": 2},
            marker={"size": 7},
            hovertext=hover,
            hoverinfo="text",
        )
    )
    achieved = [
        (minutes(t.t), t.routes.achieved.canary)
        for t in ticks
        if t.routes is not None and t.routes.achieved is not None
    ]
    if achieved:
        fig.add_trace(
            go.Scatter(
                x=[a[0] for a in achieved],
                y=[a[1] for a in achieved],
                name="achieved canary weight (router)",
                mode="lines+markers",
                line={"shape": "hv", "color": "#dd6b20", "dash": "dot", "width": 2},
                marker={"size": 5, "symbol": "diamond"},
                hovertemplate="achieved canary weight %{y}<extra></extra>",
            )
        )
    commanded = [t for t in ticks if t.command]
    if commanded:
        fig.add_trace(
            go.Scatter(
                x=[minutes(t.t) for t in commanded],
                y=[_EVENT_ROW - 6] * len(commanded),
                name="operator commands",
                mode="markers",
                marker={"size": 12, "symbol": "star", "color": "#6b46c1"},
                hovertext=[
                    hover_lines([f"t {clock(t.t)} · operator command: {t.command}"])
                    for t in commanded
                ],
                hoverinfo="text",
            )
        )
    for kind, colour, name in (
        ("Normal", "#4a5568", "events"),
        ("Warning", "#c53030", "warning events"),
    ):
        with_events = [t for t in ticks if any(e.type == kind for e in t.events)]
        if not with_events:
            continue
        fig.add_trace(
            go.Scatter(
                x=[minutes(t.t) for t in with_events],
                y=[_EVENT_ROW] * len(with_events),
                name=name,
                mode="markers",
                marker={"size": 11, "symbol": "diamond", "color": colour},
                hovertext=[
                    hover_lines(
                        [f"t {clock(t.t)}", *(e.message for e in t.events if e.type == kind)]
                    )
                    for t in with_events
                ],
                hoverinfo="text",
            )
        )
    fig.update_layout(
        shapes=[*_phase_bands(ticks), *_paused_bands(ticks)],
        hovermode="x unified",
        xaxis={"title": {"text": "minutes since the new revision"}, "range": time_range(ticks)},
        yaxis={
            "title": {"text": "canary weight %"},
            "range": [-5, _EVENT_ROW + 8],
            "tickvals": [0, 20, 40, 60, 80, 100, _EVENT_ROW],
            "ticktext": ["0", "20", "40", "60", "80", "100", "events"],
        },
    )
    return fig


def _failed_figure(result: SimulationResult) -> Any:
    go, _ = plotly()
    ticks = result.ticks
    fig = go.Figure()
    x = [minutes(t.t) for t in ticks]
    failed = [t.status.failed_checks if t.status else 0 for t in ticks]
    fig.add_trace(
        go.Scatter(
            x=x,
            y=failed,
            name="failedChecks",
            mode="lines+markers",
            line={"shape": "hv", "color": "#c53030"},
            marker={"size": 7},
            hovertext=[_failed_hover(t) for t in ticks],
            hoverinfo="text",
        )
    )
    spec = result.canary_spec
    if spec is not None and ticks:
        threshold = spec.spec.effective_analysis.failed_checks_threshold
        fig.add_trace(
            go.Scatter(
                x=[x[0], x[-1]],
                y=[threshold, threshold],
                name=f"threshold {threshold}",
                mode="lines",
                line={"dash": "dash", "color": "#1a202c"},
                hovertemplate=f"threshold {threshold}: rolled back when reached<extra></extra>",
            )
        )
    fig.update_layout(
        hovermode="x unified",
        xaxis={"title": {"text": "minutes since the new revision"}, "range": time_range(ticks)},
        yaxis={"title": {"text": "failed checks"}, "rangemode": "tozero", "dtick": 1},
    )
    return fig


def _failed_hover(report: TickReport) -> str:
    status = report.status
    lines = [f"t {clock(report.t)}", f"failed checks {status.failed_checks if status else 0}"]
    if status is not None and status.inconclusive_checks:
        lines.append(f"inconclusive checks {status.inconclusive_checks}")
    return hover_lines(lines)


def _hook_label(call: Any) -> str:
    # escaped: plotly draws its own small HTML (<a href>, <span style>) in axis labels
    return plot_text(f"{call.hook.name} ({call.hook.hook_type.value})")


def _webhook_height(ticks: Sequence[TickReport]) -> int:
    names = {_hook_label(c) for t in ticks for c in t.hook_calls}
    return 160 + 40 * len(names)


def _webhook_figure(ticks: Sequence[TickReport]) -> Any:
    go, _ = plotly()
    fig = go.Figure()
    for ok, name, colour, symbol in (
        (True, "answered 2xx", "#2f855a", "circle"),
        (False, "answered an error", "#c53030", "x"),
    ):
        calls = [(t, c) for t in ticks for c in t.hook_calls if c.ok is ok]
        if not calls:
            continue
        fig.add_trace(
            go.Scatter(
                x=[minutes(t.t) for t, _ in calls],
                y=[_hook_label(c) for _, c in calls],
                name=name,
                mode="markers",
                marker={"size": 11, "symbol": symbol, "color": colour},
                hovertext=[
                    hover_lines(
                        [
                            f"t {clock(t.t)} · {c.hook.name} ({c.hook.hook_type.value})",
                            name,
                            *([c.message] if c.message else []),
                        ]
                    )
                    for t, c in calls
                ],
                hoverinfo="text",
            )
        )
    fig.update_layout(
        hovermode="closest",
        xaxis={"title": {"text": "minutes since the new revision"}, "range": time_range(ticks)},
        # The names are written inside the plot, above their rows: a margin sized to fit them
        # moved minute 0 right of the other time plots' (and a long name squeezed the plot).
        yaxis={
            "type": "category",
            "ticklabelposition": "inside top",
            "automargin": False,
            # room above the top row for its name
            "range": [-0.5, len({_hook_label(c) for t in ticks for c in t.hook_calls}) - 0.2],
        },
    )
    return fig


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


def _metric_checks(result: SimulationResult) -> list[_MetricChecks]:
    """Checks grouped by metric, in the order the Canary lists its metrics."""
    found: dict[str, _MetricChecks] = {}
    for report in result.ticks:
        for check in report.checks:
            key = _metric_label(check)
            group = found.setdefault(key, _MetricChecks(key, check.query.kind, []))
            group.checks.append((report.t, check))
    if result.canary_spec is not None:
        order = [m.name for m in result.canary_spec.spec.effective_analysis.metrics]
        return sorted(
            found.values(),
            key=lambda g: order.index(g.name) if g.name in order else len(order),
        )
    return list(found.values())


def _mark_y(check: CheckResult, last: float | None) -> float:
    """Where a check's mark sits: its value, else (no data, error) on its bound or the last
    value seen, so every check is drawn."""
    if check.value is not None and math.isfinite(check.value):
        return check.value
    for candidate in (check.lo, check.hi, last):
        if candidate is not None:
            return candidate
    return 0.0


def _metric_figure(
    metric: _MetricChecks, recording: Recording, ticks: Sequence[TickReport], interval: float
) -> Any:
    go, _ = plotly()
    fig = go.Figure()
    start = min(0.0, ticks[0].t) - _HISTORY_INTERVALS * interval if ticks else 0.0
    end = ticks[-1].t + interval if ticks else 0.0
    base = metric.checks[0][1].query.metric
    for target, colour, dash in (("canary", "#2b6cb0", "solid"), ("primary", "#718096", "dash")):
        times, values = recording.samples(target, base, start, end)
        if not times:
            continue
        fig.add_trace(
            go.Scatter(
                x=[minutes(t) for t in times],
                y=values,
                name=f"{target} (recorded)",
                mode="lines",
                connectgaps=False,
                line={"color": colour, "dash": dash, "width": 1.5},
                hovertemplate=f"{target} %{{y:.6~g}}<extra></extra>",
            )
        )
    for attr, label in (("lo", "min"), ("hi", "max")):
        bound = [(t, getattr(c, attr)) for t, c in metric.checks]
        if all(b is None for _, b in bound):
            continue
        xs = [minutes(t) for t, _ in bound] + [minutes(bound[-1][0] + interval / 2)]
        ys = [b for _, b in bound] + [bound[-1][1]]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                name=f"{label} bound",
                mode="lines",
                line={"shape": "hv", "color": "#1a202c", "dash": "dot", "width": 1},
                hovertemplate=f"{label} %{{y:~g}}<extra></extra>",
            )
        )
    last: float | None = None
    marks: dict[Verdict, list[tuple[float, float, CheckResult]]] = {}
    for t, check in metric.checks:
        y = _mark_y(check, last)
        if check.value is not None:
            last = check.value
        marks.setdefault(check.verdict, []).append((t, y, check))
    for verdict, (name, colour, symbol) in VERDICT_STYLE.items():
        points = marks.get(verdict)
        if not points:
            continue
        fig.add_trace(
            go.Scatter(
                x=[minutes(t) for t, _, _ in points],
                y=[y for _, y, _ in points],
                name=name,
                mode="markers",
                marker={
                    "size": 11,
                    "color": colour,
                    "symbol": [symbol + ("-open" if c.dry_run else "") for _, _, c in points],
                    "line": {"width": 1.5, "color": colour},
                },
                hovertext=[
                    hover_lines(
                        [
                            f"t {clock(t)} · {name}{' (dry run)' if c.dry_run else ''}",
                            f"value {number(c.value)}",
                            check_reason(c),
                        ]
                    )
                    for t, _, c in points
                ],
                hoverinfo="text",
            )
        )
    unit = _UNITS.get(metric.kind, "")
    fig.update_layout(
        hovermode="x unified",
        xaxis={"title": {"text": "minutes since the new revision"}, "range": time_range(ticks)},
        yaxis={"title": {"text": plot_text(f"{metric.name}{f' ({unit})' if unit else ''}")}},
    )
    return fig
