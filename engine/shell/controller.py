"""The controller: one task per Canary, each ticking on its own analysis interval.

It watches Canaries (per namespace, or cluster-wide), keeps one ``CanaryDriver`` task per object,
and stops a task when its Canary is deleted or leaves the label selector. A task that crashes is
logged with its traceback and restarted with exponential backoff; it never stops the others.
Ticks are jittered so thousands of canaries with the same interval do not all fire at once.
Canaries whose ticks land in the same moment are still scored together: ``BatchingAnalyzer``
collects every canary's checks for a short window and scores them in one evaluator pass (and, with
a grouping MetricSource, one query per query shape); ``BatchingJudge`` does the same for judged
checks (one range query per shape, one judge pass).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import anyio
import structlog

from analysis import (
    Check,
    CheckResult,
    Endpoint,
    JudgeTick,
    MetricSource,
    analyze_batches,
    judge_ticks,
    redact,
)
from config import CanaryMemo, SpecError
from engine.core.commands import has_pending_command
from engine.shell.clock import Clock
from engine.shell.loop import CanaryDriver, EngineDeps, TickReport
from engine.shell.metrics import MetricsRecorder
from engine.shell.shards import Shard
from traffic import CANARY, ClusterUnavailable, ObjectRef, ReadLog, TracksReads, WatchEvent

log = structlog.get_logger("canary-engine")

T = TypeVar("T")
R = TypeVar("R")


@dataclass(slots=True)
class _Pending(Generic[T, R]):
    item: T
    future: asyncio.Future[R]


class Batcher(Generic[T, R]):
    """Collects the calls of every canary that asks within ``window`` seconds and answers them
    with one call of ``run`` (one fetch, one numpy pass) for the whole batch.

    Calls are batched by ``key``: only calls of the same key share a run, and so wait for each
    other's slowest query. The analysis batchers key a canary's checks by the metric endpoints
    they ask (the servers, with their provider type and credentials), the only calls a shared
    fetch can merge into one request: a canary whose MetricTemplate asks a hanging Graphite never
    holds a canary that asks only Prometheus (it did, for the Graphite's 5 s timeout, a series'
    60 s). Canaries of one key still wait for each other, at most that endpoint's timeout, since
    they ask the same server.

    A call that arrives while an earlier batch is still running opens a batch of its own: it
    never waits for that batch. (It used to join nothing: the running batch had already taken
    its items, and no flusher was started while that one ran, so the call waited for some later
    canary to ask, for ever if none did.)"""

    def __init__(
        self,
        run: Callable[[list[T]], Awaitable[list[R]]],
        clock: Clock,
        *,
        window: float = 0.05,
        key: Callable[[T], Hashable] = lambda item: None,
    ) -> None:
        self._run = run
        self._clock = clock
        self._window = window
        self._key = key
        #: The calls of the batches flushers are gathering (their window open), by key: a new
        #: call joins its key's, and the first call of a batch starts that batch's flusher.
        self._pending: dict[Hashable, list[_Pending[T, R]]] = {}
        #: Running flushers (held: the event loop keeps only weak references to tasks).
        self._flushers: set[asyncio.Task[None]] = set()
        self.batches = 0  # how many batched calls ran (for tests and benchmarks)

    async def __call__(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        key = self._key(item)
        pending = self._pending.setdefault(key, [])
        pending.append(_Pending(item, future))
        if len(pending) == 1:
            flusher = self._clock.spawn(self._flush(key))
            self._flushers.add(flusher)
            flusher.add_done_callback(self._flushers.discard)
        return await self._clock.wait(future)

    async def _flush(self, key: Hashable) -> None:
        batch: list[_Pending[T, R]] = []
        try:
            try:
                await self._clock.sleep(self._window)
            finally:
                batch = self._pending.pop(key, [])
            self.batches += 1
            results = await self._run([p.item for p in batch])
        except Exception as exc:
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        except BaseException:  # cancelled (the controller stops): so are the waiting calls
            for p in batch:
                p.future.cancel()
            raise
        for p, result in zip(batch, results, strict=True):
            if not p.future.done():
                p.future.set_result(result)


class BatchingAnalyzer(Batcher[Sequence[Check], list[CheckResult]]):
    """Scores the static checks of all canaries that ask the same metric endpoints within
    ``window`` seconds in one evaluator pass (and, with a grouping MetricSource, one query per
    query shape)."""

    def __init__(self, source: MetricSource, clock: Clock, *, window: float = 0.05) -> None:
        async def run(batch: list[Sequence[Check]]) -> list[list[CheckResult]]:
            return await analyze_batches(source, batch)

        super().__init__(run, clock, window=window, key=_endpoints_of_checks)


class BatchingJudge(Batcher[JudgeTick, list[CheckResult]]):
    """Judges the judged checks of all canaries that ask the same metric endpoints within
    ``window`` seconds with one series fetch (one range query per query shape) and one judge
    pass."""

    def __init__(self, source: MetricSource, clock: Clock, *, window: float = 0.05) -> None:
        async def run(batch: list[JudgeTick]) -> list[list[CheckResult]]:
            return await judge_ticks(source, batch)

        super().__init__(run, clock, window=window, key=_endpoints_of_tick)


def _endpoints_of_checks(checks: Sequence[Check]) -> frozenset[Endpoint]:
    """Where a canary's static checks go: its key for the analysis batches."""
    return frozenset(check.query.endpoint for check in checks)


def _endpoints_of_tick(tick: JudgeTick) -> frozenset[Endpoint]:
    """Where a canary's judged checks go (canary and primary series): its key for the judge's
    batches."""
    return frozenset(
        [*(r.query.endpoint for r in tick.results), *(q.endpoint for q in tick.primary_queries)]
    )


@dataclass(slots=True, kw_only=True)
class ControllerOptions:
    namespaces: Sequence[str] = ()
    selector: Mapping[str, str] = field(default_factory=dict)
    jitter: float = 0.1  # fraction of the interval
    max_backoff: float = 300.0
    #: This process's share of the fleet (``run --shards``): other shards' Canaries are ignored.
    shard: Shard = field(default_factory=Shard)
    #: Seconds over which the Canaries already there when ``run`` starts (a restart, a new
    #: leader) get their first tick, at random, instead of all at once; 0 ticks them at once, as
    #: Flagger does. Canaries created later always tick at once.
    startup_spread: float = 0.0


class Controller:
    def __init__(
        self,
        deps: EngineDeps,
        options: ControllerOptions | None = None,
        *,
        metrics: MetricsRecorder | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._deps = deps
        self._options = options or ControllerOptions()
        self._metrics = metrics
        self._rng = rng or random.Random()
        self._tasks: dict[ObjectRef, asyncio.Task[None]] = {}
        #: Set when a Canary's watch event carries an operator command not handled yet: its task
        #: runs a command tick at once instead of waiting for the next interval.
        self._wake: dict[ObjectRef, asyncio.Event] = {}
        #: The Canaries that parse, by namespace (flagger_canary_total), and each one's last parse.
        self._valid: dict[str, set[ObjectRef]] = {}
        self._parsed: dict[ObjectRef, CanaryMemo] = {}
        #: The Canaries whose status fields the API server drops, reported once (CanaryDriver).
        self._dropped_reported: set[ObjectRef] = set()
        self.ready = asyncio.Event()
        self._started = 0.0
        #: The cluster, when it can tell whether what a tick read has changed since (a Canary
        #: at rest then skips ticks that would decide the same: TickReport.at_rest).
        cluster = deps.cluster
        self._reads: TracksReads | None = cluster if isinstance(cluster, TracksReads) else None

    @property
    def running(self) -> set[ObjectRef]:
        return {ref for ref, task in self._tasks.items() if not task.done()}

    async def run(self) -> None:
        """Watch and drive canaries until cancelled; cancelling stops every canary task."""
        namespaces: Sequence[str | None] = list(self._options.namespaces) or [None]
        self._started = self._deps.clock.now()
        try:
            # One watch per namespace in a task group: when one fails or the controller is
            # cancelled, every watch is cancelled with it and none outlives run().
            async with anyio.create_task_group() as group:
                for ns in namespaces:
                    group.start_soon(self._watch, ns)
        finally:
            with anyio.CancelScope(shield=True):  # cleanup runs even when run() is cancelled
                await self._stop_all()

    async def _watch(self, namespace: str | None) -> None:
        """Feed Canary events to ``_handle``. A watch that drops (``ClusterUnavailable``, or
        the stream ends) is opened again after a backoff, instead of ending ``run`` and with it
        every canary task; its initial ADDED list brings back what changed meanwhile (a Canary
        deleted meanwhile ends its own task at its next tick)."""
        backoff = 1.0
        while True:
            try:
                async for event in self._deps.cluster.watch(CANARY, namespace):
                    self._handle(event)
                    self.ready.set()
                    backoff = 1.0
                error = "the watch ended"
            except ClusterUnavailable as exc:
                error = redact(str(exc))
            log.warning("watch_dropped", namespace=namespace or "*", error=error, retry_in=backoff)
            await self._deps.clock.sleep(backoff)
            backoff = min(backoff * 2, self._options.max_backoff)

    def _handle(self, event: WatchEvent) -> None:
        meta = event.body.get("metadata") or {}
        ref = ObjectRef(CANARY, str(meta.get("namespace", "default")), str(meta.get("name")))
        labels = meta.get("labels") or {}
        selected = all(
            labels.get(k) == v for k, v in self._options.selector.items()
        ) and self._options.shard.owns(ref.namespace, ref.name)
        if event.type == "DELETED" or not selected:
            task = self._tasks.pop(ref, None)
            self._wake.pop(ref, None)
            if task is not None:
                task.cancel()
                log.info("canary_forgotten", canary=f"{ref.namespace}/{ref.name}")
        else:
            task = self._tasks.get(ref)
            if task is None or task.done():
                self._tasks[ref] = self._deps.clock.spawn(self._drive(ref, self._first_delay()))
            elif has_pending_command(event.body):
                self._wake.setdefault(ref, asyncio.Event()).set()
        self._update_totals(ref, event.body if event.type != "DELETED" and selected else None)

    def _update_totals(self, ref: ObjectRef, body: Mapping[str, object] | None) -> None:
        """Re-count the namespace of the canary that changed. Only that canary is parsed: every
        status write comes back as a watch event, so re-parsing all canaries here would make a
        controller of N canaries parse N^2 of them."""
        if self._metrics is None:
            return
        valid = self._valid.setdefault(ref.namespace, set())
        valid.discard(ref)
        if body is None:
            self._parsed.pop(ref, None)
        else:
            memo = self._parsed.setdefault(ref, CanaryMemo())
            try:
                memo.parse(dict(body), default_provider=self._deps.settings.mesh_provider)
                valid.add(ref)
            except SpecError:
                pass
        self._metrics.set_total(ref.namespace, len(valid))

    def _first_delay(self) -> float:
        """0 (tick at once, as Flagger does), or, for a Canary found within ``startup_spread``
        seconds of the start, a random delay within it: a controller that starts with thousands
        of Canaries spreads their first ticks (and their API writes and queries) over that
        time instead of sending them all at once."""
        spread = self._options.startup_spread
        if spread <= 0 or self._deps.clock.now() - self._started > spread:
            return 0.0
        return self._rng.uniform(0.0, spread)

    async def _drive(self, ref: ObjectRef, first_delay: float = 0.0) -> None:
        """One canary's life: tick, sleep a jittered interval, repeat; restart with backoff on a
        crash. Flagger runs the first tick immediately when a canary is scheduled; so do we,
        unless the controller is starting with a ``startup_spread``."""
        clock = self._deps.clock
        if first_delay > 0:
            await clock.sleep(first_delay)
        backoff = 1.0
        wake = self._wake.setdefault(ref, asyncio.Event())
        with structlog.contextvars.bound_contextvars(canary=f"{ref.namespace}/{ref.name}"):
            while True:
                driver = CanaryDriver(
                    self._deps, ref.namespace, ref.name, dropped_reported=self._dropped_reported
                )
                try:
                    resting: tuple[ReadLog, TickReport] | None = None
                    while True:
                        wake.clear()  # this tick handles any command already written
                        if resting is not None and resting[0].unchanged():
                            # At rest and nothing it read has changed: this tick would decide
                            # the same as the last one, so it is skipped (no copy, no parse).
                            report = resting[1]
                        else:
                            report, reads = await self._tick(driver)
                            resting = (
                                (reads, report) if reads is not None and report.at_rest else None
                            )
                        backoff = 1.0
                        if report.missing:
                            return
                        spread = self._options.jitter * report.interval
                        due = clock.now() + report.interval + self._rng.uniform(-spread, spread)
                        # Between regular ticks, a new operator command is handled at once; the
                        # regular ticks keep their times (a command never counts a check).
                        while await self._nap(due - clock.now(), wake):
                            wake.clear()
                            if (await driver.tick(commands_only=True)).missing:
                                return
                except asyncio.CancelledError:
                    raise
                except ClusterUnavailable as exc:
                    # The API server is busy or down (429/5xx, a transport error): expected in
                    # a fleet, so one warning line, no traceback; retried with the same backoff.
                    log.warning("canary_read_unavailable", error=redact(str(exc)), retry_in=backoff)
                    await clock.sleep(backoff)
                    backoff = min(backoff * 2, self._options.max_backoff)
                except Exception:
                    log.exception("canary_task_crashed", retry_in=backoff)
                    await clock.sleep(backoff)
                    backoff = min(backoff * 2, self._options.max_backoff)

    async def _tick(self, driver: CanaryDriver) -> tuple[TickReport, ReadLog | None]:
        """One regular tick, with what it read when the cluster can track that."""
        if self._reads is None:
            return await driver.tick(), None
        with self._reads.track_reads() as reads:
            report = await driver.tick()
        return report, reads

    async def _nap(self, seconds: float, wake: asyncio.Event) -> bool:
        """Sleep on the clock for ``seconds``, or until ``wake`` is set: True when woken."""
        if seconds <= 0:
            return False
        if wake.is_set():
            return True
        clock = self._deps.clock
        # The sleeper is started (its deadline on the clock's heap) before this canary task, a
        # clock actor, parks in clock.wait: virtual time then moves on to that deadline when
        # every actor is parked. Neither helper is an actor; the finally clause cancels and
        # awaits both, so none outlives the nap, and cancelling this task ends them too.
        sleeper = asyncio.ensure_future(clock.sleep(seconds))
        woken = asyncio.ensure_future(wake.wait())
        try:
            await clock.wait(asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED))
        finally:
            for task in (sleeper, woken):
                task.cancel()
            await asyncio.gather(sleeper, woken, return_exceptions=True)
        return wake.is_set()

    async def _stop_all(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
