"""Operator commands — promote, abort, retry, pause, resume — as pure decisions.

How a command travels (README "Operator commands"): ``canary-engine promote NAME`` (or ``kubectl
canary promote NAME``) writes one annotation on the Canary with a JSON merge patch,

    canary-engine.io/command: {"id": "<32 hex>", "command": "promote", "full": false,
                               "requestedAt": "2026-01-01T00:00:00Z"}

so a user needs only ``patch`` on ``canaries``. The controller sees the change on its watch and
runs a command tick at once (``decide_command``); the tick writes the command's id into
``status.lastCommand`` together with its effect, in the one status write of the tick. A command
whose id is already there is never handled again: the annotation may stay on the Canary for ever,
a restarted controller or a new leader reads the same status and leaves it alone. A command
written while no controller runs is handled by the first tick of the next one.

A command is the whole of its tick: it never runs the analysis, so it cannot count a check early;
the regular ticks keep their interval. A command that does not apply (``abort`` of a finished run,
``resume`` when not paused, an annotation that is not a command) is *ignored*: it is still
recorded as handled, with a Warning event saying why, so it does not come back.

This module is pure (no I/O, no clock): the driver (``engine.shell.loop``) gathers the observation
and carries the effects out, exactly as for ``decide``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from analysis import redact
from config import (
    ACTIVE_PHASES,
    TOTAL_WEIGHT,
    Canary,
    CanaryStatus,
    HandledCommand,
    HookType,
    Phase,
    Strategy,
)
from engine.core.effects import Decision, Need, Observation, ScaleFromZero, Severity
from engine.core.machine import (
    Asks,
    Decider,
    _promote,
    _rollback,
    _start_run,
    _Tick,
    has_target_changed,
)
from engine.core.pause import seconds_between

#: The annotation a command is written to (one slot: a newer command replaces one not yet handled).
COMMAND_ANNOTATION: Final = "canary-engine.io/command"
#: How many characters of a command id events and alerts show (enough to tell commands apart).
SHORT_ID = 8
#: The longest id accepted (the CLI writes 32 hex digits).
MAX_ID_LENGTH = 128

_STEPPING = (Phase.WAITING, Phase.PROGRESSING, Phase.WAITING_PROMOTION)


@dataclass(frozen=True, slots=True)
class Command:
    """One command read from the annotation. ``problem`` is set when the annotation is not a
    command this controller understands; such a command is recorded as ignored."""

    id: str
    name: str
    full: bool = False
    problem: str = ""

    @property
    def label(self) -> str:
        """How events, logs and ``status.lastCommand.command`` name it."""
        return f"{self.name} --full" if self.full else self.name

    @property
    def short(self) -> str:
        """The id as events show it: its first characters, without a ``sha256:`` prefix."""
        return self.id.removeprefix("sha256:")[:SHORT_ID]


def encode_command(name: str, *, command_id: str, requested_at: str, full: bool = False) -> str:
    """The annotation value for a command (what the CLI, the kubectl plugin and simulate write)."""
    if name not in COMMANDS:
        raise ValueError(f"unknown command {name!r}; expected one of {', '.join(COMMANDS)}")
    if full and name != "promote":
        raise ValueError("--full applies to promote only")
    body: dict[str, Any] = {"id": command_id, "command": name}
    if full:
        body["full"] = True
    body["requestedAt"] = requested_at
    return json.dumps(body, separators=(",", ":"))


def command_patch(value: str) -> dict[str, Any]:
    """The JSON merge patch that writes a command annotation value on a Canary."""
    return {"metadata": {"annotations": {COMMAND_ANNOTATION: value}}}


def read_command(annotations: Mapping[str, str] | None) -> Command | None:
    """The command in a Canary's annotations, None when there is none. Never raises: a value that
    is not a command comes back with ``problem`` set (and an id derived from the value, so it is
    reported once)."""
    raw = (annotations or {}).get(COMMAND_ANNOTATION)
    if raw is None:
        return None
    fallback_id = "sha256:" + hashlib.sha256(raw.encode()).hexdigest()[:16]
    hint = (
        f'expected {{"id": "...", "command": "{"|".join(COMMANDS)}"}}; '
        f"use canary-engine {'|'.join(COMMANDS)} NAME to write it"
    )
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
        return Command(
            fallback_id, "?", problem=f"annotation {COMMAND_ANNOTATION} is not JSON; {hint}"
        )
    if not isinstance(body, dict):
        return Command(fallback_id, "?", problem=f"annotation {COMMAND_ANNOTATION}: {hint}")
    command_id = body.get("id")
    name = body.get("command")
    full = body.get("full", False)
    if name not in COMMANDS:
        # Whatever the user wrote is echoed into events and the status: redacted and short.
        shown = _shown(name)
        return Command(fallback_id, shown, problem=f"unknown command {shown!r}; {hint}")
    if not isinstance(command_id, str) or not 0 < len(command_id) <= MAX_ID_LENGTH:
        return Command(
            fallback_id,
            str(name),
            problem=f"annotation {COMMAND_ANNOTATION} needs an id of 1 to {MAX_ID_LENGTH} "
            f"characters; {hint}",
        )
    if not isinstance(full, bool) or (full and name != "promote"):
        return Command(
            command_id, str(name), problem=f"'full' must be true or false, on promote only; {hint}"
        )
    return Command(command_id, str(name), full)


def _shown(value: object) -> str:
    text = redact(str(value))
    return text if len(text) <= 40 else text[:39] + "…"


def pending_command(annotations: Mapping[str, str] | None, status: CanaryStatus) -> Command | None:
    """The command in the annotations if it has not been handled yet (its id is not the one in
    ``status.lastCommand``)."""
    command = read_command(annotations)
    if command is None:
        return None
    handled = status.last_command
    if handled is not None and handled.id == command.id:
        return None
    return command


def handled_command_id(body: Mapping[str, Any]) -> str:
    """``status.lastCommand.id`` of a raw Canary body ("" if none): the controller's watch uses it
    to tell a new command from one already handled without parsing the whole Canary."""
    status = body.get("status")
    last = status.get("lastCommand") if isinstance(status, dict) else None
    return str(last.get("id") or "") if isinstance(last, dict) else ""


def has_pending_command(body: Mapping[str, Any]) -> bool:
    """True when a raw Canary body carries a command the controller has not handled yet."""
    meta = body.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    if not isinstance(annotations, dict):
        return False
    command = read_command(annotations)
    return command is not None and command.id != handled_command_id(body)


class _Ignored(Exception):
    """The command does not apply now: the reason goes into the event and the status."""


# ---------------------------------------------------------------------------------------------


def start_command_decision(
    canary: Canary,
    status: CanaryStatus,
    obs: Observation,
    command: Command,
    *,
    now: datetime,
    provider: str,
) -> Decider:
    """Start one command tick (a conversation, as ``start_decision``): the command's effects and
    the next status, with the command recorded in ``status.lastCommand``."""
    t = _Tick.begin(canary, status, obs, now=now, provider=provider)
    return Decider(_command_tick(t, command))


def decide_command(
    canary: Canary,
    status: CanaryStatus,
    obs: Observation,
    command: Command,
    *,
    now: datetime,
    provider: str,
) -> Decision | Need:
    """One command tick with what ``obs`` holds: the Decision, or the first Need it does not
    answer (as ``decide``)."""
    return start_command_decision(canary, status, obs, command, now=now, provider=provider).start()


def ignored_event(command: Command, canary: str, reason: str) -> str:
    """The Warning event of a command that does not apply (``canary``: ``<name>.<namespace>``)."""
    return f"Command {command.label} ({command.short}) for {canary} ignored: {reason}"


def handled_record(command: Command, outcome: str, handled_at: str) -> HandledCommand:
    """What ``status.lastCommand`` records of a command carried out or ignored."""
    return HandledCommand(
        id=command.id, command=command.label, handled_at=handled_at, outcome=outcome
    )


def _command_tick(t: _Tick, command: Command) -> Asks[Decision]:
    try:
        outcome = yield from _apply(t, command)
    except _Ignored as ignored:
        reason = str(ignored)
        t.warn(ignored_event(command, t.cname, reason))
        t.alert(f"Operator command {command.label} ignored: {reason}", "info")
        outcome = f"ignored: {reason}"
    record = handled_record(command, outcome, t.now)
    return Decision(status=t.status.replace(last_command=record), effects=tuple(t.effects))


def _announce(t: _Tick, command: Command, what: str) -> str:
    """The command's own event and alert, before the events of what it does."""
    t.info(f"Command {command.label} ({command.short}) for {t.cname}: {what}")
    t.alert(f"Operator command {command.label}: {what}", _HANDLERS[command.name].severity)
    return what


def _apply(t: _Tick, command: Command) -> Asks[str]:
    if command.problem:
        raise _Ignored(command.problem)
    if t.canary.spec.suspend:
        raise _Ignored("the Canary is suspended (spec.suspend: true); unsuspend it first")
    phase = t.status.phase
    if phase in (Phase.NONE, Phase.INITIALIZING):
        raise _Ignored("the Canary is not initialised yet")
    if phase in (Phase.TERMINATING, Phase.TERMINATED):
        raise _Ignored(f"the Canary is being deleted (phase {phase.value})")
    yield from t.reconciled()
    return (yield from _HANDLERS[command.name].run(t, command))


def _no_run(t: _Tick) -> str:
    return f"no analysis is in progress (phase {t.status.phase.value})"


# -- promote -----------------------------------------------------------------------------------


def _promote_command(t: _Tick, command: Command) -> Asks[str]:
    phase = t.status.phase
    if phase in (Phase.PROMOTING, Phase.FINALISING):
        raise _Ignored(f"{t.tname} is already being promoted (phase {phase.value})")
    if phase is Phase.FAILED:
        raise _Ignored("the run failed; retry restarts its analysis, then promote")
    if phase not in _STEPPING:
        raise _Ignored(_no_run(t))
    if command.full:
        what = _announce(t, command, f"skipping the rest of the analysis, promoting {t.tname}")
        if phase is Phase.WAITING:
            _start_run(t)
        # Promote what the target runs now, and remember it as the revision being promoted, so
        # the next tick does not take it for a new one (it may have changed since the last tick).
        t.record_revision()
        _promote_now(t)
        return what
    if phase is Phase.WAITING:
        what = _announce(t, command, "starting the analysis without the confirm-rollout gate")
        _start_run(t)
        return what
    if has_target_changed(t.status, t.revision):
        # A step from here could end in a promotion, which copies what the target runs now: a
        # revision this analysis never saw (the regular tick restarts the analysis instead).
        raise _Ignored(
            f"{t.tname} changed since this analysis started; the next tick restarts the "
            "analysis of the new revision (promote --full promotes what it runs now)"
        )
    return (yield from _step(t, command))


def _promote_now(t: _Tick) -> None:
    """An operator's promotion: it also ends a pause, which would otherwise hold the run in
    Promoting, the primary already switched, until someone sent resume."""
    t.status = t.status.replace(paused_at="")
    _promote(t)


def _step(t: _Tick, command: Command) -> Asks[str]:
    """One step forward, from the persisted status (not the routes), so that a command tick
    re-run after a crash moves to the same place rather than one step further."""
    analysis = t.canary.spec.effective_analysis
    strategy = analysis.strategy
    if t.status.phase is Phase.WAITING_PROMOTION:
        what = _announce(t, command, f"promoting {t.tname} without the confirm-promotion gate")
        _promote_now(t)
        return what
    if t.routes.weights.canary == 0 and t.status.iterations == 0:
        yield from _pre_rollout(t)
    if strategy is Strategy.CANARY:
        weight = t.status.canary_weight
        if weight >= analysis.effective_max_weight:
            what = _announce(t, command, f"maximum weight reached, promoting {t.tname}")
            _promote_now(t)
            return what
        step = analysis.next_step_weight(weight)
        target = min(TOTAL_WEIGHT, weight + step)
        what = _announce(t, command, f"advancing the canary weight from {weight} to {target}")
        t.route(TOTAL_WEIGHT - target, target)
        t.set_weight(target)
        t.info(f"Advance {t.cname} canary weight {target}")
        return what
    goal = analysis.effective_iterations
    done = t.status.iterations
    if done < goal:
        what = _announce(t, command, f"advancing to iteration {done + 1}/{goal}")
        if strategy is Strategy.AB_TESTING:
            t.route(0, TOTAL_WEIGHT)
        t.set_iterations(done + 1)
        t.info(f"Advance {t.cname} canary iteration {done + 1}/{goal}")
        return what
    if strategy is Strategy.BLUE_GREEN and done == goal:
        what = _announce(t, command, "routing all traffic to the canary")
        t.info("Routing all traffic to canary")
        t.route(0, TOTAL_WEIGHT)
        t.set_iterations(done + 1)
        return what
    what = _announce(t, command, f"iterations done, promoting {t.tname}")
    _promote_now(t)
    return what


def _pre_rollout(t: _Tick) -> Asks[None]:
    """The first step of a run calls the pre-rollout hooks, as the regular tick would: a command
    skips the wait, not the acceptance tests. A failing hook stops the command (no failed check
    is counted: the regular tick runs the hooks again)."""
    t.info(f"Starting canary analysis for {t.tname}")
    for outcome in (yield from t.hooks(HookType.PRE_ROLLOUT)):
        if not outcome.ok:
            t.warn(
                f"Halt {t.cname} advancement pre-rollout check {outcome.hook.name} "
                f"failed {outcome.message}"
            )
            raise _Ignored(f"pre-rollout check {outcome.hook.name} failed")
        t.info(f"Pre-rollout check {outcome.hook.name} passed")


# -- abort, retry --------------------------------------------------------------------------------


def _abort(t: _Tick, command: Command) -> str:
    phase = t.status.phase
    if phase in (Phase.PROMOTING, Phase.FINALISING):
        raise _Ignored(
            f"too late: the primary already runs the new template (phase {phase.value}); "
            f"to roll back, revert {t.kind} {t.tname} to the previous revision"
        )
    if phase is Phase.FAILED:
        raise _Ignored("already rolled back (phase Failed)")
    if phase not in _STEPPING:
        raise _Ignored(_no_run(t))
    what = _announce(t, command, f"rolling back {t.tname}")
    t.warn(f"Rolling back {t.cname} aborted by operator")
    t.status = t.status.replace(paused_at="")
    _rollback(t)
    return what


def _retry(t: _Tick, command: Command) -> str:
    if t.status.phase is not Phase.FAILED:
        raise _Ignored(
            f"only a failed or aborted run can be retried (phase {t.status.phase.value})"
        )
    rev = t.revision
    promoted = t.status.replace(last_applied_spec=t.status.last_promoted_spec)
    if not has_target_changed(promoted, rev):
        raise _Ignored(f"{t.tname} runs the promoted revision: there is nothing to analyse")
    what = _announce(t, command, f"restarting the analysis of {t.tname}")
    t.route(TOTAL_WEIGHT, 0)
    t.effects.append(ScaleFromZero())
    t.status = t.status.replace(paused_at="")
    t.sync_status(Phase.PROGRESSING)
    return what


# -- pause, resume -------------------------------------------------------------------------------


def _pause(t: _Tick, command: Command) -> str:
    if t.status.phase not in ACTIVE_PHASES:
        raise _Ignored(_no_run(t))
    if t.status.paused_at:
        raise _Ignored(f"already paused since {t.status.paused_at}")
    what = _announce(
        t,
        command,
        f"holding canary weight {t.status.canary_weight}; no checks are counted until resume",
    )
    t.status = t.status.replace(paused_at=t.now)
    return what


def _resume(t: _Tick, command: Command) -> str:
    if not t.status.paused_at:
        raise _Ignored("not paused")
    paused = seconds_between(t.status.paused_at, t.now)
    held = f" after {_duration(paused)}" if paused is not None else ""
    what = _announce(t, command, f"resuming the analysis{held}")
    t.status = t.status.replace(paused_at="", resumed_at=t.now)
    return what


def _duration(seconds: float) -> str:
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


# -- the commands --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Handler:
    #: The severity of the command's alert: warn for those that stop a run's progress.
    severity: Severity
    #: Carries the command out (asking for observations it needs): what it did, in words, or
    #: _Ignored.
    run: Callable[[_Tick, Command], Asks[str]]


def _asks_nothing(run: Callable[[_Tick, Command], str]) -> Callable[[_Tick, Command], Asks[str]]:
    """A command that needs no observation beyond the reconciled state, as a step."""

    def steps(t: _Tick, command: Command) -> Asks[str]:
        yield from ()
        return run(t, command)

    return steps


#: Every command: adding one is one entry here (and its summary in engine.cli's --help).
_HANDLERS: Final[Mapping[str, _Handler]] = {
    "promote": _Handler("info", _promote_command),
    "abort": _Handler("warn", _asks_nothing(_abort)),
    "retry": _Handler("info", _asks_nothing(_retry)),
    "pause": _Handler("warn", _asks_nothing(_pause)),
    "resume": _Handler("info", _asks_nothing(_resume)),
}
#: The commands, in the order ``--help`` lists them.
COMMANDS: Final = tuple(_HANDLERS)
