"""Where a judged tick reads the canary from: the start of the analysis of this revision."""

from __future__ import annotations

from datetime import UTC, datetime

from config import CanaryStatus, Condition, Phase
from engine.shell.clock import VirtualClock
from engine.shell.loop import _analysis_start
from tests.engine.test_machine import make_canary

CANARY = make_canary()  # interval 1m
#: The Promoted condition a run leaves Unknown from its first revision on (12:00).
RUNNING = Condition(
    status="Unknown",
    reason="Progressing",
    message="New revision detected, progressing canary analysis.",
    last_update_time="2026-01-01T00:00:00Z",
    last_transition_time="2026-01-01T00:00:00Z",
)


def at(minutes: float) -> VirtualClock:
    clock = VirtualClock(datetime(2026, 1, 1, tzinfo=UTC))
    clock.advance(minutes * 60)
    return clock


def test_a_restart_on_another_revision_starts_the_canarys_samples_again() -> None:
    # A restart at 00:03 keeps the condition Unknown (its time stays 00:00): the run's own
    # start time, which every run start sets, is read first, so the replaced revision's
    # samples (a breach at 00:02, say) are not held against the new one.
    status = CanaryStatus(
        phase=Phase.PROGRESSING,
        conditions=(RUNNING,),
        analysis_start_time="2026-01-01T00:03:00Z",
    )
    assert _analysis_start(status, at(5), CANARY, now=300.0) == 180.0


def test_under_flaggers_crd_the_condition_marks_the_start() -> None:
    # Flagger's CRD drops analysisStartTime: the condition's transition is the next best mark.
    status = CanaryStatus(phase=Phase.PROGRESSING, conditions=(RUNNING,))
    assert _analysis_start(status, at(5), CANARY, now=300.0) == 0.0
    # with neither, the last interval only
    assert _analysis_start(CanaryStatus(phase=Phase.PROGRESSING), at(5), CANARY, 300.0) == 240.0
