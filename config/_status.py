"""The Canary status as Flagger writes it: the state machine's only persisted memory.

Everything that must survive a controller restart lives here and nowhere else. ``to_body`` and
``from_body`` convert to and from the camelCase JSON stored in the Canary's status subresource.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from config._last_analysis import AchievedWeights, LastAnalysis


class Phase(StrEnum):
    """Flagger's phase strings (``status.phase``)."""

    NONE = ""
    INITIALIZING = "Initializing"
    INITIALIZED = "Initialized"
    WAITING = "Waiting"
    PROGRESSING = "Progressing"
    WAITING_PROMOTION = "WaitingPromotion"
    PROMOTING = "Promoting"
    FINALISING = "Finalising"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    TERMINATING = "Terminating"
    TERMINATED = "Terminated"


#: Phases in which a run is in flight (Flagger's ``shouldAdvance``).
ACTIVE_PHASES = frozenset(
    {Phase.PROGRESSING, Phase.WAITING, Phase.WAITING_PROMOTION, Phase.PROMOTING, Phase.FINALISING}
)


#: ``flagger_canary_status`` gauge value per phase: 0 Progressing, 2 Failed, 1 otherwise.
def status_gauge(phase: Phase) -> int:
    if phase is Phase.PROGRESSING:
        return 0
    if phase is Phase.FAILED:
        return 2
    return 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    """The single ``Promoted`` condition Flagger maintains."""

    type: str = "Promoted"
    status: str
    reason: str
    message: str
    last_update_time: str
    last_transition_time: str

    def to_body(self) -> dict[str, Any]:
        body = {
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
        }
        # The CRD types both date-time and requires neither: a condition stored without them
        # (another writer's, the API server dropping a null) is written back without them, as
        # "" would make the API server refuse every status write carrying the conditions.
        if self.last_update_time:
            body["lastUpdateTime"] = self.last_update_time
        if self.last_transition_time:
            body["lastTransitionTime"] = self.last_transition_time
        return body

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Condition:
        return cls(
            type=str(body.get("type", "Promoted")),
            status=str(body.get("status", "Unknown")),
            reason=str(body.get("reason", "")),
            message=str(body.get("message", "")),
            last_update_time=str(body.get("lastUpdateTime", "")),
            last_transition_time=str(body.get("lastTransitionTime", "")),
        )


def promoted_condition_for(phase: Phase, target_kind: str) -> tuple[str, str]:
    """(status, message) of the Promoted condition for a phase (Flagger's MakeStatusConditions)."""
    table = {
        Phase.INITIALIZING: ("Unknown", f"New {target_kind} detected, starting initialization."),
        Phase.INITIALIZED: ("True", f"{target_kind} initialization completed."),
        Phase.WAITING: ("Unknown", "Waiting for approval."),
        Phase.WAITING_PROMOTION: ("Unknown", "Waiting for approval."),
        Phase.PROGRESSING: ("Unknown", "New revision detected, progressing canary analysis."),
        Phase.PROMOTING: ("Unknown", "Canary analysis completed, starting primary rolling update."),
        Phase.FINALISING: ("Unknown", "Canary analysis completed, routing all traffic to primary."),
        Phase.SUCCEEDED: ("True", "Canary analysis completed successfully, promotion finished."),
        Phase.FAILED: ("False", f"Canary analysis failed, {target_kind} scaled to zero."),
    }
    return table.get(phase, ("Unknown", f"New {target_kind} detected, starting initialization."))


@dataclass(frozen=True, slots=True, kw_only=True)
class HandledCommand:
    """canary-engine extension: the last operator command the controller acted on (README
    "Operator commands"). Its ``id`` is what makes a command take effect exactly once: the
    annotation stays on the Canary, and a command whose id is recorded here is never handled
    again, by this controller after a restart or by the next leader."""

    id: str
    command: str
    handled_at: str
    outcome: str

    def to_body(self) -> dict[str, Any]:
        body = {"id": self.id, "command": self.command}
        if self.handled_at:  # the CRD types it date-time: never write "" (see Condition)
            body["handledAt"] = self.handled_at
        body["outcome"] = self.outcome
        return body

    @classmethod
    def from_body(cls, body: Any) -> HandledCommand | None:
        if not isinstance(body, dict) or not body.get("id"):
            return None
        return cls(
            id=str(body["id"]),
            command=str(body.get("command", "")),
            handled_at=str(body.get("handledAt", "")),
            outcome=str(body.get("outcome", "")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CanaryStatus:
    phase: Phase = Phase.NONE
    canary_weight: int = 0
    failed_checks: int = 0
    #: canary-engine extension: inconclusive ticks of this run (README "Verdict policy").
    inconclusive_checks: int = 0
    iterations: int = 0
    last_applied_spec: str = ""
    last_promoted_spec: str = ""
    tracked_configs: dict[str, str] | None = None
    last_transition_time: str = ""
    conditions: tuple[Condition, ...] = field(default_factory=tuple)
    #: canary-engine extension: when an operator paused the run ("" while not paused).
    paused_at: str = ""
    #: canary-engine extension: when the last pause ended; the progress deadline restarts there.
    resumed_at: str = ""
    #: canary-engine extension: the last operator command handled (README "Operator commands").
    last_command: HandledCommand | None = None
    #: canary-engine extension: the last tick's checks and webhook answers (``get`` shows them).
    last_analysis: LastAnalysis | None = None
    #: canary-engine extension: the split really achieved where the router approximates.
    achieved_weights: AchievedWeights | None = None
    #: canary-engine extension: when the analysis of the revision under analysis started (a new
    #: revision, a restart on another one, a retry); the judge reads the canary from there.
    analysis_start_time: str = ""
    #: Fields we do not manage (e.g. session-affinity cookies) are carried through unchanged.
    extra: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> CanaryStatus:
        return dataclasses.replace(self, **changes)

    @property
    def promoted(self) -> Condition | None:
        for c in self.conditions:
            if c.type == "Promoted":
                return c
        return None

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = dict(self.extra)
        body.update(
            {
                "phase": self.phase.value,
                "canaryWeight": self.canary_weight,
                "failedChecks": self.failed_checks,
                "inconclusiveChecks": self.inconclusive_checks,
                "iterations": self.iterations,
                "lastAppliedSpec": self.last_applied_spec,
                "lastPromotedSpec": self.last_promoted_spec,
                "conditions": [c.to_body() for c in self.conditions],
            }
        )
        if self.last_transition_time:  # the CRD types it date-time: never write ""
            body["lastTransitionTime"] = self.last_transition_time
        if self.tracked_configs is not None:
            body["trackedConfigs"] = dict(self.tracked_configs)
        if self.paused_at:
            body["pausedAt"] = self.paused_at
        if self.resumed_at:
            body["resumedAt"] = self.resumed_at
        if self.last_command is not None:
            body["lastCommand"] = self.last_command.to_body()
        if self.last_analysis is not None:
            body["lastAnalysis"] = self.last_analysis.to_body()
        if self.achieved_weights is not None:
            body["achievedWeights"] = self.achieved_weights.to_body()
        if self.analysis_start_time:  # date-time in the CRD: never ""
            body["analysisStartTime"] = self.analysis_start_time
        return body

    @classmethod
    def from_body(cls, body: dict[str, Any] | None) -> CanaryStatus:
        if not body:
            return cls()
        known = {
            "phase",
            "canaryWeight",
            "failedChecks",
            "inconclusiveChecks",
            "iterations",
            "lastAppliedSpec",
            "lastPromotedSpec",
            "trackedConfigs",
            "lastTransitionTime",
            "conditions",
            "pausedAt",
            "resumedAt",
            "lastCommand",
            "lastAnalysis",
            "achievedWeights",
            "analysisStartTime",
        }
        try:
            phase = Phase(body.get("phase") or "")
        except ValueError:
            phase = Phase.NONE
        tracked = body.get("trackedConfigs")
        return cls(
            phase=phase,
            canary_weight=int(body.get("canaryWeight") or 0),
            failed_checks=int(body.get("failedChecks") or 0),
            inconclusive_checks=int(body.get("inconclusiveChecks") or 0),
            iterations=int(body.get("iterations") or 0),
            last_applied_spec=str(body.get("lastAppliedSpec") or ""),
            last_promoted_spec=str(body.get("lastPromotedSpec") or ""),
            tracked_configs={str(k): str(v) for k, v in tracked.items()}
            if isinstance(tracked, dict)
            else None,
            last_transition_time=str(body.get("lastTransitionTime") or ""),
            conditions=tuple(
                Condition.from_body(c) for c in body.get("conditions") or [] if isinstance(c, dict)
            ),
            paused_at=str(body.get("pausedAt") or ""),
            resumed_at=str(body.get("resumedAt") or ""),
            last_command=HandledCommand.from_body(body.get("lastCommand")),
            last_analysis=LastAnalysis.from_body(body.get("lastAnalysis")),
            achieved_weights=AchievedWeights.from_body(body.get("achievedWeights")),
            analysis_start_time=str(body.get("analysisStartTime") or ""),
            extra={k: v for k, v in body.items() if k not in known},
        )
