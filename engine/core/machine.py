"""The pure decision core: ``decide(canary, status, observation, now) -> Decision | Need``.

One call is one tick of Flagger's ``advanceCanary`` (flagger-behaviour §2.4), without I/O: it reads
the Canary, its persisted status and what the driver observed, and returns the next status plus the
effects to carry out (routes, promotion, scaling, events, alerts, hooks), in order.

A tick is a conversation (sans-I/O, as h11 and trio describe it): the steps are generators that
``yield`` a ``Need`` when they need an observation that has side effects or costs a query
(reconciling, webhooks, metric analysis, the provider check) and are sent the ``Observation``
that answers it. ``start_decision`` starts a tick (a ``Decider``); the driver gathers what each
``Need`` asks and resumes the tick with ``answer``: nothing runs twice and no exception steers
the flow. ``decide`` is the one-shot form: with an observation that already holds everything the
tick asks, it returns the ``Decision``; else the first ``Need``. Tests call it directly.

Deliberate differences from Flagger (flagger-behaviour §12) are marked with their quirk number.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from analysis import CheckResult, HookOutcome, Verdict
from config import (
    TOTAL_WEIGHT,
    Canary,
    CanaryStatus,
    Condition,
    HookType,
    Phase,
    Strategy,
    promoted_condition_for,
)
from engine.core.effects import (
    Alert,
    CountOutcome,
    Decision,
    Effect,
    Event,
    Need,
    Observation,
    Promote,
    RunPostRolloutHooks,
    ScaleFromZero,
    ScaleToZero,
    SetRoutes,
    Severity,
    StatusWritten,
)
from engine.core.pause import deadline_restarted, is_held
from traffic import Revision, Routes, Weights, is_own_revision_hash, router_capabilities

#: Phases at rest: no run in progress, a tick only watches for a new revision (step 15).
AT_REST = frozenset({Phase.INITIALIZED, Phase.SUCCEEDED, Phase.FAILED})
#: Phases in which failedChecks can trigger a rollback at the start of a tick.
_ANALYSING = (Phase.PROGRESSING, Phase.WAITING_PROMOTION)
#: SetStatusPhase keeps weight and iterations only for these phases.
_KEEP_COUNTERS = (Phase.PROGRESSING, Phase.WAITING, Phase.PROMOTING)


_R = TypeVar("_R")
#: A step of a tick that may ask the driver for observations: it yields a ``Need``, is sent the
#: ``Observation`` that answers it, and returns ``_R``.
Asks = Generator[Need, Observation, _R]


@dataclass(slots=True)
class _Tick:
    """Mutable scratchpad for one decide() call; frozen into a Decision at the end."""

    canary: Canary
    obs: Observation
    now: str
    provider: str
    status: CanaryStatus
    effects: list[Effect] = field(default_factory=list)
    #: The tick reached the analysis step (flagger_canary_duration_seconds is observed).
    analysed: bool = False

    @classmethod
    def begin(
        cls, canary: Canary, status: CanaryStatus, obs: Observation, *, now: datetime, provider: str
    ) -> _Tick:
        """The scratchpad of one tick (``decide`` or ``decide_command``) at ``now``."""
        return cls(
            canary=canary,
            obs=obs,
            now=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            provider=provider,
            status=status,
        )

    # -- naming helpers --------------------------------------------------------------------
    @property
    def ns(self) -> str:
        return self.canary.metadata.namespace

    @property
    def cname(self) -> str:
        return f"{self.canary.metadata.name}.{self.ns}"

    @property
    def tname(self) -> str:
        return f"{self.canary.spec.target_ref.name}.{self.ns}"

    @property
    def target(self) -> str:
        return self.canary.spec.target_ref.name

    @property
    def kind(self) -> str:
        return self.canary.spec.target_ref.kind

    # -- effects ---------------------------------------------------------------------------
    def info(self, message: str, *, phase: Phase | None = None) -> None:
        """An event; ``phase``: the one Flagger records it with, when not the current one."""
        self.effects.append(Event("Normal", message, phase or self.status.phase))

    def warn(self, message: str, *, phase: Phase | None = None) -> None:
        self.effects.append(Event("Warning", message, phase or self.status.phase))

    def after_status_written(self) -> None:
        """What follows runs only once the status is written (effects.StatusWritten)."""
        self.effects.append(StatusWritten())

    def alert(self, message: str, severity: Severity, *, metadata: bool = False) -> None:
        self.effects.append(Alert(message, severity, metadata))

    def route(self, primary: int, canary: int, *, mirrored: bool = False) -> None:
        self.effects.append(SetRoutes(Weights(primary, canary, mirrored)))

    # -- observations ----------------------------------------------------------------------
    def ask(self, need: Need) -> Asks[None]:
        """Ask the driver for what ``need`` names and go on with the observation it sends."""
        self.obs = yield need

    def reconciled(self) -> Asks[None]:
        """The router and workloads are reconciled, and their state observed."""
        while not self.obs.reconciled:
            yield from self.ask(Need(reconcile=True))

    def hooks(
        self, hook_type: HookType, phase: Phase = Phase.PROGRESSING
    ) -> Asks[tuple[HookOutcome, ...]]:
        """The outcomes of the Canary's ``hook_type`` webhooks (called by the driver when asked)."""
        if not self.canary.spec.effective_analysis.hooks(hook_type):
            return ()
        while (found := self.obs.hooks.get(hook_type)) is None:
            yield from self.ask(Need(hooks=hook_type, hook_phase=phase))
        return found

    def analysis(self) -> Asks[tuple[CheckResult, ...]]:
        """This tick's metric checks (fetched and judged by the driver when asked)."""
        if not self.canary.spec.effective_analysis.metrics:
            return ()
        while (found := self.obs.analysis) is None:
            yield from self.ask(Need(analysis=True))
        return found

    def primary_runs(self, revision: Revision) -> Asks[bool | None]:
        """Whether the primary runs ``revision`` (None: the workload cannot tell)."""
        while (found := self.obs.primary_runs) is None or found[0] != revision:
            yield from self.ask(Need(primary_runs=revision))
        return found[1]

    @property
    def revision(self) -> Revision:
        assert self.obs.revision is not None
        return self.obs.revision

    @property
    def routes(self) -> Routes:
        return self.obs.routes or Routes(Weights.all_primary())

    # -- status primitives (flagger-behaviour §2.2) -----------------------------------------
    def _stamp(self, new: CanaryStatus) -> CanaryStatus:
        new = _with_condition(new, self.kind, self.now)
        if _persisted_fields(new) != _persisted_fields(self.status):
            new = new.replace(last_transition_time=self.now)
        return new

    def _with_revision(self, status: CanaryStatus, *, promoted: bool) -> CanaryStatus:
        """``status`` with the revision the target runs now as the one last applied (and, when
        ``promoted``, as the one the primary runs): has_target_changed then takes it for known."""
        rev = self.revision
        new = status.replace(last_applied_spec=rev.spec_hash, tracked_configs=dict(rev.configs))
        return new.replace(last_promoted_spec=rev.spec_hash) if promoted else new

    def record_revision(self, *, promoted: bool = False) -> None:
        """Record the revision the target runs now (see ``_with_revision``), phase unchanged."""
        self.status = self._stamp(self._with_revision(self.status, promoted=promoted))

    def sync_status(
        self, phase: Phase, *, weight: int = 0, failed: int = 0, iterations: int = 0
    ) -> None:
        new = self.status.replace(
            phase=phase,
            canary_weight=weight,
            failed_checks=failed,
            inconclusive_checks=0,
            iterations=iterations,
        )
        if phase is Phase.PROGRESSING:  # a run starts (a new revision, a restart, a retry)
            new = new.replace(analysis_start_time=self.now)
        self.status = self._stamp(self._with_revision(new, promoted=phase is Phase.INITIALIZED))

    def set_phase(self, phase: Phase) -> None:
        new = self.status.replace(phase=phase)
        if phase not in _KEEP_COUNTERS:
            new = new.replace(canary_weight=0, iterations=0)
            if phase is Phase.WAITING_PROMOTION:
                # Flagger writes iterations = analysis.iterations - 1 (-1 for the canary strategy);
                # we clamp at 0 so kubectl never shows a negative count.
                new = new.replace(iterations=max(0, self._iterations_goal - 1))
        if phase in (Phase.INITIALIZED, Phase.SUCCEEDED):
            new = new.replace(last_promoted_spec=new.last_applied_spec)
        self.status = self._stamp(new)

    def set_weight(self, weight: int) -> None:
        self.status = self._stamp(self.status.replace(canary_weight=weight))

    def set_failed_checks(self, n: int) -> None:
        self.status = self._stamp(self.status.replace(failed_checks=n))

    def set_inconclusive_checks(self, n: int) -> None:
        self.status = self._stamp(self.status.replace(inconclusive_checks=n))

    def set_iterations(self, n: int) -> None:
        self.status = self._stamp(self.status.replace(iterations=n))

    @property
    def _iterations_goal(self) -> int:
        return self.canary.spec.effective_analysis.effective_iterations


def _persisted_fields(s: CanaryStatus) -> tuple[object, ...]:
    return (
        s.phase,
        s.canary_weight,
        s.failed_checks,
        s.inconclusive_checks,
        s.iterations,
        s.last_applied_spec,
        s.last_promoted_spec,
        tuple(sorted((s.tracked_configs or {}).items())),
    )


def _with_condition(status: CanaryStatus, target_kind: str, now: str) -> CanaryStatus:
    """Rewrite the Promoted condition only when (status, reason) changed, as Flagger does."""
    cond_status, message = promoted_condition_for(status.phase, target_kind)
    reason = status.phase.value
    old = status.promoted
    if old is not None and old.status == cond_status and old.reason == reason:
        return status
    transition = old.last_transition_time if old is not None and old.status == cond_status else now
    cond = Condition(
        status=cond_status,
        reason=reason,
        message=message,
        last_update_time=now,
        last_transition_time=transition,
    )
    others = tuple(c for c in status.conditions if c.type != "Promoted")
    return status.replace(conditions=(*others, cond))


def has_target_changed(status: CanaryStatus, revision: Revision) -> bool:
    """Flagger's HasTargetChanged || HaveDependenciesChanged."""
    if not status.last_applied_spec:
        return True
    if revision.spec_hash == status.last_promoted_spec:
        spec_changed = False
    else:
        spec_changed = revision.spec_hash != status.last_applied_spec
    return spec_changed or _configs_changed(status.tracked_configs, revision.configs)


def _configs_changed(tracked: dict[str, str] | None, current: dict[str, str]) -> bool:
    if not current and tracked is None:
        return False
    if tracked is None:
        return True
    return dict(tracked) != dict(current)


class Decider:
    """One tick in progress: ``start()`` runs it until it asks for an observation (a ``Need``)
    or decides (a ``Decision``); ``answer(observation)`` resumes it where it stopped, with the
    observation the driver gathered for that need (everything observed so far)."""

    def __init__(self, steps: Asks[Decision]) -> None:
        self._steps = steps

    def start(self) -> Decision | Need:
        return self._resume(None)

    def answer(self, obs: Observation) -> Decision | Need:
        return self._resume(obs)

    def _resume(self, obs: Observation | None) -> Decision | Need:
        try:
            return next(self._steps) if obs is None else self._steps.send(obs)
        except StopIteration as done:
            decision: Decision = done.value
            return decision


def start_decision(
    canary: Canary,
    status: CanaryStatus,
    obs: Observation,
    *,
    now: datetime,
    provider: str,
) -> Decider:
    """Start one tick. ``provider`` is the resolved mesh provider (spec.provider or the default);
    ``obs`` what is observed already (an empty ``Observation()`` at the start of a live tick)."""
    return Decider(_tick(_Tick.begin(canary, status, obs, now=now, provider=provider)))


def decide(
    canary: Canary,
    status: CanaryStatus,
    obs: Observation,
    *,
    now: datetime,
    provider: str,
) -> Decision | Need:
    """One tick with what ``obs`` holds: the Decision, or the first Need it does not answer."""
    return start_decision(canary, status, obs, now=now, provider=provider).start()


def _tick(t: _Tick) -> Asks[Decision]:
    yield from _advance(t)
    return Decision(status=t.status, effects=tuple(t.effects), analysed=t.analysed)


# ---------------------------------------------------------------------------------------------
# advanceCanary
# ---------------------------------------------------------------------------------------------


def _advance(t: _Tick) -> Asks[None]:
    """One tick of Flagger's ``advanceCanary``: its checks in its order (the step numbers are
    flagger-behaviour §2.4's), each of which may end the tick, then the analysis and the step of
    the run's strategy."""
    if t.canary.spec.suspend:
        t.info("skipping canary run as object is suspended")
        return

    yield from t.reconciled()

    if t.status.phase is Phase.NONE:
        t.set_phase(Phase.INITIALIZING)
    if t.status.phase is Phase.INITIALIZING:
        yield from _initialize(t)
        return

    if _adopt_from_flagger(t):
        return
    if is_held(t.status):
        return  # paused by an operator: hold the weight, count no checks (engine.core.commands)
    if not _should_advance(t) or _primary_not_ready(t):
        return

    routes = t.routes.weights
    if (yield from _outside_a_run(t)):
        return
    if _revision_changed(t) or _canary_not_ready(t) or _analysis_skipped(t):
        return

    # Manual rollback through rollback webhooks (step 23)
    if t.status.phase in (Phase.PROGRESSING, Phase.WAITING_PROMOTION) and (
        yield from _rollback_requested(t)
    ):
        return

    if t.status.phase is Phase.PROMOTING:
        if _runs_the_promoted_revision(t):
            # Again, in case the controller stopped between the status write and the copy
            # (_promote): the same content, so nothing is written when the copy was made. Only
            # while the target runs exactly the revision the analysis passed: one pushed during
            # the promotion waits for the next run, as in Flagger, and is never copied here.
            t.effects.append(Promote(recheck=True))
        elif (yield from _promotion_lost(t)):
            return
        _promotion_traffic_shift(t, routes)
        return
    if t.status.phase is Phase.FINALISING:
        _finalise(t)
        return

    # Rollback at threshold, checked before this tick's analysis (step 26, Q1 keep)
    analysis = t.canary.spec.effective_analysis
    if t.status.phase in _ANALYSING and t.status.failed_checks >= analysis.failed_checks_threshold:
        _rollback(t)
        return

    if not (yield from _analysed_and_passed(t, routes)):
        return

    strategy = analysis.strategy
    if strategy is Strategy.AB_TESTING:
        yield from _run_ab(t)
    elif strategy is Strategy.BLUE_GREEN:
        yield from _run_blue_green(t, routes)
    else:
        yield from _run_canary(t, routes, analysis.effective_max_weight)


def _should_advance(t: _Tick) -> bool:
    """Flagger's ``shouldAdvance`` (step 15): a run is in progress, or the target changed."""
    if t.status.phase in (
        Phase.PROGRESSING,
        Phase.WAITING,
        Phase.WAITING_PROMOTION,
        Phase.PROMOTING,
        Phase.FINALISING,
    ):
        return True
    changed = has_target_changed(t.status, t.revision)
    if t.status.phase is Phase.FAILED:
        # Flagger syncs lastAppliedSpec while Failed (PR #1171), so reverting the target and
        # re-applying the failed revision starts a new run; the check above used the old value.
        t.record_revision()
    return changed


def _runs_the_promoted_revision(t: _Tick) -> bool:
    """The target runs exactly the revision (and tracked configs) this run analysed."""
    status = t.status
    return t.revision.spec_hash == status.last_applied_spec and not _configs_changed(
        status.tracked_configs, t.revision.configs
    )


def _primary_not_ready(t: _Tick) -> bool:
    """Primary readiness (step 17): a primary that is not ready holds the tick, and one that will
    not become ready fails the promotion or rolls the run back."""
    primary = t.obs.primary
    if t.canary.spec.skip_analysis or primary is None or primary.ready:
        return False
    t.warn(primary.message)  # "<target>-primary.<ns> not ready: ...", as Flagger's error
    if not primary.retriable:
        if t.status.phase in (Phase.PROMOTING, Phase.FINALISING):
            _failed_promotion(t, primary.message)
        else:
            _rollback(t)
    return True


def _outside_a_run(t: _Tick) -> Asks[bool]:
    """Flagger's ``checkCanaryStatus`` (step 19): outside a run, the confirm-rollout gate decides
    whether this tick starts one. True when not in a run: the tick ends here either way."""
    if t.status.phase in (
        Phase.PROGRESSING,
        Phase.WAITING_PROMOTION,
        Phase.PROMOTING,
        Phase.FINALISING,
    ):
        return False
    # Q7: rollback hooks are polled in Waiting too
    if t.status.phase is Phase.WAITING and (yield from _rollback_requested(t)):
        return True
    for outcome in (yield from t.hooks(HookType.CONFIRM_ROLLOUT, t.status.phase)):
        if not outcome.ok:
            if t.status.phase is not Phase.WAITING:
                t.set_phase(Phase.WAITING)
                t.warn(f"Halt {t.cname} advancement waiting for approval {outcome.hook.name}")
                if not outcome.hook.mute_alert:
                    t.alert("Canary is waiting for approval.", "warn")
            return True
        t.info(f"Confirm-rollout check {outcome.hook.name} passed")
    _start_run(t)
    return True


def _revision_changed(t: _Tick) -> bool:
    """Flagger's ``hasCanaryRevisionChanged`` (step 20): a run whose target changed restarts,
    and one whose target went back to the promoted revision is cancelled (Q14)."""
    if t.status.phase not in _ANALYSING:
        return False
    return _restarted_for_new_revision(t)


def _promotion_lost(t: _Tick) -> Asks[bool]:
    """Promoting, and the target no longer runs the revision being promoted. A revision pushed
    during the promotion waits for its own run (as in Flagger), unless the copy of the promoted
    one was never made: the controller stopped between the Promoting status and the copy
    (``_promote``), and the push came meanwhile. That revision can no longer reach the primary,
    and finishing the promotion would record as promoted a revision the primary never ran (a
    later revert of the target to it then starts no run, the primary left on the old one).
    The run goes back to where Flagger, which copies before it writes Promoting, stands after a
    stop before its copy: a run whose target changed, restarted for the new revision (or
    cancelled when the target went back to the promoted one, Q14). True when so."""
    status = t.status
    if not is_own_revision_hash(status.last_applied_spec):
        return False  # a hash Flagger wrote: no copy of ours to look for
    promoted = Revision(
        spec_hash=status.last_applied_spec, configs=dict(status.tracked_configs or {})
    )
    if (yield from t.primary_runs(promoted)) is not False:
        return False
    t.warn(
        f"Promotion of {t.tname} not made: {t.target}-primary.{t.ns} never received the "
        f"promoted revision, and {t.tname} no longer runs it"
    )
    return _restarted_for_new_revision(t)


def _restarted_for_new_revision(t: _Tick) -> bool:
    """The run of a target that changed restarts; one whose target went back to the promoted
    revision is cancelled (Q14). True when either happened."""
    rev = t.revision
    if rev.spec_hash == t.status.last_promoted_spec and rev.spec_hash != t.status.last_applied_spec:
        _cancel_reverted_run(t)  # Q14
        return True
    if has_target_changed(t.status, rev):
        t.info(f"New revision detected! Restarting analysis for {t.tname}")
        t.route(TOTAL_WEIGHT, 0)
        t.sync_status(Phase.PROGRESSING)
        return True
    return False


def _canary_not_ready(t: _Tick) -> bool:
    """Canary readiness (step 21): a canary that is not ready holds the tick, and one past its
    progress deadline rolls the run back."""
    canary = t.obs.canary
    if canary is None or canary.ready:
        return False
    t.warn(canary.message)  # "canary deployment <target>.<ns> not ready: ..."
    deadline = t.canary.spec.progress_deadline_seconds
    if not canary.retriable and not deadline_restarted(t.status, t.now, deadline):
        # Q5: Flagger forgets this alert and event; we raise both.
        t.warn(f"Rolling back {t.cname} progress deadline exceeded {canary.message}")
        t.alert(f"Progress deadline exceeded {canary.message}", "error")
        _rollback(t)
    return True


def _analysis_skipped(t: _Tick) -> bool:
    """Flagger's ``shouldSkipAnalysis`` (step 22): ``skipAnalysis`` promotes at once."""
    if not t.canary.spec.skip_analysis:
        return False
    t.route(TOTAL_WEIGHT, 0)
    t.info(_copying_message(t))  # Flagger announces the copy here too (shouldSkipAnalysis)
    t.effects.append(Promote())
    t.effects.append(ScaleToZero())
    t.set_phase(Phase.SUCCEEDED)
    t.after_status_written()
    t.effects.append(CountOutcome("success", "skipped"))
    # Post-rollout hooks run on a skipped analysis too, before the event (Flagger PR #1918,
    # fluxcd/flagger#1195: a notification pipeline behind post-rollout missed these releases).
    t.effects.append(RunPostRolloutHooks(Phase.SUCCEEDED))
    t.info(f"Promotion completed! Canary analysis was skipped for {t.tname}")
    t.alert("Canary analysis was skipped, promotion finished.", "info")
    return True


def _finalise(t: _Tick) -> None:
    """The primary runs the new revision and takes all traffic: scale the canary down."""
    t.effects.append(ScaleToZero())
    t.set_phase(Phase.SUCCEEDED)
    t.after_status_written()
    t.effects.append(CountOutcome("success"))
    t.effects.append(RunPostRolloutHooks(Phase.SUCCEEDED))
    t.info(f"Promotion completed! Scaling down {t.tname}")
    t.alert("Canary analysis completed successfully, promotion finished.", "info")


def _analysed_and_passed(t: _Tick, routes: Weights) -> Asks[bool]:
    """The analysis (step 28): the pre-rollout hooks before the first step, else the metric
    checks. False when they failed (one more failed check) or were inconclusive (the weight
    holds): the run does not advance this tick."""
    # From here on Flagger times the tick (its deferred SetDuration): the pre-rollout tick, a
    # failing analysis and a promotion step all count, a rollback does not.
    t.analysed = True
    analysis = t.canary.spec.effective_analysis
    if (
        routes.canary == 0
        and t.status.iterations == 0
        and not (analysis.mirror and routes.mirrored)
    ):
        t.info(f"Starting canary analysis for {t.tname}")
        for outcome in (yield from t.hooks(HookType.PRE_ROLLOUT)):
            if not outcome.ok:
                t.warn(
                    f"Halt {t.cname} advancement pre-rollout check {outcome.hook.name} "
                    f"failed {outcome.message}"
                )
                t.set_failed_checks(t.status.failed_checks + 1)
                return False
            t.info(f"Pre-rollout check {outcome.hook.name} passed")
        return True
    verdict = yield from _run_analysis(t)
    if verdict is Verdict.FAIL:
        t.set_failed_checks(t.status.failed_checks + 1)
        return False
    return verdict is not Verdict.INCONCLUSIVE  # inconclusive: _run_analysis counted it


def _start_run(t: _Tick) -> None:
    """The confirm-rollout gate opened (or an operator's promote skipped it): start the run."""
    # Flagger records it (and its event webhooks send it) on a copy already Progressing
    t.info(f"New revision detected! Scaling up {t.tname}", phase=Phase.PROGRESSING)
    t.alert("New revision detected, progressing canary analysis.", "info", metadata=True)
    t.effects.append(ScaleFromZero())
    t.sync_status(Phase.PROGRESSING)


def _adopt_from_flagger(t: _Tick) -> bool:
    """A Canary at rest whose status hashes were written by Flagger (another hash function):
    record the current revision as the one Flagger last saw, instead of mistaking the new hash for
    a new release and re-running (or, when Failed, re-trying) it. Runs once per Canary."""
    applied = t.status.last_applied_spec
    if t.status.phase not in AT_REST or not applied or is_own_revision_hash(applied):
        return False
    t.record_revision(promoted=t.status.phase is not Phase.FAILED)
    t.info(f"Adopted {t.cname} from Flagger: {t.kind} {t.tname} recorded as the current revision")
    return True


def _initialize(t: _Tick) -> Asks[None]:
    spec = t.canary.spec
    if not spec.skip_analysis:
        while not t.obs.provider_checked:
            yield from t.ask(Need(provider_check=True))
        if t.obs.provider_error:
            t.warn(f"Error checking metric providers: {t.obs.provider_error}")
        else:
            t.info("all the metrics providers are available!")
        primary = t.obs.primary
        if primary is not None and not primary.ready:
            t.warn(primary.message)
            if not primary.retriable:
                _rollback(t)
            return
    # The primary was copied from the target when it was created, which may be ticks ago (the
    # wait for its rollout above), or before a controller stopped: a release pushed since is not
    # in it. Recorded as promoted, that release would never be analysed nor reach the primary
    # (Flagger records it so). Left unrecorded, the next tick takes it for a new revision.
    copied = yield from t.primary_runs(t.revision)
    t.effects.append(ScaleToZero())
    t.sync_status(Phase.INITIALIZED)
    t.info(f"Initialization done! {t.cname}")
    t.alert(f"New {t.kind} detected, initialization completed.", "info", metadata=True)
    if copied is False:
        t.status = t.status.replace(
            last_applied_spec="", last_promoted_spec="", tracked_configs=None
        )
        t.warn(
            f"{t.target}-primary.{t.ns} does not run the current template of {t.tname} (it "
            "changed after the primary was created): it is analysed as a new revision"
        )


def _run_analysis(t: _Tick) -> Asks[Verdict]:
    """Rollout hooks, then metric checks; the first failure is the tick's failed check.

    Checks count as their policy says (``CheckResult.counted``): a dry-run check never counts
    (its failure is only an informational event); an inconclusive one holds the weight without a
    failed check while the run's inconclusive budget (``analysis.inconclusiveLimit``) lasts, and
    counts as a failed check after that.
    """
    for outcome in (yield from t.hooks(HookType.ROLLOUT)):
        if not outcome.ok:
            t.warn(
                f"Halt {t.cname} advancement external check {outcome.hook.name} "
                f"failed {outcome.message}"
            )
            return Verdict.FAIL
    inconclusive: CheckResult | None = None
    for result in (yield from t.analysis()):
        counted = result.counted
        if result.dry_run and not result.passed:
            # The check's message says "Halt ...": a dry run halts nothing, so say what it found.
            t.info(
                f"Dry-run metric {result.query.metric} would have failed: "
                f"{result.explanation or result.message}"
            )
        elif counted is Verdict.FAIL:
            t.warn(result.message)
            return Verdict.FAIL
        elif counted is Verdict.INCONCLUSIVE and inconclusive is None:
            inconclusive = result
    if inconclusive is None:
        return Verdict.PASS
    limit = t.canary.spec.effective_analysis.inconclusive_limit
    used = t.status.inconclusive_checks
    reason = inconclusive.explanation or inconclusive.message
    if used >= limit:
        t.warn(
            f"Halt {t.cname} advancement {inconclusive.query.metric} inconclusive "
            f"({reason}); inconclusive limit {limit} reached, counted as a failed check"
        )
        return Verdict.FAIL
    t.set_inconclusive_checks(used + 1)
    t.warn(
        f"Holding {t.cname} at its weight: {inconclusive.query.metric} inconclusive "
        f"({reason}), {used + 1} of {limit} inconclusive checks allowed"
    )
    return Verdict.INCONCLUSIVE


def _rollback_requested(t: _Tick) -> Asks[bool]:
    """Poll rollback hooks; the first that answers 2xx rolls back now (manual abort)."""
    outcomes = yield from t.hooks(HookType.ROLLBACK, t.status.phase)
    for outcome in outcomes:
        if outcome.ok:
            t.warn(f"Rollback check {outcome.hook.name} passed")
            t.warn(f"Rolling back {t.cname} manual webhook invoked")
            t.alert("Rolling back manual webhook invoked", "warn")
            _rollback(t)
            return True
        t.info(f"Rollback hook {outcome.hook.name} not signaling a rollback")
    return False


def _rollback(t: _Tick) -> None:
    threshold = t.canary.spec.effective_analysis.failed_checks_threshold
    if t.status.failed_checks >= threshold:
        t.warn(f"Rolling back {t.cname} failed checks threshold reached {t.status.failed_checks}")
        t.alert(f"Failed checks threshold reached {t.status.failed_checks}", "error")
    t.route(TOTAL_WEIGHT, 0)
    t.warn(f"Canary failed! Scaling down {t.cname}", phase=Phase.FAILED)  # as Flagger's copy
    t.effects.append(ScaleToZero())
    t.sync_status(Phase.FAILED)
    t.after_status_written()
    t.effects.append(CountOutcome("failure"))
    t.effects.append(RunPostRolloutHooks(Phase.FAILED))


def _failed_promotion(t: _Tick, reason: str) -> None:
    t.warn(f"Promotion of {t.tname} failed, primary not ready: {reason}")
    t.alert(f"Promotion failed, primary not ready: {reason}", "error")
    t.route(0, TOTAL_WEIGHT)
    t.sync_status(Phase.FAILED, weight=TOTAL_WEIGHT)
    t.after_status_written()
    t.effects.append(CountOutcome("failure"))
    t.effects.append(RunPostRolloutHooks(Phase.FAILED))


def _cancel_reverted_run(t: _Tick) -> None:
    """Q14: the target went back to the promoted revision mid-analysis; stop analysing it."""
    t.warn(
        f"Canary run cancelled: {t.tname} was reverted to the promoted revision; "
        f"routing all traffic to primary and scaling down {t.tname}"
    )
    # The run ends here, so the chat that saw "New revision detected" hears how (Flagger's run
    # would go on and end with its own alert). Warn: a person chose it, nothing broke.
    t.alert(f"Canary run cancelled: {t.tname} was reverted to the promoted revision", "warn")
    t.route(TOTAL_WEIGHT, 0)
    t.effects.append(ScaleToZero())
    t.sync_status(Phase.FAILED)
    t.after_status_written()
    # Failed like any run that was not promoted: flagger_canary_failures_total counts it, so it
    # moves with flagger_canary_status going to 2, as on every other way to Failed.
    t.effects.append(CountOutcome("failure"))
    t.effects.append(RunPostRolloutHooks(Phase.FAILED))


def _promotion_traffic_shift(t: _Tick, routes: Weights) -> None:
    step = t.canary.spec.effective_analysis.step_weight_promotion or 0
    if step == 0:
        t.info("Routing all traffic to primary")
        t.route(TOTAL_WEIGHT, 0)
        t.set_phase(Phase.FINALISING)
        return
    if routes.canary <= 0:
        t.set_phase(Phase.FINALISING)  # Q15: nothing left to shift back
        return
    stepped = t.status.canary_weight  # the canary weight the last promotion step left
    if 0 < stepped < routes.canary:
        # The router did not keep the last step: ingress-nginx routes header-matched (A/B)
        # traffic all or nothing, so it reports the canary at 100 again. Flagger steps from that
        # forever and never finalises; we finish the promotion in one go instead.
        t.info(
            f"Routing all traffic to primary: the {t.provider} router reports canary weight "
            f"{routes.canary} after the promotion step to {stepped}"
        )
        t.route(TOTAL_WEIGHT, 0)
        t.set_phase(Phase.FINALISING)
        return
    primary = min(TOTAL_WEIGHT, routes.primary + step)
    t.route(primary, TOTAL_WEIGHT - primary)
    t.info(f"Advance {t.cname} primary weight {primary}")
    if primary == TOTAL_WEIGHT:
        t.set_phase(Phase.FINALISING)
    else:
        t.set_weight(TOTAL_WEIGHT - primary)


def _confirm_promotion(t: _Tick) -> Asks[bool]:
    for outcome in (yield from t.hooks(HookType.CONFIRM_PROMOTION)):
        if not outcome.ok:
            if t.status.phase is not Phase.WAITING_PROMOTION:
                t.set_phase(Phase.WAITING_PROMOTION)
                t.warn(
                    f"Halt {t.cname} advancement waiting for promotion approval {outcome.hook.name}"
                )
                if not outcome.hook.mute_alert:
                    t.alert("Canary promotion is waiting for approval.", "warn")
            else:
                t.set_iterations(max(0, t._iterations_goal - 1))
            return False
        t.info(f"Confirm-promotion check {outcome.hook.name} passed")
    return True


def _copying_message(t: _Tick) -> str:
    return f"Copying {t.tname} template spec to {t.target}-primary.{t.ns}"


def _promote(t: _Tick) -> None:
    t.info(_copying_message(t))
    t.set_phase(Phase.PROMOTING)
    # The copy comes once the status saying Promoting is written. A controller that dies before
    # the write finds the run as it was, the primary untouched; one that dies after it finds
    # Promoting, whose ticks copy again (a no-op once done). Copied first, a restart in between
    # found Progressing with the primary already running the new revision, and a failing check
    # then rolled back a release the primary served (Flagger has that gap).
    t.after_status_written()
    t.effects.append(Promote())


def _run_canary(t: _Tick, routes: Weights, max_weight: int) -> Asks[None]:
    analysis = t.canary.spec.effective_analysis
    step = analysis.next_step_weight(routes.canary)
    if step <= 0:
        return  # no stepWeight and no stepWeights: validation prevents this
    if not routes.mirrored and t.status.phase is not Phase.WAITING_PROMOTION:
        for outcome in (yield from t.hooks(HookType.CONFIRM_TRAFFIC_INCREASE)):
            if not outcome.ok:
                t.warn(
                    f"Halt {t.cname} advancement waiting for traffic increase approval "
                    f"{outcome.hook.name}"
                )
                if not outcome.hook.mute_alert:
                    t.alert("Canary traffic increase is waiting for approval.", "warn")
                return
            t.info(f"Confirm-traffic-increase check {outcome.hook.name} passed")
    if routes.canary < max_weight:
        if analysis.mirror and routes.canary == 0:
            # One step of mirroring (canary sees a copy of the traffic) before shifting any.
            weight = 0 if not routes.mirrored else step
            t.route(TOTAL_WEIGHT - weight, weight, mirrored=not routes.mirrored)
            t.set_weight(weight)
            t.info(f"Advance {t.cname} canary weight {weight}")
            return
        canary = min(TOTAL_WEIGHT, routes.canary + step)
        t.route(TOTAL_WEIGHT - canary, canary, mirrored=routes.mirrored)
        t.set_weight(canary)
        t.info(f"Advance {t.cname} canary weight {canary}")
        return
    if (yield from _confirm_promotion(t)):
        _promote(t)


def _run_blue_green(t: _Tick, routes: Weights) -> Asks[None]:
    analysis = t.canary.spec.effective_analysis
    goal = analysis.effective_iterations
    if goal > t.status.iterations:
        if analysis.mirror and router_capabilities(t.provider).mirroring and not routes.mirrored:
            t.route(TOTAL_WEIGHT, 0, mirrored=True)
        t.set_iterations(t.status.iterations + 1)
        t.info(f"Advance {t.cname} canary iteration {t.status.iterations}/{goal}")
        return
    if not (yield from _confirm_promotion(t)):
        return
    if goal == t.status.iterations:
        # Only a router that mirrors has a mirror to stop (Flagger says so for any non-kubernetes).
        if analysis.mirror and router_capabilities(t.provider).mirroring:
            t.info("Stop traffic mirroring and route all traffic to canary")
        else:
            t.info("Routing all traffic to canary")
        t.route(0, TOTAL_WEIGHT)
        t.set_iterations(t.status.iterations + 1)
        return
    if goal < t.status.iterations:
        _promote(t)


def _run_ab(t: _Tick) -> Asks[None]:
    goal = t.canary.spec.effective_analysis.effective_iterations
    if goal > t.status.iterations:
        t.route(0, TOTAL_WEIGHT)
        t.set_iterations(t.status.iterations + 1)
        t.info(f"Advance {t.cname} canary iteration {t.status.iterations}/{goal}")
        return
    if not (yield from _confirm_promotion(t)):
        return
    if goal == t.status.iterations:
        _promote(t)
