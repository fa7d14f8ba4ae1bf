"""What one tick decides: observations in, effects and the next status out.

These are plain frozen values shared by the pure decision function (``engine.core.machine``) and the
async driver (``engine.shell.loop``) that gathers observations and carries effects out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from analysis import CheckResult, HookOutcome
from config import CanaryStatus, HookType, Phase
from traffic import Readiness, Revision, Routes, Weights

EventType = Literal["Normal", "Warning"]
Severity = Literal["info", "warn", "error"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """What the driver saw this tick. Fields left None have not been gathered (yet).

    ``revision``, readiness and ``routes`` are gathered on every tick that is not suspended; hooks,
    metric analysis and the provider check only when ``decide`` asks for them (``Need``), because
    calling a webhook has side effects and Flagger calls each only at specific points.
    """

    reconciled: bool = False
    revision: Revision | None = None
    primary: Readiness | None = None
    canary: Readiness | None = None
    routes: Routes | None = None
    hooks: Mapping[HookType, tuple[HookOutcome, ...]] = field(default_factory=dict)
    analysis: tuple[CheckResult, ...] | None = None
    provider_error: str | None = None  # "" when providers are available
    provider_checked: bool = False
    #: A revision and whether the primary runs it (None: the workload cannot tell), when asked.
    primary_runs: tuple[Revision, bool | None] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Need:
    """``decide`` cannot finish without this; the driver gathers it and calls ``decide`` again."""

    reconcile: bool = False
    hooks: HookType | None = None
    hook_phase: Phase = Phase.PROGRESSING  # payload phase for the hooks
    analysis: bool = False
    provider_check: bool = False
    #: Whether the primary runs this revision (``Workload.primary_runs``).
    primary_runs: Revision | None = None


# -- effects, carried out in order by the driver ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    message: str
    #: The Canary's phase when the event happened (what its event webhooks are told, as Flagger
    #: sends the phase of the moment); None: the phase the tick started in.
    phase: Phase | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Alert:
    message: str
    severity: Severity
    with_metadata: bool = False


@dataclass(frozen=True, slots=True)
class SetRoutes:
    weights: Weights


@dataclass(frozen=True, slots=True)
class Promote:
    """Copy the target's template, configs and HPA to the primary.

    ``recheck``: the copy of a Promoting tick, which finds it made in the common case; if it was
    not (the controller stopped between the Promoting status and the copy) the primary is now
    rolling out, and the tick ends before it moves traffic, so that the next tick's readiness
    check comes between the copy and the traffic, as after a first copy."""

    recheck: bool = False


@dataclass(frozen=True, slots=True)
class ScaleToZero:
    """Scale the target (canary) Deployment to zero replicas."""


@dataclass(frozen=True, slots=True)
class ScaleFromZero:
    """Scale the target back up for a new run."""


@dataclass(frozen=True, slots=True)
class RunPostRolloutHooks:
    phase: Phase


@dataclass(frozen=True, slots=True)
class StatusWritten:
    """The effects after this one are carried out only once the decided status is written (and
    never if the write fails), as Flagger writes the status, returns on error, and only then
    runs post-rollout hooks, counts the outcome and announces the end: a lost write repeats
    the tick's routing, never its once-only effects."""


@dataclass(frozen=True, slots=True)
class CountOutcome:
    """Increment flagger_canary_successes_total or flagger_canary_failures_total."""

    outcome: Literal["success", "failure"]
    analysis_status: Literal["completed", "skipped"] = "completed"


Effect = (
    Event
    | Alert
    | SetRoutes
    | Promote
    | ScaleToZero
    | ScaleFromZero
    | RunPostRolloutHooks
    | StatusWritten
    | CountOutcome
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    status: CanaryStatus
    effects: tuple[Effect, ...] = ()
    #: The tick reached the analysis step: flagger_canary_duration_seconds observes it.
    analysed: bool = False

    @property
    def events(self) -> tuple[Event, ...]:
        return tuple(e for e in self.effects if isinstance(e, Event))
