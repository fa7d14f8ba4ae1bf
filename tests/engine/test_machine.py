"""The pure decision function, phase by phase (flagger-behaviour §2.4–2.10, §12).

Each test gives decide() a Canary, a persisted status and a complete observation, and checks the
next status, the effects and the events a user would see in `kubectl describe canary`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from analysis import CheckKind, CheckResult, HookOutcome, MetricQuery, Verdict
from config import Canary, CanaryStatus, HookType, Phase, parse_canary
from engine import (
    Alert,
    CountOutcome,
    Decision,
    Event,
    Need,
    Observation,
    Promote,
    RunPostRolloutHooks,
    ScaleFromZero,
    ScaleToZero,
    SetRoutes,
    decide,
)
from traffic import Readiness, Revision, Routes, Weights

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
OLD, NEW, THIRD = "00000000000000aa", "00000000000000bb", "00000000000000cc"


def make_canary(provider: str = "istio", **analysis: Any) -> Canary:
    spec_analysis: dict[str, Any] = {
        "interval": "1m",
        "threshold": 2,
        "stepWeight": 10,
        "maxWeight": 30,
    }
    spec_analysis.update(analysis)
    for key, value in list(spec_analysis.items()):
        if value is None:
            del spec_analysis[key]
    return parse_canary(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": "test"},
            "spec": {
                "provider": provider,
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                "service": {"port": 9898},
                "analysis": spec_analysis,
            },
        }
    )


def status(phase: Phase, **kw: Any) -> CanaryStatus:
    base: dict[str, Any] = {
        "phase": phase,
        "last_applied_spec": NEW if phase not in (Phase.INITIALIZED, Phase.SUCCEEDED) else OLD,
        "last_promoted_spec": OLD,
        "tracked_configs": {},
    }
    base.update(kw)
    return CanaryStatus(**base)


def observe(
    *,
    revision: str = NEW,
    routes: tuple[int, int] = (100, 0),
    mirrored: bool = False,
    primary: Readiness | None = None,
    canary: Readiness | None = None,
    hooks: dict[HookType, tuple[HookOutcome, ...]] | None = None,
    analysis: tuple[CheckResult, ...] | None = (),
    primary_runs: bool | None = True,
) -> Observation:
    """Everything a tick may ask, ``primary_runs`` telling whether the primary runs the
    observed target revision."""
    return Observation(
        reconciled=True,
        revision=Revision(revision, {}),
        primary=primary or Readiness(True),
        canary=canary or Readiness(True),
        routes=Routes(Weights(routes[0], routes[1], mirrored)),
        hooks=hooks or {},
        analysis=analysis,
        provider_checked=True,
        provider_error="",
        primary_runs=(Revision(revision, {}), primary_runs),
    )


def run(c: Canary, s: CanaryStatus, obs: Observation) -> Decision:
    result = decide(c, s, obs, now=NOW, provider=c.spec.provider or "istio")
    assert isinstance(result, Decision), f"decide asked for more: {result}"
    return result


def events(d: Decision) -> list[str]:
    return [e.message for e in d.events]


def routes_set(d: Decision) -> list[Weights]:
    return [e.weights for e in d.effects if isinstance(e, SetRoutes)]


def check(metric: str, value: float | None, passed: bool, message: str = "") -> CheckResult:
    q = MetricQuery(canary="test/podinfo", metric=metric, kind=CheckKind.SUCCESS_RATE)
    verdict = Verdict.PASS if passed else (Verdict.NO_DATA if value is None else Verdict.FAIL)
    return CheckResult(query=q, lo=99.0, value=value, verdict=verdict, message=message)


def hook(canary: Canary, name: str, ok: bool, message: str = "") -> HookOutcome:
    found = next(w for w in canary.spec.effective_analysis.webhooks if w.name == name)
    return HookOutcome(found, ok, message)


# -- initialisation --------------------------------------------------------------------------


def test_new_canary_first_asks_to_reconcile_then_initializes() -> None:
    c = make_canary()
    need = decide(c, CanaryStatus(), Observation(), now=NOW, provider="istio")
    assert need == Need(reconcile=True)
    d = run(c, CanaryStatus(), observe(revision=OLD))
    assert d.status.phase is Phase.INITIALIZED
    assert d.status.last_applied_spec == d.status.last_promoted_spec == OLD
    assert any(isinstance(e, ScaleToZero) for e in d.effects)
    assert events(d) == [
        "all the metrics providers are available!",
        "Initialization done! podinfo.test",
    ]
    promoted = d.status.promoted
    assert promoted is not None and (promoted.status, promoted.reason) == ("True", "Initialized")
    assert d.status.last_transition_time == "2026-05-01T12:00:00Z"


def test_a_primary_without_the_targets_revision_leaves_it_unrecorded() -> None:
    # the target changed after the primary was copied from it (tests/engine/test_crash_points.py)
    c = make_canary()
    d = run(c, status(Phase.INITIALIZING), observe(revision=NEW, primary_runs=False))
    assert d.status.phase is Phase.INITIALIZED
    assert d.status.last_applied_spec == d.status.last_promoted_spec == ""
    assert events(d)[-1] == (
        "podinfo-primary.test does not run the current template of podinfo.test (it changed "
        "after the primary was created): it is analysed as a new revision"
    )
    d = run(c, d.status, observe(revision=NEW))
    assert d.status.phase is Phase.PROGRESSING and d.status.last_applied_spec == NEW
    assert d.status.last_promoted_spec == ""


def test_initialization_waits_for_a_ready_primary() -> None:
    c = make_canary()
    # the workload's message names it, as Flagger's error does; the event carries it once
    not_ready = Readiness(False, True, "podinfo-primary.test not ready: 0 of 1 updated")
    d = run(c, status(Phase.INITIALIZING), observe(primary=not_ready))
    assert d.status.phase is Phase.INITIALIZING
    assert events(d)[-1] == "podinfo-primary.test not ready: 0 of 1 updated"
    assert not any(isinstance(e, ScaleToZero) for e in d.effects)


def test_provider_failure_is_reported_but_does_not_block_initialization() -> None:
    c = make_canary()
    need = decide(
        c,
        status(Phase.INITIALIZING),
        Observation(reconciled=True, revision=Revision(OLD)),
        now=NOW,
        provider="istio",
    )
    assert need == Need(provider_check=True)
    obs = replace(observe(revision=OLD), provider_error="connection refused")
    d = run(c, status(Phase.INITIALIZING), obs)
    assert d.status.phase is Phase.INITIALIZED
    assert events(d)[0] == "Error checking metric providers: connection refused"


# -- detecting a new revision ----------------------------------------------------------------


def test_idle_canary_with_unchanged_target_does_nothing() -> None:
    c = make_canary()
    s = status(Phase.SUCCEEDED)
    d = run(c, s, observe(revision=OLD))
    assert d.status == s and d.effects == ()


def test_new_revision_scales_up_and_starts_progressing() -> None:
    c = make_canary()
    d = run(c, status(Phase.SUCCEEDED), observe(revision=NEW))
    assert d.status.phase is Phase.PROGRESSING
    assert d.status.last_applied_spec == NEW
    assert (d.status.canary_weight, d.status.failed_checks, d.status.iterations) == (0, 0, 0)
    assert events(d) == ["New revision detected! Scaling up podinfo.test"]
    assert any(isinstance(e, ScaleFromZero) for e in d.effects)


def test_reverting_to_the_promoted_revision_is_not_a_new_run() -> None:
    c = make_canary()
    d = run(c, status(Phase.SUCCEEDED, last_applied_spec=NEW), observe(revision=OLD))
    assert d.status.phase is Phase.SUCCEEDED


def test_changed_config_is_a_new_revision() -> None:
    c = make_canary()
    s = status(Phase.SUCCEEDED, tracked_configs={"configmap/settings": "aaaa"})
    obs = replace(observe(revision=OLD), revision=Revision(OLD, {"configmap/settings": "bbbb"}))
    assert run(c, s, obs).status.phase is Phase.PROGRESSING


def test_confirm_rollout_failure_waits_and_warns_once() -> None:
    c = make_canary(webhooks=[{"name": "gate", "url": "http://g/", "type": "confirm-rollout"}])
    obs = observe(hooks={HookType.CONFIRM_ROLLOUT: (hook(c, "gate", False),)})
    d = run(c, status(Phase.SUCCEEDED), obs)
    assert d.status.phase is Phase.WAITING
    assert events(d) == ["Halt podinfo.test advancement waiting for approval gate"]
    assert Alert("Canary is waiting for approval.", "warn") in d.effects
    again = run(c, d.status, obs)
    assert again.status.phase is Phase.WAITING and events(again) == []


def test_confirm_rollout_is_asked_for_lazily_with_the_current_phase() -> None:
    c = make_canary(webhooks=[{"name": "gate", "url": "http://g/", "type": "confirm-rollout"}])
    need = decide(c, status(Phase.SUCCEEDED), observe(), now=NOW, provider="istio")
    assert need == Need(hooks=HookType.CONFIRM_ROLLOUT, hook_phase=Phase.SUCCEEDED)


def test_rollback_hook_aborts_a_waiting_canary_q7() -> None:
    c = make_canary(
        webhooks=[
            {"name": "gate", "url": "http://g/", "type": "confirm-rollout"},
            {"name": "abort", "url": "http://a/", "type": "rollback"},
        ]
    )
    obs = observe(hooks={HookType.ROLLBACK: (hook(c, "abort", True),)})
    d = run(c, status(Phase.WAITING), obs)
    assert d.status.phase is Phase.FAILED
    assert "Rolling back podinfo.test manual webhook invoked" in events(d)


# -- the canary strategy ---------------------------------------------------------------------


def test_first_analysis_tick_runs_pre_rollout_hooks_only_and_advances() -> None:
    c = make_canary(webhooks=[{"name": "smoke", "url": "http://s/", "type": "pre-rollout"}])
    obs = observe(hooks={HookType.PRE_ROLLOUT: (hook(c, "smoke", True),)}, analysis=None)
    d = run(c, status(Phase.PROGRESSING), obs)  # analysis=None would raise Need if metrics ran
    assert events(d) == [
        "Starting canary analysis for podinfo.test",
        "Pre-rollout check smoke passed",
        "Advance podinfo.test canary weight 10",
    ]
    assert routes_set(d) == [Weights(90, 10)]
    assert d.status.canary_weight == 10


def test_pre_rollout_failure_is_a_failed_check_and_holds_the_weight() -> None:
    c = make_canary(webhooks=[{"name": "smoke", "url": "http://s/", "type": "pre-rollout"}])
    obs = observe(hooks={HookType.PRE_ROLLOUT: (hook(c, "smoke", False, "boom"),)})
    d = run(c, status(Phase.PROGRESSING), obs)
    assert d.status.failed_checks == 1
    assert routes_set(d) == []
    assert events(d)[-1] == "Halt podinfo.test advancement pre-rollout check smoke failed boom"


def test_metrics_are_requested_once_traffic_flows() -> None:
    c = make_canary(metrics=[{"name": "request-success-rate", "thresholdRange": {"min": 99}}])
    need = decide(
        c,
        status(Phase.PROGRESSING, canary_weight=10),
        observe(routes=(90, 10), analysis=None),
        now=NOW,
        provider="istio",
    )
    assert need == Need(analysis=True)


def test_passing_checks_advance_by_step_weight() -> None:
    c = make_canary(metrics=[{"name": "request-success-rate", "thresholdRange": {"min": 99}}])
    obs = observe(routes=(90, 10), analysis=(check("request-success-rate", 99.9, True),))
    d = run(c, status(Phase.PROGRESSING, canary_weight=10), obs)
    assert routes_set(d) == [Weights(80, 20)]
    assert d.status.canary_weight == 20
    assert events(d) == ["Advance podinfo.test canary weight 20"]


def test_failing_check_counts_and_does_not_advance() -> None:
    c = make_canary(metrics=[{"name": "request-success-rate", "thresholdRange": {"min": 99}}])
    msg = "Halt podinfo.test advancement success rate 90.00% < 99%"
    obs = observe(routes=(90, 10), analysis=(check("request-success-rate", 90.0, False, msg),))
    d = run(c, status(Phase.PROGRESSING, canary_weight=10, failed_checks=0), obs)
    assert d.status.failed_checks == 1 and routes_set(d) == []
    assert events(d) == [msg]


def test_failed_checks_are_cumulative_and_roll_back_at_the_start_of_the_next_tick_q1() -> None:
    c = make_canary(
        metrics=[{"name": "request-success-rate", "thresholdRange": {"min": 99}}],
        webhooks=[{"name": "notify", "url": "http://n/", "type": "post-rollout"}],
    )
    d = run(
        c, status(Phase.PROGRESSING, canary_weight=20, failed_checks=2), observe(routes=(80, 20))
    )
    assert d.status.phase is Phase.FAILED
    assert (d.status.canary_weight, d.status.failed_checks) == (0, 0)
    assert events(d) == [
        "Rolling back podinfo.test failed checks threshold reached 2",
        "Canary failed! Scaling down podinfo.test",
    ]
    assert routes_set(d) == [Weights(100, 0)]
    assert ScaleToZero() in d.effects and CountOutcome("failure") in d.effects
    assert RunPostRolloutHooks(Phase.FAILED) in d.effects
    assert Alert("Failed checks threshold reached 2", "error") in d.effects
    promoted = d.status.promoted
    assert promoted is not None and promoted.status == "False"


def test_no_data_counts_as_a_failed_check() -> None:
    c = make_canary(metrics=[{"name": "request-success-rate", "thresholdRange": {"min": 99}}])
    msg = "Halt advancement no values found for istio metric request-success-rate"
    obs = observe(routes=(90, 10), analysis=(check("request-success-rate", None, False, msg),))
    d = run(c, status(Phase.PROGRESSING, canary_weight=10), obs)
    assert d.status.failed_checks == 1


def test_reaching_max_weight_promotes() -> None:
    c = make_canary()
    d = run(c, status(Phase.PROGRESSING, canary_weight=30), observe(routes=(70, 30)))
    assert d.status.phase is Phase.PROMOTING
    assert Promote() in d.effects
    assert events(d) == ["Copying podinfo.test template spec to podinfo-primary.test"]
    assert d.status.canary_weight == 30  # kept while promoting


def test_promoting_routes_all_traffic_back_then_finalises_then_succeeds() -> None:
    c = make_canary(webhooks=[{"name": "notify", "url": "http://n/", "type": "post-rollout"}])
    d = run(c, status(Phase.PROMOTING, canary_weight=30), observe(routes=(70, 30)))
    assert d.status.phase is Phase.FINALISING
    assert routes_set(d) == [Weights(100, 0)]
    assert events(d) == ["Routing all traffic to primary"]
    d2 = run(c, d.status, observe(routes=(100, 0)))
    assert d2.status.phase is Phase.SUCCEEDED
    assert d2.status.last_promoted_spec == NEW
    assert ScaleToZero() in d2.effects and RunPostRolloutHooks(Phase.SUCCEEDED) in d2.effects
    assert events(d2) == ["Promotion completed! Scaling down podinfo.test"]
    promoted = d2.status.promoted
    assert promoted is not None and (promoted.status, promoted.reason) == ("True", "Succeeded")


def test_step_weight_promotion_shifts_back_gradually() -> None:
    c = make_canary(stepWeight=100, maxWeight=100, stepWeightPromotion=50)
    d = run(c, status(Phase.PROMOTING, canary_weight=100), observe(routes=(0, 100)))
    assert routes_set(d) == [Weights(50, 50)]
    assert d.status.phase is Phase.PROMOTING and d.status.canary_weight == 50
    assert events(d) == ["Advance podinfo.test primary weight 50"]
    d2 = run(c, d.status, observe(routes=(50, 50)))
    assert d2.status.phase is Phase.FINALISING and routes_set(d2) == [Weights(100, 0)]


def test_promoting_with_zero_canary_weight_moves_on_q15() -> None:
    c = make_canary(stepWeight=100, maxWeight=100, stepWeightPromotion=50)
    d = run(c, status(Phase.PROMOTING), observe(routes=(100, 0)))
    assert d.status.phase is Phase.FINALISING
    assert routes_set(d) == [] and events(d) == []  # nothing left to shift: no step announced


def test_confirm_traffic_increase_failure_halts_without_a_failed_check() -> None:
    c = make_canary(
        webhooks=[{"name": "step", "url": "http://s/", "type": "confirm-traffic-increase"}]
    )
    obs = observe(
        routes=(90, 10), hooks={HookType.CONFIRM_TRAFFIC_INCREASE: (hook(c, "step", False),)}
    )
    d = run(c, status(Phase.PROGRESSING, canary_weight=10), obs)
    assert routes_set(d) == [] and d.status.failed_checks == 0
    assert events(d) == ["Halt podinfo.test advancement waiting for traffic increase approval step"]


def test_confirm_promotion_failure_waits_for_promotion_and_keeps_routing() -> None:
    c = make_canary(webhooks=[{"name": "approve", "url": "http://a/", "type": "confirm-promotion"}])
    obs = observe(routes=(70, 30), hooks={HookType.CONFIRM_PROMOTION: (hook(c, "approve", False),)})
    d = run(c, status(Phase.PROGRESSING, canary_weight=30), obs)
    assert d.status.phase is Phase.WAITING_PROMOTION
    assert d.status.canary_weight == 0  # Flagger reports 0 here (Q8 keep); routing stays 70/30
    assert routes_set(d) == []
    assert events(d) == ["Halt podinfo.test advancement waiting for promotion approval approve"]
    approved = observe(
        routes=(70, 30), hooks={HookType.CONFIRM_PROMOTION: (hook(c, "approve", True),)}
    )
    d2 = run(c, d.status, approved)
    assert d2.status.phase is Phase.PROMOTING
    assert events(d2) == [
        "Confirm-promotion check approve passed",
        "Copying podinfo.test template spec to podinfo-primary.test",
    ]


@pytest.mark.parametrize(
    ("step_weights", "expected"),
    [([1, 2, 10, 80], [1, 2, 10, 80]), ([1, 2, 10, 200], [1, 2, 10, 100])],
)
def test_step_weights_sequence_including_overflow(
    step_weights: list[int], expected: list[int]
) -> None:
    c = make_canary(stepWeight=None, maxWeight=None, stepWeights=step_weights)
    s = status(Phase.PROGRESSING)
    weight, seen = 0, []
    for _ in range(10):
        d = run(c, s, observe(routes=(100 - weight, weight)))
        if d.status.phase is Phase.PROMOTING:
            break
        weight = routes_set(d)[0].canary
        seen.append(weight)
        s = d.status
    assert seen == expected
    assert d.status.phase is Phase.PROMOTING


def test_mirroring_mirrors_one_tick_before_shifting() -> None:
    c = make_canary(mirror=True)
    d = run(c, status(Phase.PROGRESSING, iterations=0), observe(routes=(100, 0)))
    # First tick (weight 0): pre-rollout; then the mirror step.
    assert routes_set(d) == [Weights(100, 0, True)]
    d2 = run(c, d.status, observe(routes=(100, 0), mirrored=True))
    assert routes_set(d2) == [Weights(90, 10, False)]


# -- restart, skip, suspend, deadlines ------------------------------------------------------


def test_new_revision_mid_analysis_restarts_the_run() -> None:
    c = make_canary()
    d = run(
        c,
        status(Phase.PROGRESSING, canary_weight=20, failed_checks=1),
        observe(revision=THIRD, routes=(80, 20)),
    )
    assert d.status.phase is Phase.PROGRESSING
    assert (d.status.canary_weight, d.status.failed_checks, d.status.last_applied_spec) == (
        0,
        0,
        THIRD,
    )
    assert routes_set(d) == [Weights(100, 0)]
    assert events(d) == ["New revision detected! Restarting analysis for podinfo.test"]
    # the run starts again: a judge reads the canary from here, not the replaced revision's
    # samples (the Promoted condition, Unknown throughout, does not move on a restart)
    assert d.status.analysis_start_time == "2026-05-01T12:00:00Z"


def test_revert_to_promoted_revision_mid_analysis_cancels_the_run_q14() -> None:
    c = make_canary()
    d = run(c, status(Phase.PROGRESSING, canary_weight=20), observe(revision=OLD, routes=(80, 20)))
    assert d.status.phase is Phase.FAILED
    assert routes_set(d) == [Weights(100, 0)] and ScaleToZero() in d.effects
    assert "reverted to the promoted revision" in events(d)[0]
    # counted as a failure, as every way to Failed is (flagger_canary_failures_total)
    assert CountOutcome("failure") in d.effects
    # and the chat that heard "New revision detected" hears how the run ended
    alerts = [e for e in d.effects if isinstance(e, Alert)]
    assert alerts == [
        Alert("Canary run cancelled: podinfo.test was reverted to the promoted revision", "warn")
    ]


def test_skip_analysis_promotes_at_once() -> None:
    c = make_canary()
    c = c.model_copy(update={"spec": c.spec.model_copy(update={"skip_analysis": True})})
    d = run(c, status(Phase.PROGRESSING), observe())
    assert d.status.phase is Phase.SUCCEEDED
    assert Promote() in d.effects and ScaleToZero() in d.effects
    assert CountOutcome("success", "skipped") in d.effects
    assert events(d) == [
        "Copying podinfo.test template spec to podinfo-primary.test",
        "Promotion completed! Canary analysis was skipped for podinfo.test",
    ]
    # Post-rollout hooks run (phase Succeeded) before the completion event, as Flagger's
    # shouldSkipAnalysis does since fluxcd/flagger#1918 (events_test.go "skip-analysis")
    hooks = [i for i, e in enumerate(d.effects) if isinstance(e, RunPostRolloutHooks)]
    assert [d.effects[i] for i in hooks] == [RunPostRolloutHooks(Phase.SUCCEEDED)]
    done = next(
        i for i, e in enumerate(d.effects) if isinstance(e, Event) and "completed" in e.message
    )
    assert hooks[0] < done
    # each event carries the phase it happened in, as Flagger's event webhooks are told
    phases = [e.phase for e in d.effects if isinstance(e, Event)]
    assert phases == [Phase.PROGRESSING, Phase.SUCCEEDED]


def test_suspended_canary_is_left_alone() -> None:
    c = make_canary()
    c = c.model_copy(update={"spec": c.spec.model_copy(update={"suspend": True})})
    s = status(Phase.PROGRESSING, canary_weight=20)
    d = decide(c, s, Observation(), now=NOW, provider="istio")
    assert isinstance(d, Decision) and d.status == s
    assert events(d) == ["skipping canary run as object is suspended"]


def test_canary_past_its_progress_deadline_rolls_back_with_an_alert_q5() -> None:
    c = make_canary()
    obs = observe(
        routes=(90, 10),
        canary=Readiness(False, False, 'deployment "podinfo" exceeded its progress deadline'),
    )
    d = run(c, status(Phase.PROGRESSING, canary_weight=10), obs)
    assert d.status.phase is Phase.FAILED
    assert any(
        isinstance(e, Alert) and e.message.startswith("Progress deadline exceeded")
        for e in d.effects
    )


def test_canary_not_ready_but_retriable_just_waits() -> None:
    c = make_canary()
    message = "canary deployment podinfo.test not ready: 1 of 2 updated replicas are available"
    obs = observe(routes=(90, 10), canary=Readiness(False, True, message))
    d = run(c, status(Phase.PROGRESSING, canary_weight=10), obs)
    assert d.status.phase is Phase.PROGRESSING and d.status.failed_checks == 0
    assert events(d) == [
        "canary deployment podinfo.test not ready: 1 of 2 updated replicas are available"
    ]


def test_broken_primary_during_promotion_fails_and_keeps_the_canary() -> None:
    c = make_canary()
    obs = observe(
        routes=(70, 30), primary=Readiness(False, False, "exceeded its progress deadline")
    )
    d = run(c, status(Phase.PROMOTING, canary_weight=30), obs)
    assert d.status.phase is Phase.FAILED and d.status.canary_weight == 100
    assert routes_set(d) == [Weights(0, 100)]
    assert ScaleToZero() not in d.effects


def test_manual_rollback_hook() -> None:
    c = make_canary(webhooks=[{"name": "abort", "url": "http://a/", "type": "rollback"}])
    not_yet = observe(routes=(90, 10), hooks={HookType.ROLLBACK: (hook(c, "abort", False),)})
    d = run(c, status(Phase.PROGRESSING, canary_weight=10), not_yet)
    assert "Rollback hook abort not signaling a rollback" in events(d)
    now = observe(routes=(90, 10), hooks={HookType.ROLLBACK: (hook(c, "abort", True),)})
    d2 = run(c, status(Phase.PROGRESSING, canary_weight=10), now)
    assert d2.status.phase is Phase.FAILED
    assert events(d2)[:2] == [
        "Rollback check abort passed",
        "Rolling back podinfo.test manual webhook invoked",
    ]


def test_failed_canary_retries_after_revert_and_reapply() -> None:
    """Flagger #1171: while Failed, lastAppliedSpec follows the target; a re-apply is a new run."""
    c = make_canary()
    failed = status(Phase.FAILED, last_applied_spec=NEW)
    reverted = run(c, failed, observe(revision=OLD))
    assert reverted.status.phase is Phase.FAILED and reverted.status.last_applied_spec == OLD
    again = run(c, reverted.status, observe(revision=NEW))
    assert again.status.phase is Phase.PROGRESSING


def test_a_canary_taken_over_from_flagger_is_adopted_without_a_new_run() -> None:
    """Flagger's status hashes use another function; the current revision is recorded instead."""
    c = make_canary()
    flaggers = status(
        Phase.SUCCEEDED, last_applied_spec="5d8c9b7f6", last_promoted_spec="5d8c9b7f6"
    )
    d = run(c, flaggers, observe(revision=OLD))
    assert d.status.phase is Phase.SUCCEEDED
    assert d.status.last_applied_spec == d.status.last_promoted_spec == OLD
    assert events(d) == [
        "Adopted podinfo.test from Flagger: Deployment podinfo.test recorded as the current "
        "revision"
    ]
    assert not routes_set(d) and ScaleFromZero() not in d.effects
    assert run(c, d.status, observe(revision=OLD)).effects == ()  # then idle as usual
    failed = status(Phase.FAILED, last_applied_spec="5d8c9b7f6", last_promoted_spec="7b9c2dfq")
    d2 = run(c, failed, observe(revision=NEW))
    assert d2.status.phase is Phase.FAILED and d2.status.last_applied_spec == NEW


# -- blue/green and A/B ----------------------------------------------------------------------


def test_blue_green_counts_iterations_then_routes_to_canary_then_promotes() -> None:
    c = make_canary(provider="kubernetes", stepWeight=None, maxWeight=None, iterations=2)
    s = status(Phase.PROGRESSING)
    seen: list[tuple[str, ...]] = []
    routes = (100, 0)
    for _ in range(6):
        d = run(c, s, observe(routes=routes))
        seen.append(tuple(events(d)))
        if routes_set(d):
            w = routes_set(d)[-1]
            routes = (w.primary, w.canary)
        s = d.status
        if s.phase is Phase.PROMOTING:
            break
    assert seen == [
        ("Starting canary analysis for podinfo.test", "Advance podinfo.test canary iteration 1/2"),
        ("Advance podinfo.test canary iteration 2/2",),
        ("Routing all traffic to canary",),
        ("Copying podinfo.test template spec to podinfo-primary.test",),
    ]
    assert s.phase is Phase.PROMOTING and s.canary_weight == 0


def test_ab_testing_routes_matched_traffic_and_promotes_after_iterations() -> None:
    c = make_canary(
        stepWeight=None,
        maxWeight=None,
        iterations=1,
        match=[{"headers": {"x-canary": {"exact": "1"}}}],
    )
    d = run(c, status(Phase.PROGRESSING), observe())
    assert routes_set(d) == [Weights(0, 100)]
    assert events(d)[-1] == "Advance podinfo.test canary iteration 1/1"
    d2 = run(c, d.status, observe(routes=(0, 100)))
    assert d2.status.phase is Phase.PROMOTING


# -- behaviours pinned by mutation testing ----------------------------------------------------


@pytest.mark.parametrize("phase", [Phase.PROMOTING, Phase.FINALISING])
def test_a_primary_that_breaks_after_the_copy_fails_the_promotion_not_a_rollback(
    phase: Phase,
) -> None:
    # flagger-behaviour §2.4 step 17: Promoting *or* Finalising -> handleFailedPromotion
    # (traffic to the canary, which still runs the release); a rollback would send it all to
    # the broken primary
    c = make_canary()
    broken = Readiness(False, False, "podinfo-primary.test not ready: progress deadline")
    d = run(c, status(phase, canary_weight=30), observe(routes=(100, 0), primary=broken))
    assert d.status.phase is Phase.FAILED and d.status.canary_weight == 100
    assert routes_set(d) == [Weights(0, 100)]
    assert events(d)[-1] == (
        "Promotion of podinfo.test failed, primary not ready: "
        "podinfo-primary.test not ready: progress deadline"
    )


def test_skip_analysis_set_mid_run_routes_all_traffic_back_to_the_primary() -> None:
    # Flagger's shouldSkipAnalysis: SetRoutes(100, 0) before the promotion; the canary is then
    # scaled to zero, so traffic left on it would fail
    c = make_canary()
    c = c.model_copy(update={"spec": c.spec.model_copy(update={"skip_analysis": True})})
    d = run(c, status(Phase.PROGRESSING, canary_weight=20), observe(routes=(80, 20)))
    assert d.status.phase is Phase.SUCCEEDED
    assert routes_set(d) == [Weights(100, 0)]


def test_a_run_started_by_a_config_change_alone_is_analysed_not_cancelled_q14() -> None:
    # Same pod template as the promoted one, a changed ConfigMap: a new run, not a revert to
    # the promoted revision (Q14 cancels only when the template goes back to it)
    c = make_canary()
    changed = Revision(OLD, {"configmap/settings": "bbbb"})
    s = status(Phase.SUCCEEDED, tracked_configs={"configmap/settings": "aaaa"})
    started = run(c, s, replace(observe(), revision=changed))
    assert started.status.phase is Phase.PROGRESSING
    d = run(c, started.status, replace(observe(), revision=changed))
    assert d.status.phase is Phase.PROGRESSING
    assert events(d)[-1] == "Advance podinfo.test canary weight 10"


def test_blue_green_waiting_for_promotion_keeps_iterations_one_short_q8() -> None:
    # Flagger: SetStatusPhase(WaitingPromotion) writes iterations N-1, and a confirm-promotion
    # that still fails in WaitingPromotion writes N-1 again (flagger-behaviour §2.10)
    c = make_canary(
        stepWeight=None,
        maxWeight=None,
        iterations=3,
        webhooks=[{"name": "approve", "url": "http://a/", "type": "confirm-promotion"}],
    )
    denied = {HookType.CONFIRM_PROMOTION: (hook(c, "approve", False),)}
    d = run(c, status(Phase.PROGRESSING, iterations=3), observe(hooks=denied))
    assert d.status.phase is Phase.WAITING_PROMOTION and d.status.iterations == 2
    d2 = run(c, status(Phase.WAITING_PROMOTION, iterations=3), observe(hooks=denied))
    assert d2.status.phase is Phase.WAITING_PROMOTION and d2.status.iterations == 2


def test_a_mirrored_step_does_not_ask_the_traffic_increase_gate() -> None:
    # Flagger runs confirm-traffic-increase only when the traffic is not mirrored
    c = make_canary(
        mirror=True,
        webhooks=[{"name": "step", "url": "http://s/", "type": "confirm-traffic-increase"}],
    )
    obs = observe(
        routes=(100, 0),
        mirrored=True,
        hooks={HookType.CONFIRM_TRAFFIC_INCREASE: (hook(c, "step", False),)},
    )
    d = run(c, status(Phase.PROGRESSING), obs)
    assert routes_set(d) == [Weights(90, 10, False)]
    assert events(d) == ["Advance podinfo.test canary weight 10"]


def test_a_muted_confirm_promotion_gate_sends_no_alert() -> None:
    c = make_canary(
        webhooks=[
            {"name": "approve", "url": "http://a/", "type": "confirm-promotion", "muteAlert": True}
        ]
    )
    obs = observe(routes=(70, 30), hooks={HookType.CONFIRM_PROMOTION: (hook(c, "approve", False),)})
    d = run(c, status(Phase.PROGRESSING, canary_weight=30), obs)
    assert d.status.phase is Phase.WAITING_PROMOTION
    assert events(d) == ["Halt podinfo.test advancement waiting for promotion approval approve"]
    assert [e for e in d.effects if isinstance(e, Alert)] == []


def test_a_primary_that_cannot_become_ready_fails_the_initialization() -> None:
    # flagger-behaviour §2.4 step 9: a non-retriable primary error while initialising rolls back
    c = make_canary()
    broken = Readiness(False, False, 'deployment "podinfo-primary" exceeded its progress deadline')
    d = run(c, status(Phase.INITIALIZING), observe(primary=broken))
    assert d.status.phase is Phase.FAILED
    assert events(d)[-2:] == [
        'deployment "podinfo-primary" exceeded its progress deadline',
        "Canary failed! Scaling down podinfo.test",
    ]


def test_of_several_inconclusive_checks_the_first_is_the_one_reported() -> None:
    c = make_canary(
        metrics=[
            {"name": "latency", "query": "q1", "thresholdRange": {"max": 1}},
            {"name": "errors", "query": "q2", "thresholdRange": {"max": 1}},
        ]
    )
    results = tuple(
        replace(check(name, 0.5, True), verdict=Verdict.INCONCLUSIVE, explanation="too little")
        for name in ("latency", "errors")
    )
    d = run(
        c, status(Phase.PROGRESSING, canary_weight=10), observe(routes=(90, 10), analysis=results)
    )
    assert d.status.inconclusive_checks == 1 and routes_set(d) == []
    assert events(d) == [
        "Holding podinfo.test at its weight: latency inconclusive (too little), "
        "1 of 5 inconclusive checks allowed"
    ]
