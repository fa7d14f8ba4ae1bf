"""``status.lastAnalysis`` and ``status.achievedWeights``: what ``canary-engine get`` shows.

Flagger's status holds counters only (failedChecks, iterations); a metric's last value, the
judge's verdict and a webhook's answer are gone after the tick. The driver records them here (the
checks of the last tick that ran any, each webhook's last answer) in the status patch it writes,
so ``get`` (and ``kubectl get canary -o yaml``) can show them and a restarted controller loses
nothing. canary-engine extensions; the CRD carries them.

Bounded by construction: ``to_body`` writes at most ``MAX_CHECKS`` checks and ``MAX_WEBHOOKS``
webhooks, names clipped to ``MAX_NAME`` and explanations to ``MAX_EXPLANATION`` characters, so a
Canary with a hundred metrics cannot grow its status without limit. Redaction is the writer's job
(``engine.shell.last_analysis`` passes every string through ``analysis.redact``): this layer may not
import ``analysis``. ``from_body`` accepts anything (a hand-edited status must not break a tick or
``get``): malformed entries are dropped.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Entries kept per list; Flagger Canaries have a handful of metrics and webhooks.
MAX_CHECKS = 32
MAX_WEBHOOKS = 32
#: Characters kept of a metric's or webhook's name (Kubernetes names are at most 253).
MAX_NAME = 253
#: Characters kept of a judge's explanation (one sentence with its numbers, ~150 typically).
MAX_EXPLANATION = 512

VERDICTS = ("pass", "fail", "no_data", "error", "inconclusive")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(value: Any) -> float | None:
    """A finite number, else None (JSON has no NaN; no data and non-finite both show as none)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckRecord:
    """One metric check of the last analysis: its value against its bounds, and the verdict."""

    metric: str
    target: str = "canary"
    value: float | None = None
    min: float | None = None
    max: float | None = None
    #: pass | fail | no_data | error | inconclusive (README "Verdict policy").
    verdict: str
    #: A judged check's sentence with its numbers; "" for a Flagger-style check.
    explanation: str = ""
    dry_run: bool = False

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "metric": _clip(self.metric, MAX_NAME),
            "target": _clip(self.target, MAX_NAME),
            "verdict": self.verdict,
        }
        # Absent, not null: no data, no lower or no upper bound (the CRD has no nullable fields).
        for key, number in (("value", self.value), ("min", self.min), ("max", self.max)):
            finite = _number(number)
            if finite is not None:
                body[key] = finite
        if self.explanation:
            body["explanation"] = _clip(self.explanation, MAX_EXPLANATION)
        if self.dry_run:
            body["dryRun"] = True
        return body

    @classmethod
    def from_body(cls, body: Any) -> CheckRecord | None:
        if not isinstance(body, Mapping) or not isinstance(body.get("metric"), str):
            return None
        verdict = body.get("verdict")
        return cls(
            metric=body["metric"],
            target=str(body.get("target") or "canary"),
            value=_number(body.get("value")),
            min=_number(body.get("min")),
            max=_number(body.get("max")),
            verdict=verdict if verdict in VERDICTS else "error",
            explanation=str(body.get("explanation") or ""),
            dry_run=body.get("dryRun") is True,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookRecord:
    """A webhook's last answer: whether it was 2xx, and when (RFC 3339). The URL and the
    answer's body are never recorded (they may carry credentials)."""

    name: str
    type: str
    ok: bool
    time: str = ""

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": _clip(self.name, MAX_NAME),
            "type": self.type,
            "ok": self.ok,
        }
        if self.time:  # the CRD types it date-time: never write ""
            body["time"] = self.time
        return body

    @classmethod
    def from_body(cls, body: Any) -> WebhookRecord | None:
        if not isinstance(body, Mapping) or not isinstance(body.get("name"), str):
            return None
        return cls(
            name=body["name"],
            type=str(body.get("type") or ""),
            ok=body.get("ok") is True,
            time=str(body.get("time") or ""),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LastAnalysis:
    """The checks of the last tick that ran any (``time``: that tick, RFC 3339; "" before the
    first) and each webhook's last answer (with its own time)."""

    time: str = ""
    checks: tuple[CheckRecord, ...] = ()
    webhooks: tuple[WebhookRecord, ...] = ()

    def same_results(self, other: LastAnalysis | None) -> bool:
        """Equal but for the times: nothing new to show."""
        if other is None or self.checks != other.checks:
            return False
        untimed = [dataclasses.replace(w, time="") for w in self.webhooks]
        return untimed == [dataclasses.replace(w, time="") for w in other.webhooks]

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"time": self.time} if self.time else {}
        body["checks"] = [c.to_body() for c in self.checks[:MAX_CHECKS]]
        body["webhooks"] = [w.to_body() for w in self.webhooks[:MAX_WEBHOOKS]]
        return body

    @classmethod
    def from_body(cls, body: Any) -> LastAnalysis | None:
        if not isinstance(body, Mapping):
            return None
        checks, hooks = body.get("checks"), body.get("webhooks")
        checks = checks if isinstance(checks, list) else []
        hooks = hooks if isinstance(hooks, list) else []
        return cls(
            time=str(body.get("time") or ""),
            checks=tuple(c for c in map(CheckRecord.from_body, checks) if c is not None),
            webhooks=tuple(w for w in map(WebhookRecord.from_body, hooks) if w is not None),
        )


@dataclass(frozen=True, slots=True)
class AchievedWeights:
    """The split a router really achieves where it can only approximate the stepped weight (the
    mesh-free ``kubernetes`` provider splits by replicas): shown beside canaryWeight, never
    instead of it."""

    canary: int
    primary: int

    def to_body(self) -> dict[str, Any]:
        return {"canary": self.canary, "primary": self.primary}

    @classmethod
    def from_body(cls, body: Any) -> AchievedWeights | None:
        if not isinstance(body, Mapping):
            return None
        canary, primary = body.get("canary"), body.get("primary")
        if not isinstance(canary, int) or not isinstance(primary, int):
            return None
        return cls(canary, primary)
