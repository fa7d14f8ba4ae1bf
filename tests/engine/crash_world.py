"""A controller killed after any one of its writes: a rollout scenario run on an InMemoryCluster,
once uninterrupted and once per write, each time with the controller "killed" right after that
write (the write is applied, nothing after it in the process happens), then a new controller
(a new driver, with nothing of the old one's memory) on the same cluster runs it to the end.

What a scenario is: the Canary's spec, the router, the metrics' health and the user's actions
(a release once the Canary is Initialized, an operator command once the run reaches a state),
each fired once, the first time its condition holds before a tick. Ticks come every analysis
interval; a restarted controller ticks at once (``RESTART_DELAY`` later), as Flagger's scheduler
starts a Canary's job with a tick and the controller here starts its tasks.

Two variants: the user acts while the controller is down (``while_down``: a release, say), and
the controller survives but the write's answer is lost (``answer_lost``: a 503 for a write the
API server applied), the tick then ending there as after any failed write.

What ``run`` returns (``Run``) is what a user can see: the final status, workloads and routes,
the Events, webhook calls, alerts and outcome counts, every status write, the metric analyses.
Each process has its own cluster connection, and so its own Event correlator
(``engine.shell.events``); the webhook receiver, metrics and alert sink outlive it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from driver_world import NS, Recorder, web_app

from analysis import HookOutcome, MetricQuery, QueryFailure
from config import Webhook, parse_canary
from engine import CanaryDriver, EngineDeps, Settings, VirtualClock
from engine.core.commands import command_patch, encode_command
from engine.core.effects import Alert, CountOutcome
from traffic import (
    CANARY,
    DEPLOYMENT,
    ClusterUnavailable,
    DeploymentWorkload,
    InMemoryCluster,
    ObjectRef,
    router_for,
)

#: Seconds between a controller's death and its successor's first tick.
RESTART_DELAY = 5.0
#: Ticks a scenario may take at most (a run that never ends is a failure).
MAX_TICKS = 60

CANARY_REF = ObjectRef(CANARY, NS, "web")
TARGET = ObjectRef(DEPLOYMENT, NS, "web")
PRIMARY = ObjectRef(DEPLOYMENT, NS, "web-primary")


class Crash(BaseException):
    """The controller process was killed (a BaseException: nothing in the driver catches it)."""


@dataclass(frozen=True, slots=True)
class Write:
    """One mutating request a controller process made."""

    verb: str  # create, patch, patch_status, delete
    ref: str
    body: Any

    def __str__(self) -> str:
        return f"{self.verb} {self.ref} {_short(self.body)}"

    @property
    def key(self) -> tuple[str, str]:
        """What the write was, to compare runs by: an Event's name is random."""
        return self.verb, "Event" if self.ref.startswith("Event/") else self.ref


def _short(body: Any) -> str:
    text = repr(body)
    return text if len(text) <= 160 else text[:157] + "..."


#: Where a controller dies: after its n-th write (counted over the whole run), or after the first
#: write the predicate picks; None: never.
DiesAfter = int | Callable[[Write], bool] | None


class Process:
    """One controller process's connection to the cluster: it records the mutating calls, and
    after the one ``dies_after`` picks (applied) the process is dead: that call and every later
    one raise ``Crash``."""

    def __init__(
        self,
        cluster: InMemoryCluster,
        writes: list[Write],
        dies_after: DiesAfter,
        *,
        survives: bool = False,
    ):
        self._cluster = cluster
        self._writes = writes
        self._dies_after = dies_after
        #: Instead of dying, the process gets a 503 for that write (applied, its answer lost).
        self._survives = survives
        self.dead = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cluster, name)

    def _alive(self) -> None:
        if self.dead:
            raise Crash

    def _wrote(self, write: Write) -> None:
        self._writes.append(write)
        dies = self._dies_after
        if dies is None:
            return
        if len(self._writes) >= dies if isinstance(dies, int) else dies(write):
            if self._survives:
                self._dies_after = None
                raise ClusterUnavailable("503 Service Unavailable (the write was applied)")
            self.dead = True
            raise Crash

    async def get(self, ref: ObjectRef, *, fresh: bool = False) -> Any:
        self._alive()
        return await self._cluster.get(ref, fresh=fresh)

    async def list(self, *args: Any, **kwargs: Any) -> Any:
        self._alive()
        return await self._cluster.list(*args, **kwargs)

    async def create(self, body: Any) -> Any:
        self._alive()
        answer = await self._cluster.create(body)
        self._wrote(Write("create", _ref_of(body), body))
        return answer

    async def patch(self, ref: ObjectRef, patch: Any, **kwargs: Any) -> Any:
        self._alive()
        answer = await self._cluster.patch(ref, patch, **kwargs)
        self._wrote(Write("patch_status" if kwargs.get("status") else "patch", str(ref), patch))
        return answer

    async def delete(self, ref: ObjectRef) -> None:
        self._alive()
        await self._cluster.delete(ref)
        self._wrote(Write("delete", str(ref), None))


def _ref_of(body: Mapping[str, Any]) -> str:
    meta = body.get("metadata") or {}
    return f"{body.get('kind')}/{meta.get('namespace')}/{meta.get('name')}"


class Metrics:
    """Every check reads ``value``; ``fetches`` counts the analyses."""

    def __init__(self, value: float) -> None:
        self.value = value
        self.fetches = 0

    async def fetch(self, queries: Sequence[MetricQuery]) -> list[float | QueryFailure]:
        self.fetches += 1
        return [self.value for _ in queries]


class Hooks(Recorder):
    """Webhooks answer 2xx except those named in ``failing``; calls are kept."""

    def __init__(self, failing: Sequence[str] = ()) -> None:
        super().__init__()
        self.failing = set(failing)

    async def call(self, hook: Webhook, payload: Mapping[str, Any]) -> HookOutcome:
        self.calls.append((hook, payload))
        return HookOutcome(hook, hook.name not in self.failing)


@dataclass(slots=True)
class World:
    """What the user's actions act on: the cluster (as the user writes it), the metrics and
    the webhooks, all of which outlive the controller processes."""

    cluster: InMemoryCluster
    metrics: Metrics
    hooks: Hooks


@dataclass(frozen=True, slots=True)
class Action:
    """A user's action: done once, before the first tick at which ``when`` holds of the
    Canary's stored status. After a ``command`` the controller ticks at once (its watch sees the
    annotation), for the command only; the regular ticks keep their times."""

    name: str
    when: Callable[[Mapping[str, Any]], bool]
    do: Callable[[World], Awaitable[None]]
    command: bool = False


def patch(
    name: str, when: Callable[[Mapping[str, Any]], bool], ref: ObjectRef, body: dict[str, Any]
) -> Action:
    async def do(w: World) -> None:
        await w.cluster.patch(ref, body)

    return Action(name, when, do)


def initialized(status: Mapping[str, Any]) -> bool:
    return status.get("phase") == "Initialized"


def release(version: str, when: Callable[[Mapping[str, Any]], bool] = initialized) -> Action:
    """The target's image becomes ``web:<version>``."""
    containers = [{"name": "web", "image": f"web:{version}"}]
    body = {"spec": {"template": {"spec": {"containers": containers}}}}
    return patch(f"release web:{version}", when, TARGET, body)


def command(name: str, when: Callable[[Mapping[str, Any]], bool], *, full: bool = False) -> Action:
    """An operator command, as ``canary-engine NAME`` writes it."""
    value = encode_command(
        name, command_id=f"{name}-0001", requested_at="2024-01-01T00:00:00Z", full=full
    )
    body = command_patch(value)

    async def do(w: World) -> None:
        await w.cluster.patch(CANARY_REF, body)

    return Action(f"command {name}", when, do, command=True)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    spec: Mapping[str, Any]
    actions: tuple[Action, ...]
    healthy: bool = True
    failing_hooks: tuple[str, ...] = ()
    #: Extra objects to seed (a Gateway API route's gateway, ...).
    objects: tuple[Mapping[str, Any], ...] = ()
    #: Done by the user before the controller starts (after seeding).
    setup: Callable[[World], Awaitable[None]] | None = None


@dataclass(slots=True)
class Run:
    """What a user could see of one run of a scenario."""

    writes: list[Write] = field(default_factory=list)
    crashed_at: Write | None = None
    status: dict[str, Any] = field(default_factory=dict)
    #: (phase, canaryWeight, iterations) of every status the controller stored, in order.
    history: list[tuple[str, int, int, str]] = field(default_factory=list)
    events: Counter[str] = field(default_factory=Counter)
    hooks: Counter[tuple[str, str]] = field(default_factory=Counter)
    alerts: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    analyses: int = 0
    workloads: dict[str, Any] = field(default_factory=dict)
    routes: tuple[int, int, bool] | None = None
    ticks: int = 0
    #: The image of each revision the target ran, by its hash (``status.lastAppliedSpec``).
    images: dict[str, str] = field(default_factory=dict)
    #: The scenario's actions that never found their moment.
    unfired: list[str] = field(default_factory=list)
    #: Every object but the Events and the Canary, without what the API server or chance sets.
    objects: dict[str, Any] = field(default_factory=dict)


def world(scenario: Scenario, clock: VirtualClock) -> InMemoryCluster:
    cluster = InMemoryCluster(now=clock.utcnow)
    cluster.seed(
        *web_app(),
        *(dict(o) for o in scenario.objects),
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "web", "namespace": NS, "uid": "uid-web"},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "service": {"port": 80},
                **scenario.spec,
            },
        },
    )
    return cluster


def _status(cluster: InMemoryCluster) -> dict[str, Any]:
    body = cluster.peek(CANARY_REF) or {}
    return dict(body.get("status") or {})


async def run(
    scenario: Scenario,
    dies_after: DiesAfter = None,
    *,
    while_down: Callable[[World], Awaitable[None]] | None = None,
    answer_lost: bool = False,
) -> Run:
    """The scenario to its end; the first controller dies after its ``dies_after``-th write,
    and ``while_down`` is what the user does before the next one starts. ``answer_lost``: the
    controller does not die, but that write's answer is lost (a 503 for a write applied)."""
    clock = VirtualClock()
    cluster = world(scenario, clock)
    metrics = Metrics(99.9 if scenario.healthy else 50.0)
    hooks = Hooks(scenario.failing_hooks)
    w = World(cluster, metrics, hooks)
    if scenario.setup is not None:
        await scenario.setup(w)
    out = Run()
    alerts: list[Alert] = []
    outcomes: list[CountOutcome] = []

    def controller(budget: DiesAfter) -> CanaryDriver:
        """A new controller process: its own cluster connection (and so its own Event
        correlator) and driver; the webhooks, metrics and alert sinks outlive it."""
        process = Process(cluster, out.writes, budget, survives=answer_lost)

        async def on_alert(_canary: Any, alert: Alert) -> None:
            alerts.append(alert)

        deps = EngineDeps(
            cluster=process,  # type: ignore[arg-type]
            clock=clock,
            workload=DeploymentWorkload(process),  # type: ignore[arg-type]
            router_for=lambda provider: router_for(provider, process),  # type: ignore[arg-type]
            metrics=metrics,
            webhooks=hooks,
            settings=Settings(),
            on_alert=on_alert,
            on_outcome=lambda _canary, outcome: outcomes.append(outcome),
        )
        return CanaryDriver(deps, NS, "web")

    async def note_revision() -> None:
        body = cluster.peek(CANARY_REF)
        if body is None:
            return
        revision = await DeploymentWorkload(cluster).revision(parse_canary(body))
        target = cluster.peek(TARGET) or {}
        containers = target["spec"]["template"]["spec"]["containers"]
        out.images[revision.spec_hash] = str(containers[0]["image"])

    driver = controller(dies_after)
    await note_revision()
    pending = list(scenario.actions)
    interval = 60.0
    resting = 0
    for _ in range(MAX_TICKS):
        commands_only = False
        for action in list(pending):
            if action.when(_status(cluster)):
                pending.remove(action)
                await action.do(w)
                await note_revision()
                commands_only = action.command
        try:
            # an actor on the clock: a retry's backoff sleeps on virtual time
            report = await clock.run(driver.tick(commands_only=commands_only))
            out.ticks += 1
            interval = report.interval or interval
        except Crash:
            out.crashed_at = out.writes[-1]
            if while_down is not None:
                await while_down(w)
                await note_revision()
            driver = controller(None)
            clock.advance(RESTART_DELAY)
            continue
        stored = _status(cluster)
        if report.missing and not pending:
            break  # deleted (revertOnDeletion): finalized and let go
        if commands_only:
            continue  # the regular tick still comes at its time
        if report.at_rest:
            resting += 1
            # done; or, with actions left, done once they had a few ticks to fire and did not
            # (a release while the controller was down changed the course of the run)
            ended = stored.get("phase") in ("Succeeded", "Failed")
            if (ended and not pending) or resting > 3:
                out.unfired = [a.name for a in pending]
                break
        else:
            resting = 0
        clock.advance(interval)
    else:
        raise AssertionError(f"{scenario.name}: no end after {MAX_TICKS} ticks: {_status(cluster)}")

    out.status = _status(cluster)
    out.history = _history(out.writes)
    for event in cluster.events_for(NS, "web"):
        out.events[str(event["message"])] += int(event.get("count") or 1)
    for hook, payload in hooks.calls:
        if hook.type != "event":
            out.hooks[(hook.name, str(payload.get("phase")))] += 1
    out.alerts.update(a.message for a in alerts)
    out.outcomes.update(o.outcome for o in outcomes)
    out.analyses = metrics.fetches
    for ref in (TARGET, PRIMARY):
        body = cluster.peek(ref) or {}
        spec = body.get("spec") or {}
        containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or [{}]
        out.workloads[ref.name] = (spec.get("replicas"), containers[0].get("image"))
    out.objects = _objects(cluster)
    provider = str(scenario.spec.get("provider") or "kubernetes")
    body = cluster.peek(CANARY_REF)
    if body is not None:
        routes = await router_for(provider, cluster).get_routes(parse_canary(body))
        out.routes = (routes.weights.primary, routes.weights.canary, routes.weights.mirrored)
    return out


#: Metadata the server sets.
_VOLATILE = ("resourceVersion", "uid", "generation", "creationTimestamp", "managedFields")


def _objects(cluster: InMemoryCluster) -> dict[str, Any]:
    """The objects, as after garbage collection: once the Canary is gone, so are those it owns
    (the in-memory cluster has no garbage collector)."""
    found: dict[str, Any] = {}
    deleted = cluster.peek(CANARY_REF) is None
    for ref in sorted(cluster._objects, key=str):  # the store, as a test sees it
        if ref.kind.kind in ("Event", "Canary"):
            continue
        body = json.loads(json.dumps(cluster.peek(ref)))
        owners = body["metadata"].get("ownerReferences") or ()
        if deleted and any(o.get("kind") == "Canary" for o in owners):
            continue
        for key in _VOLATILE:
            body["metadata"].pop(key, None)
        body.pop("status", None)
        found[str(ref)] = body
    return found


def _history(writes: Sequence[Write]) -> list[tuple[str, int, int, str]]:
    """(phase, canaryWeight, iterations, lastAppliedSpec) after each status write of the
    Canary."""
    current: dict[str, Any] = {}
    history: list[tuple[str, int, int, str]] = []
    for w in writes:
        if w.verb != "patch_status" or w.ref != str(CANARY_REF):
            continue
        for key, value in (w.body.get("status") or {}).items():
            if value is None:
                current.pop(key, None)
            elif key in ("phase", "canaryWeight", "iterations", "lastAppliedSpec"):
                current[key] = value
        history.append(
            (
                str(current.get("phase", "")),
                int(current.get("canaryWeight", 0)),
                int(current.get("iterations", 0)),
                str(current.get("lastAppliedSpec", "")),
            )
        )
    return history
