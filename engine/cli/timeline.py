"""The human timeline ``canary-engine simulate`` prints: one row per tick, readable at a glance.

Columns: virtual time, phase, weights (canary/primary, with the split really achieved in brackets
when the router approximates), failed checks, and each check's value against its bound; the tick's
events follow on indented lines. Colour only when writing to a terminal (and NO_COLOR is unset).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analysis import Verdict
from config import Phase, Strategy, printable
from engine.cli.formatting import bound, clock, number

if TYPE_CHECKING:
    from analysis import CheckResult
    from engine.cli.simulate import SimulationResult
    from engine.shell.loop import TickReport

_RESET = "\033[0m"
_COLOURS = {
    "green": "\033[32m",
    "red": "\033[31m",
    "yellow": "\033[33m",
    "dim": "\033[2m",
    "bold": "\033[1m",
    "cyan": "\033[36m",
}
_PHASE_COLOUR = {
    Phase.SUCCEEDED: "green",
    Phase.FAILED: "red",
    Phase.WAITING: "yellow",
    Phase.WAITING_PROMOTION: "yellow",
    Phase.PROMOTING: "cyan",
    Phase.FINALISING: "cyan",
}


class Paint:
    """ANSI colour for a terminal; plain text when disabled (piped, NO_COLOR)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, colour: str | None) -> str:
        if not self.enabled or colour is None:
            return text
        return f"{_COLOURS[colour]}{text}{_RESET}"


def _check(result: CheckResult, paint: Paint) -> str:
    q = result.query
    shown = bound(result.lo, result.hi, judged=bool(result.explanation))
    mark, colour = VERDICT_MARKS[result.verdict]
    if result.dry_run:
        mark, colour = f"{mark} (dry run)", "dim"
    # names and explanations come from the manifest and from servers: printable, never raw
    line = f"{printable(q.metric)} {number(result.value)} ({shown}) " + paint(mark, colour)
    if result.explanation:
        line += f" — {printable(result.explanation)}"
    return line


#: verdict -> (shown as, colour); ``get`` shows a Canary's last checks with the same words.
VERDICT_MARKS = {
    Verdict.PASS: ("ok", "green"),
    Verdict.FAIL: ("FAIL", "red"),
    Verdict.NO_DATA: ("NO DATA", "yellow"),
    Verdict.ERROR: ("ERROR", "red"),
    Verdict.INCONCLUSIVE: ("INCONCLUSIVE", "yellow"),
}


def _weights(report: TickReport) -> str:
    status, routes = report.status, report.routes
    canary = status.canary_weight if status else 0
    primary = routes.weights.primary if routes else 100
    text = f"{canary:>3}/{primary:<3}"
    if routes is not None and routes.achieved is not None:
        text += f" [{routes.achieved.canary}/{routes.achieved.primary}]"
    return text


def render_timeline(result: SimulationResult, *, colour: bool) -> str:
    paint = Paint(colour)
    lines: list[str] = []
    spec = result.canary_spec
    if spec is not None:
        a = spec.spec.effective_analysis
        strategy = a.strategy.value
        if a.match and a.strategy is Strategy.CANARY:
            strategy += " (weights on matching requests only)"
        lines.append(
            paint(f"canary {printable(result.canary)}", "bold")
            + f"  strategy {strategy}, interval {a.interval_seconds:g}s, "
            f"threshold {a.failed_checks_threshold}, max weight {a.effective_max_weight}"
        )
    lines.extend(paint(f"warning: {printable(warning)}", "yellow") for warning in result.warnings)
    approx = any(t.routes is not None and t.routes.achieved is not None for t in result.ticks)
    weight_head = "weight c/p [achieved]" if approx else "weight c/p"
    width = 20 if approx else 10
    lines.append(paint(f"{'time':>6}  {'phase':<17} {weight_head:<{width}}  failed  checks", "dim"))
    for report in result.ticks:
        lines.extend(_row(report, paint, width))
    lines.append("")
    verdict = {
        "promoted": ("PROMOTED", "green"),
        "rolled_back": ("ROLLED BACK", "red"),
        "undecided": (
            f"UNDECIDED (stopped by {result.stopped_by})"
            if result.stopped_by
            else "UNDECIDED (the recording ended before a verdict)",
            "yellow",
        ),
    }[result.result]
    when = f" at {clock(result.decided_at)}" if result.decided_at is not None else ""
    lines.append(
        paint(f"result: {verdict[0]}{when}", verdict[1]) + f"  (exit status {result.exit_code})"
    )
    return "\n".join(lines)


def _row(report: TickReport, paint: Paint, width: int) -> list[str]:
    status = report.status
    phase = status.phase if status else Phase.NONE
    phase_text = paint(f"{phase.value or '-':<17}", _PHASE_COLOUR.get(phase))
    failed = status.failed_checks if status else 0
    checks = "; ".join(_check(c, paint) for c in report.checks) or paint("-", "dim")
    if report.command:  # an operator command's tick (simulate --command): never any checks
        checks = paint(f"command: {report.command}", "cyan")
    elif status is not None and status.paused_at and not report.checks:
        checks = paint("paused", "yellow")
    row = f"{clock(report.t):>6}  {phase_text} {_weights(report):<{width}}  {failed:>6}  {checks}"
    out = [row]
    for event in report.events:
        colour = "red" if event.type == "Warning" else "dim"
        out.append(
            " " * 8
            + paint(("! " if event.type == "Warning" else "· ") + printable(event.message), colour)
        )
    return out
