"""What a paused run means to the regular tick (the ``pause`` / ``resume`` operator commands).

Pure helpers shared by the decision core (``engine.core.machine``) and the commands
(``engine.core.commands``); both read only the Canary status, so a pause survives a restart.
"""

from __future__ import annotations

from datetime import datetime

from config import ACTIVE_PHASES, CanaryStatus


def is_held(status: CanaryStatus) -> bool:
    """A paused run: the regular tick holds it (no checks, no weight change) until resume."""
    return bool(status.paused_at) and status.phase in ACTIVE_PHASES


def deadline_restarted(status: CanaryStatus, now: str, deadline_seconds: int) -> bool:
    """True while less than the progress deadline has passed since the last resume: the time a
    run was paused never counts towards its canary's progress deadline (the Deployment's own
    conditions keep their timestamps, so the deadline restarts at the resume)."""
    since = seconds_between(status.resumed_at, now) if status.resumed_at else None
    return since is not None and since < deadline_seconds


def seconds_between(start: str, end: str) -> float | None:
    """Seconds from one RFC 3339 time to another; None when either does not parse."""
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (ValueError, TypeError):
        return None
