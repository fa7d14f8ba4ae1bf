"""The soak: a fleet of canaries released over and over under injected faults, on virtual time.

The controller is wired as ``canary-engine run`` wires it (``Controller`` over ``EngineDeps``
with the batching analyzer and judge, the Prometheus metrics recorder, the deployment workload
and the ``kubernetes`` router), but on a ``VirtualClock`` against an ``InMemoryCluster`` wrapped
in the fault injectors of ``_soak_faults``. A release is a new pod-template annotation on the
target Deployment (as ``simulate`` starts a run); a fraction of releases are bad (their metrics
fail the bounds). Each canary is released again a few intervals after its last rollout was
decided, ``releases`` times; the run ends when every rollout is decided, or at the tick bound.

What is checked, per rollout (``SoakObserver``), from the reports the driver hands ``on_tick``,
from every analysis the driver asks for (a wrapper around the batching analyzer sees even the
analysis of a tick that crashed later) and from the cluster itself:

* every rollout is decided (Succeeded or Failed) within ``stuck_after`` intervals and by the
  end of the run;
* every promotion (the tick whose events say ``Copying <target> template spec``) happened on a
  tick whose analysis passed, whose metric answers were all a healthy release's (no missing,
  faulty or garbage answer), of a good release, after at least as many passing analyses as the
  steps to ``maxWeight`` need; and no two analyses of a run were less than half an interval
  apart (a step is analysed for an interval, not for the second a crashed tick took to retry);
* after a rollout is decided the primary runs the released revision if it succeeded and not if
  it failed, and never a bad release;
* memory (Python's allocated blocks after a collection, and RSS) sampled every few intervals:
  at steady state (``SoakResult.steady_samples``) the second half does not grow beyond a small
  bound over the first.
"""

from __future__ import annotations

import asyncio
import gc
import math
import random
import resource
import statistics
import sys
import time
from collections import Counter
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

import structlog
from _soak_faults import FaultLog, FaultRates, FaultyCluster, FaultyMetrics, FaultyWebhooks

from analysis import Check, CheckResult, Verdict
from config import Canary, Phase
from engine import EngineDeps, Settings, TickReport, VirtualClock
from engine.shell.controller import BatchingAnalyzer, BatchingJudge, Controller, ControllerOptions
from engine.shell.metrics import MetricsRecorder
from traffic import DEPLOYMENT, DeploymentWorkload, InMemoryCluster, ObjectRef, router_for

#: Pod-template annotation that carries a release's name ("r<n>-good" / "r<n>-bad").
REVISION = "soak.canary-engine.io/revision"
NAMESPACES = 10
STEP_WEIGHT = 20
MAX_WEIGHT = 60
#: Passing analysis ticks a promotion needs: one per step after the first, one to promote.
PASSES_NEEDED = MAX_WEIGHT // STEP_WEIGHT
THRESHOLD = 5
_MAX_VIOLATIONS = 50


@dataclass(slots=True, kw_only=True)
class SoakConfig:
    canaries: int = 1000
    #: Releases per canary: the first spread over ``stagger`` intervals, each next one 1 to
    #: ``pause`` intervals after the previous rollout was decided.
    releases: int = 10
    #: The run's bound, in analysis intervals of virtual time (every canary ticks once in each):
    #: a run still undecided there ends with its rollouts reported undecided.
    ticks: int = 10_000
    interval: int = 60
    #: Fraction of releases whose metrics fail the bounds.
    bad_fraction: float = 0.3
    stagger: int = 20
    pause: int = 5
    #: A rollout not decided after this many intervals counts as stuck.
    stuck_after: int = 100
    #: Take a memory sample every this many intervals.
    sample_every: int = 10
    #: Intervals the fake API server keeps an Event (the API server's --event-ttl, 1 h by
    #: default): short, so the store stops growing early and the samples measure the controller.
    event_ttl: int = 10
    rates: FaultRates = field(default_factory=FaultRates)
    seed: int = 1
    #: Print the memory samples to stderr as they are taken.
    verbose: bool = False


@dataclass(frozen=True, slots=True)
class MemorySample:
    t: float  # virtual seconds
    ticks: int  # canary ticks so far
    wall: float  # seconds since the start
    blocks: int  # sys.getallocatedblocks() after gc.collect()
    rss_kib: int  # resident set size (VmRSS)
    in_flight: int  # rollouts running
    finished: int  # canaries whose every release is decided


@dataclass(slots=True)
class _Rollout:
    """One canary's current release and what its run has shown so far."""

    key: str
    ready: bool = False  # initialised: a release can start a run
    release: int = 0
    good: bool = True
    released_at: float = 0.0
    running: bool = False  # released and not decided yet
    stuck: bool = False  # reported as undecided after ``stuck_after`` intervals
    started: bool = False  # the run was seen Progressing
    passes: int = 0  # analyses of this run whose checks all passed
    analysed_at: float = -math.inf  # when the last analysis of this run ran
    analysis_passed: bool = False  # ... and whether all its checks passed
    next_release: float = math.inf


@dataclass(slots=True)
class SoakResult:
    config: SoakConfig
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    virtual_seconds: float = 0.0
    ticks: int = 0
    tick_errors: int = 0
    releases: Counter[str] = field(default_factory=Counter)  # good / bad
    decisions: Counter[str] = field(default_factory=Counter)  # "good promoted", ...
    promotions: int = 0
    decision_ticks_max: float = 0.0
    undecided: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    #: Canary watches the controller opened (one, plus one per reopening after a drop).
    watches: int = 0
    #: What the controller logged at WARNING and above, by level and event. Only counted when no
    #: logger was cached before (a fresh process): structlog binds a cached logger for good.
    logs: Counter[str] = field(default_factory=Counter)
    memory: list[MemorySample] = field(default_factory=list)

    @property
    def decided(self) -> int:
        return sum(self.decisions.values())

    def steady_samples(self) -> list[MemorySample]:
        """The samples taken at steady state: after the first releases were spread and the
        fake API server's Events began to expire, and before any canary had all its releases
        decided (the fleet winds down from there). All samples after the warm-up when there are
        too few of those."""
        config = self.config
        warm = [
            s for s in self.memory if s.t >= (config.stagger + config.event_ttl) * config.interval
        ]
        steady = [s for s in warm if s.finished == 0]
        return steady if len(steady) >= 4 else (warm if len(warm) >= 4 else self.memory)

    def memory_growth(self) -> MemoryGrowth:
        """How memory moved over the steady samples: the peak of their second half against the
        median of their first half, and the median's drift per canary tick."""
        samples = self.steady_samples()
        first, second = samples[: len(samples) // 2], samples[len(samples) // 2 :]
        if not first or not second:
            return MemoryGrowth(0.0, 0.0, 0.0, 0, len(samples))
        blocks = statistics.median(s.blocks for s in first)
        rss = statistics.median(s.rss_kib for s in first)
        ticks = statistics.median(s.ticks for s in second) - statistics.median(
            s.ticks for s in first
        )
        drift = statistics.median(s.blocks for s in second) - blocks
        return MemoryGrowth(
            blocks=max(s.blocks for s in second) / blocks - 1,
            rss=max(s.rss_kib for s in second) / rss - 1,
            blocks_per_tick=drift / max(1.0, ticks),
            ticks=samples[-1].ticks - samples[0].ticks,
            samples=len(samples),
        )


@dataclass(frozen=True, slots=True)
class MemoryGrowth:
    blocks: float  # fraction: Python's allocated blocks (peak of 2nd half / median of 1st - 1)
    rss: float  # fraction: resident set size, the same way
    blocks_per_tick: float  # drift of the median, per canary tick (a leaked object a tick: >= 1)
    ticks: int  # canary ticks the steady samples span
    samples: int


def canary_body(namespace: str, name: str, interval: int) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "service": {"port": 80, "targetPort": 8080},
            "analysis": {
                "interval": f"{interval}s",
                "threshold": THRESHOLD,
                "stepWeight": STEP_WEIGHT,
                "maxWeight": MAX_WEIGHT,
                "metrics": [
                    {
                        "name": "request-success-rate",
                        "interval": "1m",
                        "thresholdRange": {"min": 99},
                    },
                    {"name": "request-duration", "interval": "1m", "thresholdRange": {"max": 500}},
                ],
                "webhooks": [
                    {
                        "name": "acceptance-test",
                        "type": "pre-rollout",
                        "url": "http://loadtester.test/gate/approve",
                        "timeout": "15s",
                    },
                    {
                        "name": "load-test",
                        "type": "rollout",
                        "url": "http://loadtester.test/",
                        "timeout": "5s",
                        "metadata": {"cmd": f"hey -z 1m http://{name}-canary.{namespace}/"},
                    },
                ],
            },
        },
    }


def deployment_body(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "replicas": 10,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": {REVISION: "r0-good"}},
                "spec": {
                    "containers": [
                        {"name": name, "image": f"{name}:1", "ports": [{"containerPort": 8080}]}
                    ]
                },
            },
        },
    }


class SoakObserver:
    """Follows every canary's rollouts from the driver's reports; records violations."""

    def __init__(
        self,
        result: SoakResult,
        metrics: FaultyMetrics,
        cluster: InMemoryCluster,
        *,
        rng: random.Random,
        pause: int,
    ) -> None:
        self.result = result
        self.metrics = metrics
        self.cluster = cluster
        self.rollouts: dict[str, _Rollout] = {}
        self._rng = rng
        self._pause = pause

    def is_good(self, key: str) -> bool:
        rollout = self.rollouts.get(key)
        return rollout is None or rollout.good

    def violation(self, text: str) -> None:
        if len(self.result.violations) < _MAX_VIOLATIONS:
            self.result.violations.append(text)

    def on_tick(self, canary: Canary, report: TickReport) -> None:
        self.result.ticks += 1
        if report.error:
            self.result.tick_errors += 1
        key = canary.ref
        r = self.rollouts.setdefault(key, _Rollout(key))
        phase = report.status.phase if report.status is not None else None
        if phase in (Phase.INITIALIZED, Phase.SUCCEEDED, Phase.FAILED) and not r.running:
            r.ready = True
        if not r.running:
            return
        if phase is Phase.PROGRESSING:
            r.started = True
        if any(e.message.startswith("Copying ") for e in report.events):
            self._check_promotion(r, report)
        if r.started and phase in (Phase.SUCCEEDED, Phase.FAILED):
            self._decided(r, canary, phase == Phase.SUCCEEDED, report.t)

    def on_analysis(self, results: Sequence[CheckResult], now: float, interval: float) -> None:
        """Every analysis the driver asks for, even one of a tick that later crashed."""
        if not results:
            return
        r = self.rollouts[results[0].query.canary]
        if not r.running:
            return
        if now - r.analysed_at < interval / 2:
            self.violation(
                f"{r.key} release r{r.release}: analysed at t={now:g}, "
                f"{now - r.analysed_at:g}s after the previous analysis (interval {interval:g}s)"
            )
        r.analysed_at = now
        r.analysis_passed = all(c.verdict is Verdict.PASS for c in results)
        r.passes += r.analysis_passed

    def _check_promotion(self, r: _Rollout, report: TickReport) -> None:
        self.result.promotions += 1
        where = f"{r.key} release r{r.release} at t={report.t:g}"
        if not r.good:
            self.violation(f"{where}: a bad release was promoted")
        if not report.checks or any(c.verdict is not Verdict.PASS for c in report.checks):
            verdicts = [c.verdict.name for c in report.checks]
            self.violation(f"{where}: promoted on a tick whose checks did not all pass {verdicts}")
        if r.analysed_at < report.t or not r.analysis_passed:
            self.violation(f"{where}: promoted without a passing analysis on that tick")
        answered = self.metrics.last.get(r.key)
        if answered != "healthy":
            self.violation(f"{where}: promoted on a tick whose metric answers were {answered}")
        if r.passes < PASSES_NEEDED:
            self.violation(
                f"{where}: promoted after {r.passes} passing analysis ticks, {PASSES_NEEDED} needed"
            )

    def _decided(self, r: _Rollout, canary: Canary, promoted: bool, t: float) -> None:
        quality = "good" if r.good else "bad"
        self.result.decisions[f"{quality} {'promoted' if promoted else 'rolled back'}"] += 1
        interval = canary.spec.effective_analysis.interval_seconds
        took = (t - r.released_at) / interval
        self.result.decision_ticks_max = max(self.result.decision_ticks_max, took)
        revision = f"r{r.release}-{quality}"
        primary = self.cluster.peek(
            ObjectRef(
                DEPLOYMENT, canary.metadata.namespace, f"{canary.spec.target_ref.name}-primary"
            )
        )
        running = (
            ((primary or {}).get("spec", {}).get("template", {}).get("metadata") or {})
            .get("annotations", {})
            .get(REVISION)
        )
        if promoted and running != revision:
            self.violation(f"{r.key}: {revision} succeeded but the primary runs {running}")
        if not promoted and running == revision:
            self.violation(f"{r.key}: {revision} failed but the primary runs it")
        if running is not None and running.endswith("-bad"):
            self.violation(f"{r.key}: the primary runs the bad release {running}")
        r.running = r.started = False
        r.ready = True
        r.next_release = t + interval * (1 + self._rng.random() * (self._pause - 1))


async def run_soak(config: SoakConfig) -> SoakResult:
    """Run the soak on a fresh virtual clock; returns the figures and any violation."""
    result = SoakResult(config)
    counted_logs = result.logs
    old_logging = structlog.get_config()

    def count_and_drop(_: Any, level: str, event: MutableMapping[str, Any]) -> Any:
        counted_logs[f"{level} {event.get('event')}"] += 1
        raise structlog.DropEvent

    structlog.configure(
        processors=[count_and_drop],
        wrapper_class=structlog.make_filtering_bound_logger(30),
        cache_logger_on_first_use=False,
    )
    try:
        return await _run(config, result)
    finally:
        structlog.configure(**old_logging)


async def _run(config: SoakConfig, result: SoakResult) -> SoakResult:
    rng = random.Random(config.seed)
    clock = VirtualClock()
    store = InMemoryCluster(now=clock.utcnow)
    faults = FaultLog(result.faults)
    cluster = FaultyCluster(
        store,
        clock,
        rates=config.rates,
        faults=faults,
        rng=random.Random(rng.random()),
        event_ttl=config.event_ttl * config.interval,
    )
    observer: SoakObserver
    source = FaultyMetrics(
        clock,
        lambda key: observer.is_good(key),
        rates=config.rates,
        faults=faults,
        rng=random.Random(rng.random()),
    )
    observer = SoakObserver(
        result, source, store, rng=random.Random(rng.random()), pause=config.pause
    )
    webhooks = FaultyWebhooks(
        clock, rates=config.rates, faults=faults, rng=random.Random(rng.random())
    )
    recorder = MetricsRecorder(version="soak", mesh_provider="kubernetes")

    batching = BatchingAnalyzer(source, clock)

    async def analyzer(checks: Sequence[Check]) -> list[CheckResult]:
        results = await batching(checks)
        observer.on_analysis(results, clock.now(), float(config.interval))
        return results

    def on_tick(canary: Canary, report: TickReport) -> None:
        recorder.on_tick(canary, report)
        observer.on_tick(canary, report)

    deps = EngineDeps(
        cluster=cluster,
        clock=clock,
        workload=DeploymentWorkload(cluster),
        router_for=lambda provider: router_for(provider, cluster),
        metrics=source,
        webhooks=webhooks,
        settings=Settings(mesh_provider="kubernetes"),
        analyzer=analyzer,
        judge=BatchingJudge(source, clock),
        on_tick=on_tick,
        on_outcome=recorder.on_outcome,
    )
    controller = Controller(
        deps, ControllerOptions(), metrics=recorder, rng=random.Random(rng.random())
    )
    fleet = [(f"team-{i % NAMESPACES}", f"app-{i}") for i in range(config.canaries)]
    for namespace, name in fleet:
        store.seed(deployment_body(namespace, name), canary_body(namespace, name, config.interval))
        key = f"{namespace}/{name}"
        observer.rollouts[key] = _Rollout(
            key, next_release=config.interval * (2 + rng.random() * config.stagger)
        )

    interval = float(config.interval)
    horizon = config.ticks * interval
    sample_every = config.sample_every * interval
    started, cpu_started = time.perf_counter(), time.process_time()

    async def release(namespace: str, name: str, r: _Rollout) -> None:
        r.release += 1
        r.good = rng.random() >= config.bad_fraction
        r.running, r.started, r.stuck, r.passes = True, False, False, 0
        r.analysed_at, r.analysis_passed = -math.inf, False
        r.released_at = clock.now()
        r.next_release = math.inf
        result.releases["good" if r.good else "bad"] += 1
        revision = f"r{r.release}-{'good' if r.good else 'bad'}"
        await store.patch(
            ObjectRef(DEPLOYMENT, namespace, name),
            {"spec": {"template": {"metadata": {"annotations": {REVISION: revision}}}}},
        )

    def sample() -> None:
        gc.collect()
        in_flight = sum(1 for r in observer.rollouts.values() if r.running)
        finished = sum(
            1 for r in observer.rollouts.values() if r.release >= config.releases and not r.running
        )
        result.memory.append(
            MemorySample(
                t=clock.now(),
                ticks=result.ticks,
                wall=time.perf_counter() - started,
                blocks=sys.getallocatedblocks(),
                rss_kib=_rss_kib(),
                in_flight=in_flight,
                finished=finished,
            )
        )
        if config.verbose:
            s = result.memory[-1]
            print(
                f"  t={s.t / interval:>6.0f} intervals  wall {s.wall:7.1f}s  ticks {s.ticks:>9,}"
                f"  in flight {s.in_flight:>5}  done {s.finished:>5}  blocks {s.blocks:>10,}"
                f"  RSS {s.rss_kib / 1024:7.1f} MiB",
                file=sys.stderr,
                flush=True,
            )

    async def conduct() -> None:
        """Release canaries, take memory samples, watch for stuck rollouts; end the run."""
        next_sample = sample_every
        while True:
            await clock.sleep(interval / 6)
            now = clock.now()
            if now >= next_sample:
                sample()
                next_sample += sample_every
            pending = False
            for namespace, name in fleet:
                r = observer.rollouts[f"{namespace}/{name}"]
                if r.running:
                    pending = True
                    if now - r.released_at > config.stuck_after * interval and not r.stuck:
                        r.stuck = True
                        observer.violation(
                            f"{r.key}: release r{r.release} undecided after "
                            f"{config.stuck_after} intervals"
                        )
                elif r.release < config.releases:
                    pending = True
                    if r.ready and now >= r.next_release:
                        await release(namespace, name, r)
            if now >= horizon or not pending:
                return

    runner = asyncio.ensure_future(controller.run())
    try:
        await asyncio.sleep(0)  # the watch delivers the initial ADDED events
        await clock.spawn(conduct())
        if not result.memory or result.memory[-1].t < clock.now():
            sample()
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    result.watches = cluster.watches
    result.wall_seconds = time.perf_counter() - started
    result.cpu_seconds = time.process_time() - cpu_started
    result.virtual_seconds = clock.now()
    for r in observer.rollouts.values():
        if r.running:
            result.undecided.append(f"{r.key} release r{r.release}")
    return result


def _rss_kib() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
