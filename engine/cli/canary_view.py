"""What ``canary-engine get`` shows of one Canary: a JSON document built from the Canary and its
events, and the table drawn from that document (so ``-o json`` and the table never disagree).

Everything comes from the API: the Canary's status (Flagger's counters plus canary-engine's
``lastAnalysis`` and ``achievedWeights``), its spec (threshold, weights, strategy, with Flagger's
defaults) and the Events whose ``involvedObject`` is the Canary. Every string that may come from
outside the controller (event messages, explanations, names) is redacted again here: events may
have been written by Flagger or by hand.

Pure functions: no I/O, no clock (``now`` is passed in, for the ages in the table).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from analysis import clip, redact
from config import (
    TOTAL_WEIGHT,
    CanaryStatus,
    LastAnalysis,
    Phase,
    SpecError,
    parse_canary,
    printable,
)
from engine.cli.formatting import bound, number
from engine.cli.timeline import VERDICT_MARKS, Paint

#: Events shown (the newest ones).
EVENTS_SHOWN = 10

View = dict[str, Any]

# ---------------------------------------------------------------------------- the document


def canary_events(events: Iterable[Mapping[str, Any]], namespace: str, name: str) -> list[Any]:
    """The Events about this Canary (``kubectl describe``'s involvedObject match), oldest first."""
    mine = [event for event in events if is_canary_event(event, namespace, name)]
    return sorted(mine, key=_event_order)


def is_canary_event(event: Mapping[str, Any], namespace: str, name: str) -> bool:
    """Whether ``event``'s involvedObject is the Canary ``namespace/name``."""
    about, meta = _mapping(event.get("involvedObject")), _mapping(event.get("metadata"))
    return (about.get("kind"), about.get("name")) == ("Canary", name) and meta.get(
        "namespace", namespace
    ) == namespace


def _mapping(value: Any) -> Mapping[str, Any]:
    """A nested object, or an empty one where a hand-written object holds something else."""
    return value if isinstance(value, Mapping) else {}


def event_time(event: Mapping[str, Any]) -> str:
    """When an Event last happened, as stored (kubectl's order of fields)."""
    meta = _mapping(event.get("metadata"))
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or meta.get("creationTimestamp")
        or ""
    )


def _event_order(event: Mapping[str, Any]) -> tuple[str, int]:
    rv = str(_mapping(event.get("metadata")).get("resourceVersion") or "")
    return event_time(event), int(rv) if rv.isdigit() else 0


def build_view(body: Mapping[str, Any], events: Iterable[Mapping[str, Any]]) -> View:
    """The ``-o json`` document of a Canary body and its events."""
    meta = body.get("metadata") or {}
    namespace, name = str(meta.get("namespace", "default")), str(meta.get("name", ""))
    raw_status = body.get("status")
    raw_status = raw_status if isinstance(raw_status, dict) else {}
    status = CanaryStatus.from_body(raw_status)
    view: View = {
        "canary": name,
        "namespace": namespace,
        "phase": status.phase.value,
        **_spec_view(body),
        "canaryWeight": status.canary_weight,
        "primaryWeight": TOTAL_WEIGHT - status.canary_weight,
        "achievedWeights": (
            None if status.achieved_weights is None else status.achieved_weights.to_body()
        ),
        "iterations": status.iterations,
        "failedChecks": status.failed_checks,
        "inconclusiveChecks": status.inconclusive_checks,
        "lastTransitionTime": status.last_transition_time or None,
        "message": _redacted(status.promoted.message if status.promoted else ""),
        "pausedAt": raw_status.get("pausedAt") or None,
        "lastCommand": _command(raw_status.get("lastCommand")),
        "lastAnalysis": _analysis(status.last_analysis),
        "events": [
            {
                "time": event_time(e) or None,
                "type": str(e.get("type") or "Normal"),
                "reason": str(e.get("reason") or ""),
                "message": _redacted(str(e.get("message") or "")),
                "count": e["count"] if isinstance(e.get("count"), int) else 1,
            }
            for e in canary_events(events, namespace, name)[-EVENTS_SHOWN:]
        ],
    }
    return view


def _redacted(text: str) -> str:
    return redact(text) if text else text


def _spec_view(body: Mapping[str, Any]) -> View:
    """Strategy, threshold and weights from the spec, with Flagger's defaults; a spec the
    controller rejects is still shown (its status says why), with the problem named."""
    try:
        analysis = parse_canary(dict(body)).spec.effective_analysis
    except SpecError as exc:
        return {"specError": _redacted(exc.render())}
    return {
        "strategy": analysis.strategy.value,
        "interval": f"{analysis.interval_seconds:g}s",
        "stepWeight": analysis.step_weight,
        "stepWeights": analysis.step_weights,
        "maxWeight": analysis.effective_max_weight,
        "iterationsGoal": analysis.effective_iterations,
        "threshold": analysis.failed_checks_threshold,
        "inconclusiveLimit": analysis.inconclusive_limit,
    }


def _command(raw: Any) -> View | None:
    if not isinstance(raw, dict) or not raw.get("command"):
        return None
    return {
        # the whole id, so that a script can match the command it sent
        "id": _redacted(str(raw.get("id") or "")),
        "command": _redacted(str(raw["command"])),
        "handledAt": raw.get("handledAt"),
        "outcome": _redacted(str(raw.get("outcome") or "")),
    }


def _analysis(last: LastAnalysis | None) -> View | None:
    if last is None:
        return None
    body = last.to_body()
    body.setdefault("time", None)
    checks = []
    for stored in body["checks"]:
        # every key present (null: no data / no bound), in simulate's JSON order
        check = {k: stored.get(k) for k in ("metric", "target", "value", "min", "max", "verdict")}
        check["metric"] = _redacted(check["metric"])
        if "explanation" in stored:
            check["explanation"] = _redacted(stored["explanation"])
        if stored.get("dryRun"):
            check["dryRun"] = True
        checks.append(check)
    body["checks"] = checks
    for hook in body["webhooks"]:
        hook["name"] = _redacted(hook["name"])
    return body


def to_json(view: View, *, compact: bool = False) -> str:
    if compact:
        return json.dumps(view, separators=(",", ":"))
    return json.dumps(view, indent=2)


# ---------------------------------------------------------------------------- the table

_PHASE_COLOUR = {
    Phase.SUCCEEDED.value: "green",
    Phase.FAILED.value: "red",
    Phase.WAITING.value: "yellow",
    Phase.WAITING_PROMOTION.value: "yellow",
    Phase.PROGRESSING.value: "cyan",
    Phase.PROMOTING.value: "cyan",
    Phase.FINALISING.value: "cyan",
}
#: verdict -> (shown as, colour), as the status records it (``pass``, ``no_data``...).
_VERDICTS = {verdict.name.lower(): mark for verdict, mark in VERDICT_MARKS.items()}


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def age(text: str | None, now: datetime) -> str:
    """kubectl's AGE: 45s, 12m, 3h, 5d ("?" when unknown)."""
    when = _parse_time(text)
    if when is None:
        return "?"
    seconds = max(0, int((now - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size or (unit == "m" and seconds >= size):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _bound(check: Mapping[str, Any]) -> str:
    judged = bool(check.get("explanation"))
    return bound(check.get("min"), check.get("max"), judged=judged, gap=" ")


def _table(rows: list[list[str]], widths_from: list[list[str]] | None = None) -> list[str]:
    """Left-aligned columns, two spaces apart; ``widths_from`` are the uncoloured cells."""
    plain = widths_from or rows
    widths = [max(len(r[i]) for r in plain) for i in range(len(plain[0]))]
    out = []
    for row, raw in zip(rows, plain, strict=True):
        cells = [cell + " " * (widths[i] - len(raw[i])) for i, cell in enumerate(row)]
        out.append("  " + "  ".join(cells).rstrip())
    return out


def _weights_line(view: View) -> str:
    text = f"canary {view['canaryWeight']} / primary {view['primaryWeight']}"
    if view.get("maxWeight") is not None:
        steps = view.get("stepWeights")
        step = f"steps {','.join(map(str, steps))}" if steps else f"step {view.get('stepWeight')}"
        if view.get("strategy") == "canary":
            text += f"  ({step}, max {view['maxWeight']})"
    achieved = view.get("achievedWeights")
    if achieved:
        text += f"  achieved canary {achieved['canary']} / primary {achieved['primary']}"
    return text


def render_table(view: View, *, colour: bool, now: datetime) -> str:
    # every string of the view may come from someone else (an event a webhook server's error
    # body wrote, a Canary's annotations): printable on a terminal, and an event cut to a line
    view = _printable_tree(view)
    paint = Paint(colour)
    phase = view["phase"] or "-"
    lines = [paint(f"Canary {view['namespace']}/{view['canary']}", "bold")]
    head = [("Phase", paint(phase, _PHASE_COLOUR.get(view["phase"])))]
    if view.get("message"):
        head[0] = ("Phase", head[0][1] + paint(f"  {view['message']}", "dim"))
    if view.get("specError"):
        head.append(("Spec", paint(view["specError"], "red")))
    else:
        head.append(("Strategy", f"{view['strategy']}, every {view['interval']}"))
    head.append(("Weight", _weights_line(view)))
    iterations = str(view["iterations"])
    if view.get("iterationsGoal"):
        iterations += f" / {view['iterationsGoal']}"
    head.append(("Iterations", iterations))
    threshold = view.get("threshold")
    failed = f"{view['failedChecks']}" + (f" / {threshold}" if threshold else "")
    head.append(("Failed checks", paint(failed, "red" if view["failedChecks"] else None)))
    if view["inconclusiveChecks"]:  # only judged or onNoData: inconclusive metrics count them
        limit = view.get("inconclusiveLimit")
        head.append(
            ("Inconclusive", f"{view['inconclusiveChecks']}" + (f" / {limit}" if limit else ""))
        )
    if view.get("pausedAt"):
        head.append(("Paused", paint(f"since {view['pausedAt']}", "yellow")))
    if view.get("lastCommand"):
        command = view["lastCommand"]
        text = f"{command['command']} ({age(command.get('handledAt'), now)} ago)"
        if command["outcome"]:
            text += f": {command['outcome']}"
        head.append(("Last command", text))
    width = max(len(label) for label, _ in head) + 1
    lines += [f"{label + ':':<{width}} {value}" for label, value in head]
    lines += _analysis_lines(view.get("lastAnalysis"), paint, now)
    lines += _event_lines(view["events"], paint, now)
    return "\n".join(lines)


#: The longest event message the table shows (the JSON view has it whole).
EVENT_MESSAGE_CHARS = 2000


def _printable_tree(value: Any) -> Any:
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {k: _printable_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_printable_tree(v) for v in value]
    return value


def _analysis_lines(last: View | None, paint: Paint, now: datetime) -> list[str]:
    if last is None:
        return ["", paint("No analysis recorded yet.", "dim")]
    when = last.get("time")
    lines = ["", f"Last analysis ({age(when, now)} ago, {when})" if when else "Last analysis"]
    if last["checks"]:
        plain = [["METRIC", "TARGET", "VALUE", "BOUND", "VERDICT"]]
        shown = [list(plain[0])]
        notes: dict[int, str] = {}
        for check in last["checks"]:
            word, colour = _VERDICTS.get(check["verdict"], ("?", None))
            if check.get("dryRun"):
                word, colour = f"{word} (dry run)", "dim"
            cells = [check["metric"], check["target"], number(check["value"]), _bound(check)]
            plain.append([*cells, word])
            shown.append([*cells, paint(word, colour)])
            if check.get("explanation"):
                notes[len(plain) - 1] = check["explanation"]
        for i, row in enumerate(_table([[paint(c, "dim") for c in shown[0]], *shown[1:]], plain)):
            lines.append(row)
            if i in notes:
                lines.append(paint(f"      {notes[i]}", "dim"))
    else:
        lines.append(paint("  no metric checks", "dim"))
    if last["webhooks"]:
        plain = [["WEBHOOK", "TYPE", "ANSWER", "AGE"]]
        shown = [[paint(c, "dim") for c in plain[0]]]
        for hook in last["webhooks"]:
            word, colour = ("ok", "green") if hook["ok"] else ("FAILED", "red")
            when = age(hook.get("time"), now)
            plain.append([hook["name"], hook["type"], word, when])
            shown.append([hook["name"], hook["type"], paint(word, colour), when])
        lines += _table(shown, plain)
    return lines


def _event_lines(events: list[View], paint: Paint, now: datetime) -> list[str]:
    if not events:
        return ["", paint("No events.", "dim")]
    plain = [["AGE", "TYPE", "MESSAGE"]]
    shown = [[paint(c, "dim") for c in plain[0]]]
    for event in events:
        when = age(event["time"], now)
        kind = event["type"]
        message = clip(event["message"], EVENT_MESSAGE_CHARS) + (
            f" (x{event['count']})" if event["count"] > 1 else ""
        )
        plain.append([when, kind, message])
        colour = "red" if kind == "Warning" else None
        shown.append([when, paint(kind, colour), paint(message, colour)])
    return ["", f"Events (last {len(events)})", *_table(shown, plain)]
