"""The thin async driver around the decision core: observe, decide, act, persist — one tick at a
time. A tick is a conversation with the core (``start_decision``): the driver gathers what each
``Need`` asks and answers it, until the core returns its ``Decision``.

``CanaryDriver.tick()`` re-reads the Canary, gathers what the core asks for (reconciling routing
objects and the primary, reading revision / readiness / routes, calling webhooks, running metric
analysis), carries out the effects in order and writes the status through the status subresource.
All state that must survive a restart is in that status; the driver keeps none between ticks.

Failure policy: an error while reconciling or acting is reported as a Warning event on the Canary;
ends the tick without writing status, so the next tick retries from the same persisted state; it is
never counted as a failed check (flagger-behaviour §2.9).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

from analysis import (
    Check,
    CheckResult,
    HookOutcome,
    JudgeTick,
    MetricQuery,
    MetricSource,
    WebhookCaller,
    analyze,
    judge_ticks,
    plan_checks,
    plan_queries,
    redact,
    webhook_payload,
)
from config import (
    DEFAULT_MESH_PROVIDER,
    Canary,
    CanaryEngineError,
    CanaryMemo,
    CanaryStatus,
    HookType,
    MetricTemplate,
    Phase,
    SpecError,
    Webhook,
    cross_namespace_problems,
    parse_metric_template,
)
from engine.core.commands import (
    Command,
    handled_command_id,
    handled_record,
    ignored_event,
    pending_command,
    read_command,
    start_command_decision,
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
    StatusWritten,
)
from engine.core.machine import AT_REST, start_decision
from engine.shell.clock import Clock, stamp, stamp_of
from engine.shell.events import event_name, write_event
from engine.shell.last_analysis import record_hook_answers, record_tick
from traffic import (
    CANARY,
    METRIC_TEMPLATE,
    Cluster,
    ClusterUnavailable,
    Conflict,
    ObjectRef,
    Router,
    Routes,
    Workload,
    builtin_queries_provider,
    status_cookies,
)

log = structlog.get_logger("canary-engine")

#: How many times a status write is retried after a resourceVersion conflict.
_STATUS_RETRIES = 3
#: Seconds between the retries of a promotion's status write that the API answered 429 / 5xx.
_PROMOTION_STATUS_BACKOFF = (1.0, 2.0, 4.0)
#: Condition type written on a Canary whose spec is invalid (Flagger only has "Promoted").
INVALID_CONDITION = "Validated"
#: Flagger's finalizer, present while spec.revertOnDeletion is true.
FINALIZER = "finalizer.flagger.app"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Controller-wide defaults (Flagger's flags)."""

    mesh_provider: str = DEFAULT_MESH_PROVIDER
    metrics_server: str = "http://prometheus:9090"
    event_source: str = "flagger"
    #: Flagger's -event-webhook: every event of a Canary with no ``type: event`` webhook of its
    #: own is sent there ("" for none).
    event_webhook: str = ""
    #: Flagger's -no-cross-namespace-refs: a Canary whose template, alert provider or upstream
    #: reference names another namespace is refused (``config.cross_namespace_problems``).
    no_cross_namespace_refs: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineDeps:
    """The seams a driver works through; built only by the CLI and simulate (no globals)."""

    cluster: Cluster
    clock: Clock
    workload: Workload
    router_for: Callable[[str], Router]
    metrics: MetricSource
    webhooks: WebhookCaller
    settings: Settings = field(default_factory=Settings)
    #: Availability check of the metric providers a canary's checks use ("" when fine), run in
    #: the Initializing phase (Flagger's IsOnline); receives the planned queries.
    provider_check: Callable[[Sequence[MetricQuery]], Awaitable[str]] | None = None
    #: Receives alerts (notifiers); simulate collects them.
    on_alert: Callable[[Canary, Alert], Awaitable[None]] | None = None
    #: Receives promotion/rollback counts (Prometheus metrics recorder).
    on_outcome: Callable[[Canary, CountOutcome], None] | None = None
    #: Call ``type: event`` webhooks for every event, as Flagger does.
    event_webhooks: bool = True
    #: Scores a canary's checks; the controller passes a batcher so all canaries due at the same
    #: moment are scored in one evaluator pass. None: ``analyze(metrics, queries)`` directly.
    analyzer: Callable[[Sequence[Check]], Awaitable[list[CheckResult]]] | None = None
    #: Judges a canary's judged checks; the controller passes a batcher (one series fetch and one
    #: judge pass for all canaries due at the same moment). None: ``judge_ticks`` directly.
    judge: Callable[[JudgeTick], Awaitable[list[CheckResult]]] | None = None
    #: Called after every tick of a parsed Canary (Prometheus metrics, logs).
    on_tick: Callable[[Canary, TickReport], None] | None = None
    #: The time the metric sources speak, which a judge's series requests are built in: Unix
    #: seconds for live providers (``run`` passes the clock's wall time; its ``now()`` is the
    #: event loop's monotonic clock). None: ``clock.now()``, the time ``simulate``'s recorded
    #: sources speak (seconds of the recording).
    metric_time: Callable[[], float] | None = None


@dataclass(slots=True, kw_only=True)
class TickReport:
    """What one tick did, for simulate's timeline, logs and tests."""

    t: float
    status: CanaryStatus | None = None
    routes: Routes | None = None
    checks: tuple[CheckResult, ...] = ()
    events: list[Event] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    hook_calls: list[HookOutcome] = field(default_factory=list)
    error: str | None = None
    interval: float = 60.0
    #: Seconds the tick took (clock time), for flagger_canary_duration_seconds.
    duration: float = 0.0
    #: The tick reached the analysis step, where Flagger starts timing it.
    analysed: bool = False
    #: The Canary no longer exists (its task can end).
    missing: bool = False
    #: The operator command this tick handled (``promote``, ``promote --full``, ...), if any.
    command: str | None = None

    @property
    def at_rest(self) -> bool:
        """The Canary is at rest (Initialized, Succeeded or Failed: only watching for a new
        revision) and this tick did nothing but look: no error, event, check, webhook or
        command. At rest, a tick is a function of what it reads from the cluster alone (no
        timer runs), so while none of that changes the next tick would decide the same."""
        return (
            self.status is not None
            and self.status.phase in AT_REST
            and self.error is None
            and not self.missing
            and self.command is None
            and not (self.events or self.alerts or self.checks or self.hook_calls)
        )


class _AbortTick(Exception):
    pass


@dataclass(slots=True)
class _Tick:
    """The facts of one tick that its steps share: the Canary as read (body and parsed), the
    mesh provider it resolved to, that provider's router (looked up once, on first use), where
    its metric queries go (the builtin queries' provider and the default Prometheus), and the
    report."""

    body: Mapping[str, Any]  # read-only, as the cluster hands it out
    canary: Canary
    provider: str
    report: TickReport
    router_for: Callable[[str], Router]
    #: The provider whose builtin request-success-rate / request-duration queries run.
    builtin_queries: str
    #: The Prometheus address of metrics without their own (the Canary's, else the controller's).
    metrics_server: str
    _router: Router | None = None
    #: When the tick decided (the decision's ``now``): the time its status fields carry, so
    #: ``lastAnalysis.time`` equals a ``lastTransitionTime`` set by the same tick.
    decided_at: datetime | None = None

    @property
    def router(self) -> Router:
        if self._router is None:
            self._router = self.router_for(self.provider)
        return self._router


class CanaryDriver:
    """Drives one Canary (identified by namespace/name) one tick at a time."""

    def __init__(
        self,
        deps: EngineDeps,
        namespace: str,
        name: str,
        *,
        dropped_reported: set[ObjectRef] | None = None,
    ) -> None:
        """``dropped_reported``: the Canaries whose dropped status fields have been reported,
        shared by every driver of a process (the controller makes a new driver for a Canary after
        an error), so that each is reported once."""
        self._deps = deps
        self._ref = ObjectRef(CANARY, namespace, name)
        self._parsed = CanaryMemo()  # every tick reads the Canary; its spec rarely changes
        self._dropped_reported = dropped_reported if dropped_reported is not None else set()

    @property
    def ref(self) -> ObjectRef:
        return self._ref

    async def tick(self, *, commands_only: bool = False) -> TickReport:
        """One tick. A pending operator command (engine.core.commands) is handled instead of the
        regular advance. ``commands_only``: the controller was woken by a new command between
        two regular ticks; do nothing unless a command is still pending (it may have been handled
        by a tick in between), so no check is ever counted ahead of its interval."""
        deps = self._deps
        report = TickReport(t=deps.clock.now())
        body = await deps.cluster.get(self._ref)
        if body is None:
            report.missing = True
            report.error = f"canary {self._ref.namespace}/{self._ref.name} not found"
            return report
        canary = await self._parse(body, report)
        if canary is None:
            return report
        report.interval = canary.spec.effective_analysis.interval_seconds
        persisted = CanaryStatus.from_body(body.get("status"))
        # A spec that was invalid and is now fixed: drop the Validated=False condition.
        status = persisted.replace(
            conditions=tuple(c for c in persisted.conditions if c.type != INVALID_CONDITION)
        )
        provider = canary.spec.provider or deps.settings.mesh_provider
        command = pending_command(canary.metadata.annotations, status)
        if commands_only and command is None:
            return report
        report.command = command.label if command is not None else None
        settings = deps.settings
        t = _Tick(
            body,
            canary,
            provider,
            report,
            deps.router_for,
            builtin_queries=builtin_queries_provider(canary.spec.provider, settings.mesh_provider),
            metrics_server=canary.spec.metrics_server or settings.metrics_server,
        )
        with structlog.contextvars.bound_contextvars(canary=canary.ref, phase=status.phase.value):
            try:
                if await self._finalizer(t, persisted):
                    return report
                decision = await self._decide(t, status, command)
                report.analysed = decision.analysed
                now_effects, once_written = _split_at_status_write(decision.effects)
                await self._act(t, decision, now_effects)
                # Routes before the write, so the achieved split goes into the same patch.
                routes_read = decision.status.phase is not Phase.NONE
                if routes_read:
                    report.routes = await self._routes(t)
                recorded = record_tick(
                    persisted,
                    decision.status,
                    checks=report.checks,
                    hook_calls=report.hook_calls,
                    hooks=canary.spec.effective_analysis.webhooks,
                    routes=report.routes,
                    when=stamp_of(t.decided_at) if t.decided_at else stamp(deps.clock),
                )
                # Flagger's session-affinity cookie fields, for the routes this tick wrote
                recorded = recorded.replace(
                    extra=status_cookies(canary, recorded.canary_weight, recorded.extra)
                )
                promoted = any(isinstance(e, Promote) for e in decision.effects)
                version = (body.get("metadata") or {}).get("resourceVersion")
                report.status = await self._persist(
                    t, version, persisted, recorded, promoted=promoted
                )
                if once_written:
                    report.status = await self._after_status_written(
                        t, decision, once_written, report.status
                    )
                handled = report.status.last_command
                if command is not None and handled is not None and handled.id == command.id:
                    # carried out and recorded: it will not run again (engine.core.commands)
                    log.info(
                        "command_handled",
                        command=handled.command,
                        id=handled.id,
                        outcome=redact(handled.outcome),
                    )
            except _AbortTick as exc:
                report.error = str(exc)
                await self._emit(t, Event("Warning", str(exc)))
                report.status = status
                routes_read = False
            if (
                not routes_read
                and report.status is not None
                and report.status.phase is not Phase.NONE
            ):
                report.routes = await self._routes(t)
            report.duration = deps.clock.now() - report.t
            if deps.on_tick is not None:
                deps.on_tick(canary, report)
            _log_tick(report, report.status or status)
        return report

    async def _parse(self, body: Mapping[str, Any], report: TickReport) -> Canary | None:
        """The Canary of ``body``, or None when it is invalid (reported: the Validated=False
        condition and a Warning event, ``report.error``)."""
        settings = self._deps.settings
        try:
            canary = self._parsed.parse(body, default_provider=settings.mesh_provider)
            # A Canary being deleted is finalized whatever it references, as Flagger's sync
            # handler finalizes before it verifies anything.
            deleting = bool((body.get("metadata") or {}).get("deletionTimestamp"))
            if settings.no_cross_namespace_refs and not deleting:
                blocked = cross_namespace_problems(canary)
                if blocked:
                    raise SpecError(blocked)
        except SpecError as exc:
            report.error = exc.render()
            await self._report_invalid(body, exc, report)
            return None
        return canary

    async def _routes(self, t: _Tick) -> Routes | None:
        """What the router reports now (None when it cannot tell: shown as unknown)."""
        try:
            return await t.router.get_routes(t.canary)
        except CanaryEngineError:
            return None

    # -- revertOnDeletion ------------------------------------------------------------------

    async def _finalizer(self, t: _Tick, status: CanaryStatus) -> bool:
        """Keep ``finalizer.flagger.app`` in step with ``spec.revertOnDeletion`` and, when the
        Canary is being deleted, revert the target and routing before letting it go (Flagger's
        finalize, flagger-behaviour §2.15). True when this tick was spent on that."""
        canary = t.canary
        meta = t.body.get("metadata") or {}
        finalizers = [str(f) for f in meta.get("finalizers") or []]
        has = FINALIZER in finalizers
        version = meta.get("resourceVersion")
        try:
            if meta.get("deletionTimestamp"):
                if has:
                    await self._finalize(t, status)
                return True
            if canary.spec.revert_on_deletion and not has:
                await self._deps.cluster.patch(
                    self._ref,
                    {"metadata": {"finalizers": [*finalizers, FINALIZER]}},
                    expect_version=version,
                )
            elif not canary.spec.revert_on_deletion and has:
                rest = [f for f in finalizers if f != FINALIZER]
                await self._deps.cluster.patch(
                    self._ref, {"metadata": {"finalizers": rest or None}}, expect_version=version
                )
        except Conflict:
            return True  # the Canary changed under us: look again next tick
        except CanaryEngineError as exc:
            raise _AbortTick(str(exc)) from exc
        return False

    async def _finalize(self, t: _Tick, status: CanaryStatus) -> None:
        deps, canary = self._deps, t.canary
        if status.phase is not Phase.TERMINATING:
            now = stamp(deps.clock)
            terminating = status.replace(phase=Phase.TERMINATING, last_transition_time=now)
            await deps.cluster.patch(self._ref, {"status": terminating.to_body()}, status=True)
            t.report.status = terminating
            await self._emit(t, Event("Normal", f"Terminating canary {canary.dotted}"))
        await deps.workload.finalize(canary)
        ready = await deps.workload.readiness(canary, primary=False, now=deps.clock.utcnow())
        if not ready.ready:
            raise _AbortTick(f"canary not ready during finalizing: {ready.message}")
        # the apex Service (the kubernetes router, whatever the default provider), then the mesh
        for name in dict.fromkeys(("kubernetes", t.provider)):
            await deps.router_for(name).finalize(canary)
        # A merge patch replaces the whole list: read it again and write it only if nobody changed
        # the Canary meanwhile, or another controller's finalizer added during the steps above
        # would be dropped (a Conflict retries the whole finalizing next tick; each step is
        # idempotent).
        fresh = await deps.cluster.get(self._ref)
        if fresh is None:
            return
        meta = fresh.get("metadata") or {}
        rest = [f for f in meta.get("finalizers") or () if f != FINALIZER]
        await deps.cluster.patch(
            self._ref,
            {"metadata": {"finalizers": rest or None}},
            expect_version=meta.get("resourceVersion"),
        )
        await self._emit(t, Event("Normal", f"Terminated canary {canary.dotted}"))

    # -- observe and decide ----------------------------------------------------------------

    async def _decide(
        self, t: _Tick, status: CanaryStatus, command: Command | None = None
    ) -> Decision:
        canary, provider = t.canary, t.provider
        obs = Observation()
        now = t.decided_at = self._deps.clock.utcnow()
        if command is None:
            decider = start_decision(canary, status, obs, now=now, provider=provider)
        else:
            decider = start_command_decision(
                canary, status, obs, command, now=now, provider=provider
            )
        result = decider.start()
        for _ in range(32):  # each Need is answered once; the bound guards against a loop bug
            if isinstance(result, Decision):
                return result
            obs = await self._gather(t, result, status, obs)
            result = decider.answer(obs)
        raise _AbortTick("internal error: the decision did not converge")

    async def _gather(
        self, t: _Tick, need: Need, status: CanaryStatus, obs: Observation
    ) -> Observation:
        deps, canary = self._deps, t.canary
        fields: dict[str, Any] = {}
        try:
            if need.reconcile:
                router = t.router
                await router.initialize(canary)
                await deps.workload.initialize(canary)
                await router.reconcile(canary)
                now = deps.clock.utcnow()
                fields.update(
                    reconciled=True,
                    revision=await deps.workload.revision(canary),
                    primary=await deps.workload.readiness(canary, primary=True, now=now),
                    canary=await deps.workload.readiness(canary, primary=False, now=now),
                    routes=await router.get_routes(canary),
                )
            if need.hooks is not None:
                outcomes = await self._call_hooks(canary, status, need.hooks, need.hook_phase)
                t.report.hook_calls.extend(outcomes)
                fields["hooks"] = {**obs.hooks, need.hooks: tuple(outcomes)}
            if need.analysis:
                results = await self._analyze(t, status)
                t.report.checks = tuple(results)
                fields["analysis"] = tuple(results)
            if need.primary_runs is not None:
                runs = await deps.workload.primary_runs(canary, need.primary_runs)
                fields["primary_runs"] = (need.primary_runs, runs)
            if need.provider_check:
                check = deps.provider_check
                if check is None:
                    error = ""
                else:
                    templates = await self._templates(canary)
                    queries = self._queries(t, templates, "canary")
                    error = await check(_in_spec_order(canary, queries))
                fields.update(provider_checked=True, provider_error=error)
        except CanaryEngineError as exc:
            raise _AbortTick(str(exc)) from exc
        return dataclasses.replace(obs, **fields)

    async def _call_hooks(
        self, canary: Canary, status: CanaryStatus, hook_type: HookType, phase: Phase
    ) -> list[HookOutcome]:
        """Call the hooks of one type in spec order. All stop at the first failure, except
        rollback hooks, which stop at the first success (a rollback request)."""
        outcomes: list[HookOutcome] = []
        payload_base = (
            canary.metadata.name,
            canary.metadata.namespace,
            phase.value,
            _checksum(status),
        )
        for hook in canary.spec.effective_analysis.hooks(hook_type):
            payload = webhook_payload(*payload_base, hook.metadata or {})
            outcome = await self._deps.webhooks.call(hook, payload)
            outcomes.append(outcome)
            if outcome.ok == (hook_type is HookType.ROLLBACK):
                break
        return outcomes

    async def _analyze(self, t: _Tick, status: CanaryStatus) -> list[CheckResult]:
        canary = t.canary
        templates = await self._templates(canary)
        checks = plan_checks(
            canary, templates, provider=t.builtin_queries, default_server=t.metrics_server
        )
        if self._deps.analyzer is not None:
            results = await self._deps.analyzer(checks)
        else:
            results = await analyze(self._deps.metrics, checks)
        judged = any(m.judge is not None for m in canary.spec.effective_analysis.metrics)
        clock = self._deps.clock
        now = (self._deps.metric_time or clock.now)()
        tick = JudgeTick(
            canary=canary,
            results=results,
            # the primary's queries are only asked for by a judge
            primary_queries=self._queries(t, templates, "primary") if judged else (),
            now=now,
            start=_analysis_start(status, clock, canary, now) if judged else now,
        )
        if judged and self._deps.judge is not None:
            return await self._deps.judge(tick)
        # Without a judge this only applies the metrics' policies (dryRun, onNoData): no I/O.
        return (await judge_ticks(self._deps.metrics, [tick]))[0]

    async def _templates(self, canary: Canary) -> dict[tuple[str, str], MetricTemplate]:
        """The MetricTemplates the canary's metrics name, read through the cluster (its cache)."""
        templates: dict[tuple[str, str], MetricTemplate] = {}
        for metric in canary.spec.effective_analysis.metrics:
            if metric.template_ref is None:
                continue
            ns = metric.template_ref.namespace or canary.metadata.namespace
            key = (ns, metric.template_ref.name)
            if key in templates:
                continue
            body = await self._deps.cluster.get(ObjectRef(METRIC_TEMPLATE, ns, key[1]))
            if body is not None:
                try:
                    templates[key] = parse_metric_template(body)
                except SpecError:
                    pass  # reported by plan_checks as a missing/invalid template check failure
        return templates

    @staticmethod
    def _queries(
        t: _Tick,
        templates: dict[tuple[str, str], MetricTemplate],
        target: Literal["canary", "primary"],
    ) -> list[MetricQuery]:
        """Only the queries of the checks (for ``target``): what the provider check and a
        judge's primary series ask, without bounds."""
        return plan_queries(
            t.canary,
            templates,
            provider=t.builtin_queries,
            default_server=t.metrics_server,
            target=target,
        )

    async def _report_invalid(
        self, body: Mapping[str, Any], exc: SpecError, report: TickReport
    ) -> None:
        """A malformed Canary gets a Warning event and a ``Validated=False`` condition, once per
        distinct problem, and is not driven; other canaries are unaffected. An operator command
        sent meanwhile is ignored, with the reason, and recorded as handled: held until the spec
        is fixed, it would act on whatever revision runs then."""
        message = redact(exc.render())
        status = body.get("status") or {}
        conditions = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
        current = next((c for c in conditions if c.get("type") == INVALID_CONDITION), None)
        command = read_command((body.get("metadata") or {}).get("annotations"))
        if command is not None and command.id == handled_command_id(body):
            command = None
        if command is None and current is not None and current.get("message") == message:
            return
        now = stamp(self._deps.clock)
        patch: dict[str, Any] = {}
        if command is not None:
            reason = (
                "the Canary's spec is invalid (see its Validated condition); fix it, then send "
                "the command again"
            )
            name = f"{self._ref.name}.{self._ref.namespace}"
            await self._record_event(
                body, report, Event("Warning", ignored_event(command, name, reason))
            )
            patch["lastCommand"] = handled_record(command, f"ignored: {reason}", now).to_body()
        if current is not None and current.get("message") == message:
            await self._write_invalid_status(patch)
            return
        condition = {
            "type": INVALID_CONDITION,
            "status": "False",
            "reason": "InvalidSpec",
            "message": message,
            "lastUpdateTime": now,
            "lastTransitionTime": now,
        }
        others = [c for c in conditions if c.get("type") != INVALID_CONDITION]
        await self._record_event(body, report, Event("Warning", f"Invalid canary spec: {message}"))
        await self._write_invalid_status({**patch, "conditions": [*others, condition]})

    async def _write_invalid_status(self, status: dict[str, Any]) -> None:
        try:
            await self._deps.cluster.patch(self._ref, {"status": status}, status=True)
        except CanaryEngineError as err:
            log.warning("status_not_written", error=str(err))

    # -- act and persist -------------------------------------------------------------------

    async def _unless_primary_rolling_out(self, t: _Tick) -> None:
        """After a Promoting tick's copy (``Promote.recheck``): a primary it set rolling out ends
        the tick before traffic moves (engine.core.effects.Promote)."""
        readiness = await self._deps.workload.readiness(
            t.canary, primary=True, now=self._deps.clock.utcnow()
        )
        if not readiness.ready:
            raise _AbortTick(
                "the primary was given the promoted revision again (its copy had not been "
                f"made); waiting for it before moving traffic: {readiness.message}"
            )

    async def _after_status_written(
        self, t: _Tick, decision: Decision, effects: Sequence[Effect], written: CanaryStatus
    ) -> CanaryStatus:
        """The once-only effects of a run's end (post-rollout hooks, the outcome count, the
        final event and alert), now that its status is written; then the hooks' answers into
        ``lastAnalysis`` (without a precondition: only this controller writes the status, and
        the phase it acted on is already stored). That second write is best effort: the run's
        end is written whatever becomes of it, so its failure is only logged."""
        before = len(t.report.hook_calls)
        await self._act(t, decision, effects)
        answers = t.report.hook_calls[before:]
        if not answers:
            return written
        recorded = record_hook_answers(
            written,
            answers,
            hooks=t.canary.spec.effective_analysis.webhooks,
            when=stamp(self._deps.clock),
        )
        try:
            return await self._persist(t, None, written, recorded, promoted=False)
        except _AbortTick as exc:
            log.warning("last_analysis_not_written", error=redact(str(exc)))
            return written

    async def _act(self, t: _Tick, decision: Decision, effects: Sequence[Effect]) -> None:
        deps, canary = self._deps, t.canary
        for effect in effects:
            try:
                if isinstance(effect, Event):
                    await self._emit(t, effect)
                elif isinstance(effect, Alert):
                    t.report.alerts.append(effect)
                    if deps.on_alert is not None:
                        await deps.on_alert(canary, effect)
                elif isinstance(effect, SetRoutes):
                    await t.router.set_routes(canary, effect.weights)
                elif isinstance(effect, Promote):
                    await deps.workload.promote(canary)
                    if effect.recheck:
                        await self._unless_primary_rolling_out(t)
                elif isinstance(effect, ScaleToZero):
                    await deps.workload.scale_to_zero(canary)
                elif isinstance(effect, ScaleFromZero):
                    await deps.workload.scale_from_zero(canary)
                elif isinstance(effect, RunPostRolloutHooks):
                    await self._post_rollout(t, decision.status, effect.phase)
                elif isinstance(effect, CountOutcome) and deps.on_outcome is not None:
                    deps.on_outcome(canary, effect)
            except CanaryEngineError as exc:
                raise _AbortTick(str(exc)) from exc

    async def _post_rollout(self, t: _Tick, status: CanaryStatus, phase: Phase) -> None:
        outcomes = await self._call_hooks(t.canary, status, HookType.POST_ROLLOUT, phase)
        t.report.hook_calls.extend(outcomes)
        for outcome in outcomes:
            if outcome.ok:
                event = Event("Normal", f"Post-rollout check {outcome.hook.name} passed", phase)
            else:
                message = f"Post-rollout hook {outcome.hook.name} failed {outcome.message}"
                event = Event("Warning", message, phase)
            await self._emit(t, event)

    async def _report_dropped(
        self, t: _Tick, written: Mapping[str, Any], stored: Mapping[str, Any]
    ) -> None:
        """Say once per Canary, in the log and as a Warning event on it, that a status write
        came back without fields it set (``written`` against the ``stored`` answer): a CRD that
        does not declare them (Flagger's own) prunes them without a word to the client, and the
        state they hold is lost between ticks."""
        kept = stored.get("status") or {}
        dropped = sorted(k for k, v in written.items() if v is not None and k not in kept)
        if not dropped or self._ref in self._dropped_reported:
            return
        self._dropped_reported.add(self._ref)
        fields = ", ".join(dropped)
        log.error("status_fields_dropped", fields=dropped)
        message = (
            f"The API server dropped the status fields {fields} of {t.canary.dotted}: the "
            "Canary CRD installed does not declare them (Flagger's own CRD?), so canary-engine "
            "loses that state between ticks. Install canary-engine's CRDs, Flagger's schema with "
            "these fields (kubectl apply -f config/deploy/crd/ from canary-engine's repository)"
        )
        await self._record_event(t.body, t.report, Event("Warning", message))

    async def _emit(self, t: _Tick, event: Event) -> None:
        """Record a Kubernetes Event on the Canary and call its event webhooks."""
        event = await self._record_event(t.body, t.report, event)
        await self._call_event_hooks(t, event)

    async def _record_event(
        self, body: Mapping[str, Any], report: TickReport, event: Event
    ) -> Event:
        """Record a Kubernetes Event on the Canary (reason Synced, as Flagger); the event as
        recorded. The message is redacted first: a provider's answer or a quoted spec value may
        carry a password, token or chat-hook address (README "Security and limits")."""
        deps = self._deps
        event = dataclasses.replace(event, message=redact(event.message))
        report.events.append(event)
        meta = body.get("metadata") or {}
        when = stamp(deps.clock)
        log.log(
            20 if event.type == "Normal" else 30,
            "event_recorded",
            type=event.type,
            message=event.message,
        )
        # Written as Flagger's client-go recorder writes it: a repeat of the same event updates
        # the Event first written for it (count, lastTimestamp), within a spam budget per Canary
        # (engine.shell.events). report.events above keeps every event.
        await write_event(
            deps.cluster,
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {
                    "name": event_name(str(meta.get("name", "canary"))),
                    "namespace": meta.get("namespace", "default"),
                },
                "involvedObject": {
                    "apiVersion": body.get("apiVersion", "flagger.app/v1beta1"),
                    "kind": "Canary",
                    "name": meta.get("name"),
                    "namespace": meta.get("namespace"),
                    "uid": meta.get("uid"),
                    "resourceVersion": meta.get("resourceVersion"),
                },
                "reason": "Synced",
                "message": event.message,
                "type": event.type,
                "source": {"component": deps.settings.event_source},
                "firstTimestamp": when,
                "lastTimestamp": when,
                "count": 1,
            },
            deps.clock.now(),
        )
        return event

    async def _call_event_hooks(self, t: _Tick, event: Event) -> None:
        deps, canary = self._deps, t.canary
        if not deps.event_webhooks:
            return
        hooks = canary.spec.effective_analysis.hooks(HookType.EVENT)
        if not hooks and deps.settings.event_webhook:
            hooks = [_global_event_hook(deps.settings.event_webhook)]
        if hooks:  # the status is parsed only for a Canary that has event webhooks
            status = CanaryStatus.from_body(t.body.get("status"))
            checksum = _checksum(status)
            for hook in hooks:
                metadata = {
                    "eventMessage": event.message,
                    "eventType": event.type,
                    "timestamp": str(int(deps.clock.utcnow().timestamp() * 1000)),
                }
                metadata.update(
                    {k: v for k, v in (hook.metadata or {}).items() if k not in metadata}
                )
                payload = webhook_payload(
                    canary.metadata.name,
                    canary.metadata.namespace,
                    (event.phase or status.phase).value,
                    checksum,
                    metadata,
                )
                await deps.webhooks.call(hook, payload)

    async def _persist(
        self,
        t: _Tick,
        version: str | None,
        old: CanaryStatus,
        new: CanaryStatus,
        *,
        promoted: bool,
    ) -> CanaryStatus:
        """Write ``new`` over ``old``, on condition that the Canary is still at ``version``
        (None: unconditionally); report fields the server did not keep (``_report_dropped``)."""
        if new == old:
            return new
        patch = _status_patch(old.to_body(), new.to_body())
        conflicts = 0
        # A promotion's status (Promoting) is written before the copy to the primary, which runs
        # only once it is (engine.core.machine._promote): lost, the next tick analyses again,
        # the primary untouched. A 429 / 5xx on this write is still retried a few times, so
        # that a decided promotion is not analysed again for one busy answer.
        waits = list(_PROMOTION_STATUS_BACKOFF) if promoted else []
        reread = False
        while True:
            try:
                if reread:
                    # Someone else wrote the Canary (a spec edit): our status is still the right
                    # one for the state we acted on: re-read the version and write again, as
                    # Flagger does. (Inside the try: a failed read ends the tick like a failed
                    # write; escaping as a task crash, the tick was retried a second later and
                    # analysed the step the routes had just reached for that second only.)
                    # From the server: the cache may not hold the version that beat ours yet
                    # (its watch event lags), and three writes against it would all conflict.
                    fresh = await self._deps.cluster.get(self._ref, fresh=True)
                    if fresh is None:
                        return new
                    version = (fresh.get("metadata") or {}).get("resourceVersion")
                stored = await self._deps.cluster.patch(
                    self._ref, {"status": patch}, status=True, expect_version=version
                )
            except Conflict:
                conflicts += 1
                if conflicts >= _STATUS_RETRIES:
                    break
                reread = True
            except ClusterUnavailable as exc:
                if not waits:
                    # e.g. a 500: end the tick like any other failed write (Warning event, next
                    # tick retries a full interval later), not as a task crash retried within a
                    # second, which would cut short the analysis of the step the routes reached.
                    raise _AbortTick(f"status of {self._ref} could not be written: {exc}") from exc
                # (a lost answer may have applied the write: the retry then conflicts, re-reads)
                await self._deps.clock.sleep(waits.pop(0))
            except CanaryEngineError as exc:
                raise _AbortTick(f"status of {self._ref} could not be written: {exc}") from exc
            else:
                await self._report_dropped(t, patch, stored)
                return new
        raise _AbortTick(f"status of {self._ref} could not be written: conflicting updates")


def _in_spec_order(canary: Canary, queries: Sequence[MetricQuery]) -> list[MetricQuery]:
    """``queries`` in the order of their metrics in ``analysis.metrics`` (the plan puts the
    builtin and inline ones first), as Flagger's provider check walks the metrics. The plan keeps
    the spec's order within each pass, so each query takes the next metric of its name and kind
    (two metrics may share a name, the empty one included)."""
    positions: dict[tuple[str, bool], list[int]] = {}
    for i, metric in enumerate(canary.spec.effective_analysis.metrics):
        positions.setdefault((metric.name, metric.template_ref is not None), []).append(i)
    taken: dict[tuple[str, bool], int] = {}

    def position(query: MetricQuery) -> int:
        key = (query.metric, query.template is not None)
        found = positions.get(key, [])
        n = taken[key] = taken.get(key, -1) + 1
        return found[n] if n < len(found) else len(canary.spec.effective_analysis.metrics)

    return sorted(queries, key=position)


def _split_at_status_write(
    effects: Sequence[Effect],
) -> tuple[Sequence[Effect], Sequence[Effect]]:
    """The effects to carry out before the status write, and those only once it is written."""
    for i, effect in enumerate(effects):
        if isinstance(effect, StatusWritten):
            return effects[:i], effects[i + 1 :]
    return effects, ()


def _checksum(status: CanaryStatus) -> str:
    """Flagger's webhook payload checksum: stable for the same (trackedConfigs, lastAppliedSpec)."""
    blob = json.dumps([sorted((status.tracked_configs or {}).items()), status.last_applied_spec])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _log_tick(report: TickReport, status: CanaryStatus) -> None:
    """The tick's log lines: each judged check's verdict with its explanation, then the tick."""
    for check in report.checks:
        if check.explanation:  # a judged check: its verdict and why, with the numbers
            log.info(
                "check_judged",
                metric=check.query.metric,
                verdict=check.verdict.name.lower(),
                dry_run=check.dry_run,
                explanation=check.explanation,
            )
    log.info(
        "tick_completed",
        phase=status.phase.value,
        canary_weight=status.canary_weight,
        failed_checks=status.failed_checks,
        checks=len(report.checks),
        events=len(report.events),
    )


async def run_canary_loop(
    driver: CanaryDriver,
    clock: Clock,
    *,
    until: Callable[[TickReport], bool],
    on_tick: Callable[[TickReport], None] | None = None,
) -> Sequence[TickReport]:
    """Tick every analysis interval until ``until(report)`` is true; return the reports."""
    reports: list[TickReport] = []
    while True:
        report = await driver.tick()
        reports.append(report)
        if on_tick is not None:
            on_tick(report)
        if until(report):
            return reports
        await clock.sleep(report.interval)


def _analysis_start(status: CanaryStatus, clock: Clock, canary: Canary, now: float) -> float:
    """When the analysis of this revision started, in the time of ``now`` (the metric sources'):
    ``status.analysisStartTime``, which every run start sets (a new revision, a restart on
    another one, a retry), kept in the status so a restarted controller finds the same start.
    Under Flagger's CRD, which drops that field, the Promoted condition's lastTransitionTime:
    it turns Unknown when a new revision is detected and stays so until the run ends (a restart
    does not move it, so the canary's samples of the replaced revision are read too). Without
    either, the last interval only."""
    condition = status.promoted
    marks = [status.analysis_start_time]
    if condition is not None and condition.status == "Unknown":
        marks.append(condition.last_transition_time)
    for mark in marks:
        try:
            since = datetime.fromisoformat(mark)
        except ValueError:
            continue
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return now - max(0.0, (clock.utcnow() - since).total_seconds())
    return now - canary.spec.effective_analysis.interval_seconds


@functools.cache
def _global_event_hook(url: str) -> Webhook:
    """Flagger's ``-event-webhook`` as the webhook it calls (named ``events``)."""
    return Webhook(name="events", url=url, type="event")


def _status_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that writes the status ``new`` over ``old``: every field of ``new``, and
    null (RFC 7386's delete) for what ``new`` no longer has, at any depth. A field gone from the
    top (``pausedAt`` after resume) and a key gone from a map field are both removed: a merge
    patch merges maps, so ``trackedConfigs`` without a ConfigMap the release stopped using would
    otherwise keep it, and every later tick would see the configs changed and restart the
    analysis (Flagger writes the whole status with UpdateStatus)."""
    patch: dict[str, Any] = {}
    for key, value in new.items():
        was = old.get(key)
        if isinstance(value, Mapping) and isinstance(was, Mapping):
            patch[key] = _status_patch(was, value)
        else:
            patch[key] = value
    for key in old:
        if key not in new:
            patch[key] = None
    return patch
