"""Operator commands as pure decisions (engine.core.commands): what each does in each phase.

Each test gives ``decide_command`` a Canary, a persisted status, an observation and a command,
and checks what a user would see: the next phase and weights, the routes and scaling carried out,
the events of ``kubectl describe canary`` and the alert. The hold of a paused run and the progress
deadline after a resume are the regular ``decide``'s part, checked here too.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from config import CanaryStatus, HandledCommand, HookType, Phase
from engine import Alert, CountOutcome, Decision, Need, Promote, ScaleFromZero, ScaleToZero
from engine.core.commands import (
    COMMAND_ANNOTATION,
    Command,
    decide_command,
    encode_command,
    has_pending_command,
    pending_command,
    read_command,
)
from tests.engine.test_machine import (
    NEW,
    NOW,
    OLD,
    THIRD,
    events,
    hook,
    make_canary,
    observe,
    routes_set,
    run,
    status,
)
from traffic import Readiness, Weights

ID = "0123456789abcdef0123456789abcdef"


def command(name: str, *, full: bool = False, command_id: str = ID) -> Command:
    found = read_command(
        {
            COMMAND_ANNOTATION: encode_command(
                name, command_id=command_id, requested_at="2026-05-01T11:59:00Z", full=full
            )
        }
    )
    assert found is not None and not found.problem, found
    return found


def handle(c: Any, s: CanaryStatus, obs: Any, cmd: Command) -> Decision:
    result = decide_command(c, s, obs, cmd, now=NOW, provider=c.spec.provider or "istio")
    assert isinstance(result, Decision), f"decide_command asked for more: {result}"
    return result


def alerts(d: Decision) -> list[tuple[str, str]]:
    return [(e.message, e.severity) for e in d.effects if isinstance(e, Alert)]


def recorded(d: Decision) -> HandledCommand:
    assert d.status.last_command is not None
    return d.status.last_command


# -- the annotation ------------------------------------------------------------------------------


def test_the_annotation_round_trips_and_a_handled_command_is_not_pending() -> None:
    value = encode_command("promote", command_id=ID, requested_at="t", full=True)
    assert json.loads(value) == {"id": ID, "command": "promote", "full": True, "requestedAt": "t"}
    annotations = {COMMAND_ANNOTATION: value}
    assert pending_command(annotations, CanaryStatus()) == Command(ID, "promote", True)
    handled = CanaryStatus(
        last_command=HandledCommand(id=ID, command="x", handled_at="", outcome="")
    )
    assert pending_command(annotations, handled) is None
    body = {"metadata": {"annotations": annotations}, "status": handled.to_body()}
    assert not has_pending_command(body)
    assert has_pending_command({"metadata": {"annotations": annotations}, "status": {}})
    assert not has_pending_command({"metadata": {}})


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("promote", "is not JSON"),
        ("[1]", "expected {"),
        ('{"command": "promote"}', "needs an id of 1 to 128 characters"),
        ('{"id": "", "command": "promote"}', "needs an id of 1 to 128 characters"),
        ('{"id": "' + "x" * 129 + '", "command": "pause"}', "needs an id of 1 to 128"),
        ('{"id": "a", "command": "rollback"}', "unknown command 'rollback'"),
        ('{"id": "a", "command": "' + "z" * 300 + '"}', "unknown command '" + "z" * 39 + "…'"),
        ('{"id": "a", "command": "abort", "full": true}', "on promote only"),
    ],
)
def test_an_annotation_that_is_not_a_command_is_ignored_with_the_reason_and_reported_once(
    value: str, problem: str
) -> None:
    cmd = read_command({COMMAND_ANNOTATION: value})
    assert cmd is not None and problem in cmd.problem
    assert "canary-engine promote|abort|retry|pause|resume NAME" in cmd.problem
    c = make_canary()
    d = handle(c, status(Phase.PROGRESSING, canary_weight=10), observe(routes=(90, 10)), cmd)
    assert d.status.phase is Phase.PROGRESSING and d.status.canary_weight == 10
    assert routes_set(d) == []
    assert [e.type for e in d.events] == ["Warning"]
    assert "ignored" in events(d)[0] and problem in events(d)[0]
    # recorded under an id derived from the value: the same value is never reported again
    assert recorded(d).id == cmd.id
    assert pending_command({COMMAND_ANNOTATION: value}, d.status) is None


def test_encode_refuses_what_the_controller_would_ignore() -> None:
    with pytest.raises(ValueError, match="unknown command"):
        encode_command("rollback", command_id=ID, requested_at="t")
    with pytest.raises(ValueError, match="promote only"):
        encode_command("abort", command_id=ID, requested_at="t", full=True)


# -- promote ---------------------------------------------------------------------------------------


def test_promote_advances_one_weight_step_at_once_and_records_the_command() -> None:
    c = make_canary()  # stepWeight 10, maxWeight 30
    s = status(Phase.PROGRESSING, canary_weight=10, failed_checks=1)
    d = handle(c, s, observe(routes=(90, 10)), command("promote"))
    assert d.status.phase is Phase.PROGRESSING
    assert d.status.canary_weight == 20 and d.status.failed_checks == 1
    assert routes_set(d) == [Weights(80, 20)]
    assert events(d) == [
        "Command promote (01234567) for podinfo.test: advancing the canary weight from 10 to 20",
        "Advance podinfo.test canary weight 20",
    ]
    assert alerts(d) == [
        ("Operator command promote: advancing the canary weight from 10 to 20", "info")
    ]
    handled = recorded(d)
    assert (handled.id, handled.command, handled.handled_at) == (
        ID,
        "promote",
        "2026-05-01T12:00:00Z",
    )
    assert handled.outcome == "advancing the canary weight from 10 to 20"


def test_promote_steps_from_the_status_so_a_rerun_after_a_crash_lands_on_the_same_weight() -> None:
    c = make_canary()
    s = status(Phase.PROGRESSING, canary_weight=10)
    # the crashed tick had already moved the routes to 20 but not written the status
    d = handle(c, s, observe(routes=(80, 20)), command("promote"))
    assert d.status.canary_weight == 20 and routes_set(d) == [Weights(80, 20)]


def test_promote_at_the_maximum_weight_promotes_without_the_confirm_promotion_gate() -> None:
    c = make_canary(webhooks=[{"name": "gate", "type": "confirm-promotion", "url": "http://gate/"}])
    d = handle(
        c, status(Phase.PROGRESSING, canary_weight=30), observe(routes=(70, 30)), command("promote")
    )
    assert d.status.phase is Phase.PROMOTING
    assert any(isinstance(e, Promote) for e in d.effects)
    assert events(d)[-1] == "Copying podinfo.test template spec to podinfo-primary.test"
    waiting = status(Phase.WAITING_PROMOTION, canary_weight=0)
    d = handle(c, waiting, observe(routes=(70, 30)), command("promote"))
    assert d.status.phase is Phase.PROMOTING
    assert "without the confirm-promotion gate" in events(d)[0]


def test_a_promote_that_promotes_a_paused_run_ends_the_pause() -> None:
    c = make_canary()
    paused = status(Phase.PROGRESSING, canary_weight=30, paused_at="2026-05-01T11:00:00Z")
    d = handle(c, paused, observe(routes=(70, 30)), command("promote"))
    assert d.status.phase is Phase.PROMOTING and d.status.paused_at == ""
    # the regular tick then finishes the promotion instead of holding it until resume
    after = decide_regular(c, d.status)
    assert after.status.phase is Phase.FINALISING
    assert routes_set(after) == [Weights(100, 0)]
    # a step that does not promote keeps the run paused at the new weight
    d = handle(
        c,
        status(Phase.PROGRESSING, canary_weight=10, paused_at="2026-05-01T11:00:00Z"),
        observe(routes=(90, 10)),
        command("promote"),
    )
    assert d.status.canary_weight == 20 and d.status.paused_at == "2026-05-01T11:00:00Z"


def test_the_first_step_of_a_run_still_calls_the_pre_rollout_hooks() -> None:
    c = make_canary(webhooks=[{"name": "smoke", "type": "pre-rollout", "url": "http://t/"}])
    s = status(Phase.PROGRESSING)
    need = decide_command(c, s, observe(), command("promote"), now=NOW, provider="istio")
    assert need == Need(hooks=HookType.PRE_ROLLOUT)
    passed = observe(hooks={HookType.PRE_ROLLOUT: (hook(c, "smoke", True),)})
    d = handle(c, s, passed, command("promote"))
    assert d.status.canary_weight == 10
    assert "Pre-rollout check smoke passed" in events(d)
    failed = observe(hooks={HookType.PRE_ROLLOUT: (hook(c, "smoke", False, "500"),)})
    d = handle(c, s, failed, command("promote"))
    assert d.status.canary_weight == 0 and d.status.failed_checks == 0 and routes_set(d) == []
    assert events(d)[-1] == (
        "Command promote (01234567) for podinfo.test ignored: pre-rollout check smoke failed"
    )


def test_promote_full_skips_the_analysis_and_promotes_what_the_target_runs_now() -> None:
    c = make_canary()
    s = status(Phase.PROGRESSING, canary_weight=10, paused_at="2026-05-01T11:00:00Z")
    # the target changed again since the run started: that is the revision promoted
    d = handle(c, s, observe(routes=(90, 10), revision=THIRD), command("promote", full=True))
    assert d.status.phase is Phase.PROMOTING
    assert d.status.last_applied_spec == THIRD
    assert d.status.paused_at == ""
    assert [type(e) for e in d.effects if isinstance(e, Promote | ScaleToZero)] == [Promote]
    assert events(d) == [
        "Command promote --full (01234567) for podinfo.test: skipping the rest of the analysis, "
        "promoting podinfo.test",
        "Copying podinfo.test template spec to podinfo-primary.test",
    ]
    assert recorded(d).command == "promote --full"


@pytest.mark.parametrize(
    "before", [status(Phase.PROGRESSING, canary_weight=30), status(Phase.WAITING_PROMOTION)]
)
def test_a_plain_promote_never_promotes_a_revision_the_analysis_did_not_see(
    before: CanaryStatus,
) -> None:
    # a newer template was applied between ticks: a step to the maximum weight (or past the
    # confirm-promotion gate) would copy it to the primary, and the status would name the old one
    d = handle(make_canary(), before, observe(routes=(70, 30), revision=THIRD), command("promote"))
    assert not any(isinstance(e, Promote) for e in d.effects)
    assert events(d)[-1] == (
        "Command promote (01234567) for podinfo.test ignored: podinfo.test changed since this "
        "analysis started; the next tick restarts the analysis of the new revision "
        "(promote --full promotes what it runs now)"
    )


def test_a_command_nested_thousands_deep_is_not_json_not_a_crash() -> None:
    raw = '{"id": "a", "command": "pause", "x": ' + "[" * 5000 + "]" * 5000 + "}"
    found = read_command({COMMAND_ANNOTATION: raw})
    assert found is not None and found.problem is not None and "is not JSON" in found.problem


def test_promote_in_waiting_opens_the_confirm_rollout_gate() -> None:
    c = make_canary(webhooks=[{"name": "gate", "type": "confirm-rollout", "url": "http://gate/"}])
    s = status(Phase.WAITING, last_applied_spec=OLD)
    d = handle(c, s, observe(), command("promote"))
    assert d.status.phase is Phase.PROGRESSING and d.status.last_applied_spec == NEW
    assert any(isinstance(e, ScaleFromZero) for e in d.effects)
    assert "New revision detected! Scaling up podinfo.test" in events(d)


def test_blue_green_promote_advances_one_iteration_then_switches_then_promotes() -> None:
    c = make_canary(stepWeight=None, maxWeight=None, iterations=3)
    d = handle(c, status(Phase.PROGRESSING, iterations=1), observe(), command("promote"))
    assert d.status.iterations == 2
    # blue/green keeps all traffic on the primary until the iterations are done
    assert routes_set(d) == []
    assert events(d)[-1] == "Advance podinfo.test canary iteration 2/3"
    d = handle(c, status(Phase.PROGRESSING, iterations=3), observe(), command("promote"))
    assert d.status.iterations == 4 and routes_set(d) == [Weights(0, 100)]
    d = handle(
        c, status(Phase.PROGRESSING, iterations=4), observe(routes=(0, 100)), command("promote")
    )
    assert d.status.phase is Phase.PROMOTING


@pytest.mark.parametrize(
    ("phase", "reason"),
    [
        (Phase.SUCCEEDED, "no analysis is in progress (phase Succeeded)"),
        (Phase.FAILED, "the run failed; retry restarts its analysis, then promote"),
        (Phase.PROMOTING, "podinfo.test is already being promoted (phase Promoting)"),
        (Phase.FINALISING, "podinfo.test is already being promoted (phase Finalising)"),
        (Phase.INITIALIZING, "the Canary is not initialised yet"),
    ],
)
def test_promote_outside_an_analysis_is_ignored_with_the_reason(phase: Phase, reason: str) -> None:
    c = make_canary()
    s = status(phase)
    d = handle(c, s, observe(), command("promote"))
    assert d.status.replace(last_command=None) == s
    assert [e for e in d.effects if not isinstance(e, Alert)] == list(d.events)
    assert events(d) == [f"Command promote (01234567) for podinfo.test ignored: {reason}"]
    assert recorded(d).outcome == f"ignored: {reason}"
    assert alerts(d) == [(f"Operator command promote ignored: {reason}", "info")]


# -- abort, retry ----------------------------------------------------------------------------------


def test_abort_rolls_back_now_and_leaves_the_primary_alone() -> None:
    c = make_canary()
    s = status(Phase.PROGRESSING, canary_weight=20, paused_at="2026-05-01T11:00:00Z")
    d = handle(c, s, observe(routes=(80, 20)), command("abort"))
    assert d.status.phase is Phase.FAILED
    assert d.status.canary_weight == 0 and d.status.paused_at == ""
    assert d.status.last_applied_spec == NEW  # stays Failed until a new revision or retry
    assert routes_set(d) == [Weights(100, 0)]
    assert not any(isinstance(e, Promote) for e in d.effects)
    assert any(isinstance(e, ScaleToZero) for e in d.effects)
    assert CountOutcome("failure") in d.effects
    assert events(d) == [
        "Command abort (01234567) for podinfo.test: rolling back podinfo.test",
        "Rolling back podinfo.test aborted by operator",
        "Canary failed! Scaling down podinfo.test",
    ]
    assert alerts(d) == [("Operator command abort: rolling back podinfo.test", "warn")]
    # the regular tick then leaves it Failed: the revision is the one that failed
    held = run(c, d.status, observe())
    assert held.status.phase is Phase.FAILED and routes_set(held) == []


def test_abort_after_the_primary_was_promoted_is_refused_with_what_to_do() -> None:
    d = handle(make_canary(), status(Phase.PROMOTING), observe(), command("abort"))
    assert d.status.phase is Phase.PROMOTING
    assert "too late" in events(d)[0]
    assert "revert Deployment podinfo.test to the previous revision" in events(d)[0]


def test_abort_of_a_run_already_rolled_back_says_so() -> None:
    d = handle(make_canary(), status(Phase.FAILED), observe(), command("abort"))
    assert d.status.phase is Phase.FAILED and routes_set(d) == []
    assert events(d) == [
        "Command abort (01234567) for podinfo.test ignored: already rolled back (phase Failed)"
    ]


def test_a_promote_never_routes_more_than_all_traffic_to_the_canary() -> None:
    # stepWeight 20 from 90: Flagger caps the canary at 100 (runCanary), so does a promote
    c = make_canary(stepWeight=20, maxWeight=100)
    s = status(Phase.PROGRESSING, canary_weight=90)
    d = handle(c, s, observe(routes=(10, 90)), command("promote"))
    assert routes_set(d) == [Weights(0, 100)]
    assert d.status.canary_weight == 100
    assert events(d)[-1] == "Advance podinfo.test canary weight 100"


def test_promote_full_in_waiting_starts_the_run_it_promotes() -> None:
    # the canary is scaled up and "New revision detected" announced, as when the gate opens
    c = make_canary(webhooks=[{"name": "gate", "type": "confirm-rollout", "url": "http://gate/"}])
    s = status(Phase.WAITING, last_applied_spec=OLD)
    d = handle(c, s, observe(), command("promote", full=True))
    assert d.status.phase is Phase.PROMOTING and d.status.last_applied_spec == NEW
    assert any(isinstance(e, ScaleFromZero) for e in d.effects)
    assert events(d) == [
        "Command promote --full (01234567) for podinfo.test: skipping the rest of the analysis, "
        "promoting podinfo.test",
        "New revision detected! Scaling up podinfo.test",
        "Copying podinfo.test template spec to podinfo-primary.test",
    ]


def test_retry_restarts_the_analysis_of_the_current_revision() -> None:
    c = make_canary()
    failed = status(Phase.FAILED, failed_checks=2)
    d = handle(c, failed, observe(), command("retry"))
    assert d.status.phase is Phase.PROGRESSING
    assert (d.status.canary_weight, d.status.failed_checks, d.status.iterations) == (0, 0, 0)
    assert any(isinstance(e, ScaleFromZero) for e in d.effects)
    assert routes_set(d) == [Weights(100, 0)]
    assert events(d) == [
        "Command retry (01234567) for podinfo.test: restarting the analysis of podinfo.test"
    ]
    # the next regular tick starts the analysis as for a new revision
    nxt = run(c, d.status, observe())
    assert "Starting canary analysis for podinfo.test" in events(nxt)
    assert nxt.status.canary_weight == 10


def test_retry_is_refused_when_the_target_runs_the_promoted_revision_or_nothing_failed() -> None:
    c = make_canary()
    d = handle(c, status(Phase.FAILED), observe(revision=OLD), command("retry"))
    assert d.status.phase is Phase.FAILED
    assert "runs the promoted revision" in events(d)[0]
    d = handle(c, status(Phase.PROGRESSING), observe(), command("retry"))
    assert "only a failed or aborted run can be retried (phase Progressing)" in events(d)[0]


# -- pause, resume ---------------------------------------------------------------------------------


def test_pause_holds_the_weight_and_counts_no_checks_until_resume() -> None:
    c = make_canary()
    s = status(Phase.PROGRESSING, canary_weight=10)
    paused = handle(c, s, observe(routes=(90, 10)), command("pause"))
    assert paused.status.paused_at == "2026-05-01T12:00:00Z"
    assert paused.status.canary_weight == 10 and routes_set(paused) == []
    assert alerts(paused) == [
        (
            "Operator command pause: holding canary weight 10; no checks are counted until resume",
            "warn",
        )
    ]
    # regular ticks while paused: no analysis asked for, nothing moves, nothing counted
    held = decide_regular(c, paused.status)
    assert held.status == paused.status and held.effects == ()
    again = handle(
        c, paused.status, observe(routes=(90, 10)), command("pause", command_id="b" * 32)
    )
    assert "already paused since 2026-05-01T12:00:00Z" in events(again)[0]
    later = NOW + timedelta(minutes=90)
    resumed = decide_command(
        c,
        paused.status,
        observe(routes=(90, 10)),
        command("resume", command_id="c" * 32),
        now=later,
        provider="istio",
    )
    assert isinstance(resumed, Decision)
    assert resumed.status.paused_at == "" and resumed.status.resumed_at == "2026-05-01T13:30:00Z"
    assert events(resumed) == [
        "Command resume (cccccccc) for podinfo.test: resuming the analysis after 1h30m"
    ]


def decide_regular(c: Any, s: CanaryStatus) -> Decision:
    from engine import decide

    result = decide(c, s, observe(routes=(90, 10), analysis=None), now=NOW, provider="istio")
    assert isinstance(result, Decision), result
    return result


def test_resume_when_not_paused_and_pause_at_rest_are_ignored() -> None:
    c = make_canary()
    d = handle(c, status(Phase.PROGRESSING), observe(), command("resume"))
    assert events(d) == ["Command resume (01234567) for podinfo.test ignored: not paused"]
    d = handle(c, status(Phase.SUCCEEDED), observe(), command("pause"))
    assert "no analysis is in progress (phase Succeeded)" in events(d)[0]
    assert d.status.paused_at == ""


def test_the_progress_deadline_restarts_at_resume() -> None:
    c = make_canary()  # progressDeadlineSeconds: 600 (default)
    stuck = Readiness(False, retriable=False, message="deployment exceeded its progress deadline")
    resumed_at = (NOW - timedelta(seconds=300)).strftime("%Y-%m-%dT%H:%M:%SZ")
    s = status(Phase.PROGRESSING, canary_weight=10, resumed_at=resumed_at)
    d = run(c, s, observe(routes=(90, 10), canary=stuck))
    assert d.status.phase is Phase.PROGRESSING  # waits: 5 of its 10 minutes since the resume
    long_ago = (NOW - timedelta(seconds=601)).strftime("%Y-%m-%dT%H:%M:%SZ")
    d = run(
        c, status(Phase.PROGRESSING, canary_weight=10, resumed_at=long_ago), observe(canary=stuck)
    )
    assert d.status.phase is Phase.FAILED


def test_suspended_canaries_ignore_commands() -> None:
    c = make_canary()
    c = c.model_copy(update={"spec": c.spec.model_copy(update={"suspend": True})})
    d = handle(c, status(Phase.PROGRESSING), observe(), command("abort"))
    assert d.status.phase is Phase.PROGRESSING
    assert "suspended (spec.suspend: true)" in events(d)[0]


def test_the_status_fields_round_trip_and_a_cleared_pause_leaves_the_body() -> None:
    s = CanaryStatus(
        phase=Phase.PROGRESSING,
        paused_at="2026-05-01T12:00:00Z",
        last_command=HandledCommand(id=ID, command="pause", handled_at="h", outcome="o"),
    )
    body = s.to_body()
    assert body["pausedAt"] == "2026-05-01T12:00:00Z"
    assert body["lastCommand"] == {"id": ID, "command": "pause", "handledAt": "h", "outcome": "o"}
    assert CanaryStatus.from_body(body) == s
    assert "pausedAt" not in s.replace(paused_at="").to_body()


def test_the_command_line_offers_exactly_the_commands_the_controller_knows() -> None:
    # engine.cli keeps its own list so that --help imports nothing heavy
    from engine.cli import OPERATOR_COMMANDS
    from engine.core.commands import COMMANDS

    assert tuple(OPERATOR_COMMANDS) == COMMANDS
