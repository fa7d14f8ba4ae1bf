"""Operator commands at given times in ``simulate`` (``--command 300:promote``).

``T:COMMAND`` where T is seconds of virtual time since the new revision was applied (``300``) or
a duration (``5m``, ``1h30m``), and COMMAND one of ``promote``, ``promote-full`` (``promote
--full``), ``abort``, ``retry``, ``pause``, ``resume``. At time T the command is written to the
Canary exactly as ``canary-engine promote`` writes it (the annotation, engine.core.commands) and a
command tick runs at once, as the controller's watch would make it; the regular ticks keep their
times. A command at the very time of a regular tick is handled right after that tick.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from config import Phase, Problem, SpecError, parse_duration
from engine.cli.operator import send_command
from engine.core.commands import COMMANDS
from engine.shell.clock import Clock
from engine.shell.loop import CanaryDriver, TickReport
from traffic import Cluster

#: The names ``--command`` accepts: the commands, and ``promote-full`` for ``promote --full``.
SCHEDULED_NAMES = (*COMMANDS[:1], "promote-full", *COMMANDS[1:])


#: The latest time a command may be sent: simulate's virtual-time bound (README "Input bounds").
MAX_COMMAND_SECONDS = 7 * 86_400.0


@dataclass(frozen=True, slots=True)
class ScheduledCommand:
    at: float
    name: str
    full: bool = False

    @property
    def label(self) -> str:
        return f"{self.name} --full" if self.full else self.name


def parse_scheduled_command(text: str) -> ScheduledCommand:
    """``300:promote`` -> ScheduledCommand; SpecError naming ``--command`` and the fix."""
    usage = (
        f"expected TIME:COMMAND, e.g. 300:promote or 5m:abort, with COMMAND one of "
        f"{', '.join(SCHEDULED_NAMES)}; got {text!r}"
    )
    when, sep, name = text.partition(":")
    name = name.strip()
    if not sep or not when.strip() or not name:
        raise SpecError(Problem("--command", usage))
    if name in ("promote:full", "promote --full"):
        name = "promote-full"
    if name not in SCHEDULED_NAMES:
        raise SpecError(Problem("--command", f"unknown command {name!r}; {usage}"))
    try:
        at = float(when) if _is_number(when) else parse_duration(when.strip())
    except ValueError as exc:
        raise SpecError(Problem("--command", f"bad time {when!r} ({exc}); {usage}")) from None
    if not 0 <= at <= MAX_COMMAND_SECONDS:
        raise SpecError(
            Problem("--command", f"time must be 0 to 7 days (604800), got {when!r}; {usage}")
        )
    if name == "promote-full":
        return ScheduledCommand(at, "promote", full=True)
    return ScheduledCommand(at, name)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


async def run_with_commands(
    driver: CanaryDriver,
    clock: Clock,
    cluster: Cluster,
    commands: Sequence[ScheduledCommand],
    *,
    until: Callable[[TickReport], bool],
) -> tuple[list[TickReport], list[ScheduledCommand]]:
    """``run_canary_loop`` with commands sent at their times; the reports, and the commands the
    run ended before reaching (the recording ended first).

    ``until`` is asked about every regular tick and about a command tick that reaches a verdict.
    A verdict ends the run only once no command is left: after it, the run goes straight to the
    next command (a ``retry`` after an ``abort``), without ticks that could change nothing."""
    pending = sorted(commands, key=lambda c: c.at)  # stable: same-time commands keep their order
    reports: list[TickReport] = []
    sent = 0
    while True:
        report = await driver.tick()
        reports.append(report)
        if until(report) and not (_decided(report) and sent < len(pending)):
            return reports, pending[sent:]
        due = clock.now() + report.interval
        while sent < len(pending) and (pending[sent].at < due or _decided(reports[-1])):
            command = pending[sent]
            await clock.sleep(command.at - clock.now())
            sent += 1
            await send_command(  # exactly as ``canary-engine promote`` writes it
                cluster,
                clock,
                namespace=driver.ref.namespace,
                name=driver.ref.name,
                command=command.name,
                full=command.full,
                command_id=f"sim-{sent:04d}",
            )
            was_decided = _decided(reports[-1])
            handled = await driver.tick(commands_only=True)
            reports.append(handled)
            if _decided(handled) and not was_decided:
                until(handled)  # a verdict reached by the command (an abort): record it
            if _decided(handled) and sent == len(pending):
                return reports, []
            if was_decided:
                # Reopened (a retry): the regular ticks skipped while decided keep their times,
                # as the controller's do (a command tick never moves them), so the next one is
                # the first of the grid after the retry (a retry at a tick's time takes that
                # tick, so that the pre-rollout hooks do not run twice at the same instant).
                while due <= clock.now():
                    due += report.interval
        await clock.sleep(due - clock.now())


def _decided(report: TickReport) -> bool:
    return report.status is not None and report.status.phase in (Phase.SUCCEEDED, Phase.FAILED)
