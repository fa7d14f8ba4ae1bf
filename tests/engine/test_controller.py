"""The controller against an in-memory cluster on virtual time: many canaries, isolation of a bad
one, crash restarts, batching of analysis, and Flagger's Prometheus metrics."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from analysis import HookOutcome, MetricQuery, QueryFailure, Series, SeriesRequest
from config import Canary, Webhook
from engine import EngineDeps, Settings, VirtualClock
from engine.shell.controller import BatchingAnalyzer, BatchingJudge, Controller, ControllerOptions
from engine.shell.metrics import GO_DEFAULT_BUCKETS, MetricsRecorder
from traffic import CANARY, DEPLOYMENT, DeploymentWorkload, InMemoryCluster, ObjectRef, router_for

NS = "staging"


class HealthySource:
    """Every canary is healthy: 99.9 % success, 120 ms; counts fetch calls and batch sizes. Series
    (for judged metrics) are a flat 120 ms every minute for an hour back, canary and primary."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.series_calls: list[int] = []

    async def fetch(self, queries: Sequence[MetricQuery]) -> list[float | QueryFailure]:
        self.calls.append(len(queries))
        return [99.9 if q.metric == "request-success-rate" else 120.0 for q in queries]

    async def fetch_series(self, requests: Sequence[SeriesRequest]) -> list[Series | QueryFailure]:
        self.series_calls.append(len(requests))
        out: list[Series | QueryFailure] = []
        for r in requests:
            times = np.arange(r.end, max(r.start, r.end - 3600) - 1e-9, -r.step)[::-1]
            out.append(Series(times.astype(float), np.full(times.shape, 120.0)))
        return out


class AlwaysOk:
    async def call(self, hook: Webhook, payload: Mapping[str, Any]) -> HookOutcome:
        return HookOutcome(hook, True)


def canary_body(name: str, **analysis: Any) -> dict[str, Any]:
    spec_analysis: dict[str, Any] = {
        "interval": "1m",
        "threshold": 2,
        "stepWeight": 50,
        "maxWeight": 50,
        "metrics": [
            {"name": "request-success-rate", "thresholdRange": {"min": 99}},
            {"name": "request-duration", "thresholdRange": {"max": 500}},
        ],
    }
    spec_analysis.update(analysis)
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}"},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "service": {"port": 80},
            "analysis": spec_analysis,
        },
    }


def deployment(name: str, image: str = "v1") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": f"{name}:{image}"}]},
            },
        },
    }


class Harness:
    def __init__(
        self,
        *,
        workload_hook: Callable[[], None] | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.clock = VirtualClock()
        self.cluster = InMemoryCluster(now=self.clock.utcnow)
        self.source = HealthySource()
        self.analyzer = BatchingAnalyzer(self.source, self.clock, window=0.05)
        self.judge = BatchingJudge(self.source, self.clock, window=0.05)
        self.metrics = MetricsRecorder(version="test", mesh_provider="kubernetes")
        workload = DeploymentWorkload(self.cluster)
        if workload_hook is not None:
            workload = _Flaky(workload, workload_hook)  # type: ignore[assignment]
        self.deps = EngineDeps(
            cluster=self.cluster,
            clock=self.clock,
            workload=workload,
            router_for=lambda provider: router_for(provider, self.cluster),
            metrics=self.source,
            webhooks=AlwaysOk(),
            settings=settings or Settings(),
            analyzer=self.analyzer,
            judge=self.judge,
            on_tick=self.metrics.on_tick,
            on_outcome=self.metrics.on_outcome,
        )
        self.controller = Controller(self.deps, ControllerOptions(jitter=0.0), metrics=self.metrics)

    def warnings(self, name: str) -> list[str]:
        return [e["message"] for e in self.cluster.events_for(NS, name) if e["type"] == "Warning"]

    def phase(self, name: str) -> str:
        body = self.cluster.peek(ObjectRef(CANARY, NS, name))
        assert body is not None
        return str((body.get("status") or {}).get("phase", ""))

    async def run_until(self, done: Callable[[], bool], *, limit: float = 3600) -> float:
        """Run the controller until ``done()`` holds (checked every virtual second)."""
        runner = asyncio.ensure_future(self.controller.run())
        start = self.clock.now()

        async def watch() -> float:
            while not done():
                assert self.clock.now() - start < limit, f"not done after {limit} virtual seconds"
                await self.clock.sleep(1)
            return self.clock.now() - start

        try:
            await asyncio.sleep(0)  # let the watch deliver the initial ADDED events
            return await self.clock.spawn(watch())
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)

    async def set_image(self, name: str, image: str) -> None:
        await self.cluster.patch(
            ObjectRef(DEPLOYMENT, NS, name),
            {
                "spec": {
                    "template": {
                        "spec": {"containers": [{"name": "app", "image": f"{name}:{image}"}]}
                    }
                }
            },
        )


class _Flaky:
    """Wraps a workload so a test can make one call blow up."""

    def __init__(self, inner: DeploymentWorkload, hook: Callable[[], None]) -> None:
        self._inner = inner
        self._hook = hook

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name != "initialize":
            return attr

        async def wrapped(canary: Canary) -> None:
            self._hook()
            await attr(canary)

        return wrapped


async def test_many_canaries_initialize_and_promote_independently() -> None:
    h = Harness()
    names = [f"app-{i}" for i in range(5)]
    h.cluster.seed(*(deployment(n) for n in names), *(canary_body(n) for n in names))
    await h.run_until(lambda: all(h.phase(n) == "Initialized" for n in names))
    for n in names:
        await h.set_image(n, "v2")
    await h.run_until(lambda: all(h.phase(n) == "Succeeded" for n in names))
    primary = h.cluster.peek(ObjectRef(DEPLOYMENT, NS, "app-3-primary"))
    assert primary is not None
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == "app-3:v2"
    target = h.cluster.peek(ObjectRef(DEPLOYMENT, NS, "app-3"))
    assert target is not None and target["spec"]["replicas"] == 0


async def test_checks_of_canaries_due_together_are_scored_in_one_pass() -> None:
    h = Harness()
    names = [f"app-{i}" for i in range(4)]
    h.cluster.seed(*(deployment(n) for n in names), *(canary_body(n) for n in names))
    await h.run_until(lambda: all(h.phase(n) == "Initialized" for n in names))
    for n in names:
        await h.set_image(n, "v2")
    await h.run_until(lambda: all(h.phase(n) == "Succeeded" for n in names))
    # every analysis tick of the 4 canaries (2 checks each) went out as one batch of 8
    assert h.source.calls and set(h.source.calls) == {8}


async def test_judged_checks_of_canaries_due_together_are_judged_in_one_pass() -> None:
    h = Harness()
    names = [f"app-{i}" for i in range(4)]
    judged = {
        "name": "request-duration",
        "judge": {"baseline": "primary", "harmful": "increase", "window": "1h"},
    }
    h.cluster.seed(
        *(deployment(n) for n in names),
        *(canary_body(n, metrics=[judged]) for n in names),
    )
    await h.run_until(lambda: all(h.phase(n) == "Initialized" for n in names))
    for n in names:
        await h.set_image(n, "v2")
    await h.run_until(lambda: all(h.phase(n) == "Succeeded" for n in names))
    # every judged tick of the 4 canaries: one series fetch of 8 requests (canary and primary
    # each), judged in one pass
    assert h.source.series_calls and set(h.source.series_calls) == {8}
    assert h.judge.batches == len(h.source.series_calls)


async def test_a_malformed_canary_gets_a_condition_and_event_and_does_not_delay_others() -> None:
    h = Harness()
    bad = canary_body("broken", stepWeight=150)
    h.cluster.seed(deployment("good"), deployment("broken"), canary_body("good"), bad)
    took = await h.run_until(lambda: h.phase("good") == "Initialized")
    assert took <= 1
    body = h.cluster.peek(ObjectRef(CANARY, NS, "broken"))
    assert body is not None
    (cond,) = [c for c in body["status"]["conditions"] if c["type"] == "Validated"]
    assert cond["status"] == "False" and "stepWeight: must be 0..100, got 150" in cond["message"]
    warnings = [e["message"] for e in h.cluster.events_for(NS, "broken") if e["type"] == "Warning"]
    assert any("stepWeight" in w for w in warnings)
    assert len(warnings) == 1  # not repeated every tick while the problem is unchanged


@pytest.mark.parametrize("blocked", [True, False])
async def test_no_cross_namespace_refs_refuses_references_to_other_namespaces(
    blocked: bool,
) -> None:
    # Flagger's -no-cross-namespace-refs: a MetricTemplate or AlertProvider of another namespace
    # keeps the Canary from being driven (Validated=False, a Warning naming each field); its own
    # namespace, written or left out, is fine; other Canaries go on. Off, nothing is refused.
    h = Harness(settings=Settings(no_cross_namespace_refs=blocked))
    theirs = canary_body(
        "theirs",
        metrics=[
            {"name": "errors", "templateRef": {"name": "errors"}, "thresholdRange": {"max": 1}},
            {
                "name": "latency",
                "templateRef": {"name": "latency", "namespace": "shared"},
                "thresholdRange": {"max": 500},
            },
        ],
        alerts=[{"name": "chat", "providerRef": {"name": "slack", "namespace": "infra"}}],
    )
    ours = canary_body(
        "ours",
        metrics=[
            {
                "name": "latency",
                "templateRef": {"name": "latency", "namespace": NS},
                "thresholdRange": {"max": 500},
            }
        ],
        alerts=[{"name": "chat", "providerRef": {"name": "slack"}}],
    )
    h.cluster.seed(deployment("theirs"), deployment("ours"), theirs, ours)
    await h.run_until(lambda: h.phase("ours") == "Initialized")
    await h.run_until(lambda: h.phase("theirs") == "Initialized" or bool(h.warnings("theirs")))
    if not blocked:
        assert h.phase("theirs") == "Initialized" and not h.warnings("theirs")
        return
    assert h.phase("theirs") == ""
    body = h.cluster.peek(ObjectRef(CANARY, NS, "theirs"))
    assert body is not None
    (cond,) = [c for c in body["status"]["conditions"] if c["type"] == "Validated"]
    assert cond["message"].splitlines() == [
        "spec.analysis.metrics[1].templateRef.namespace: can't access metric template "
        "latency.shared: cross-namespace references are blocked (--no-cross-namespace-refs)",
        "spec.analysis.alerts[0].providerRef.namespace: can't access alert provider "
        "slack.infra: cross-namespace references are blocked (--no-cross-namespace-refs)",
    ]
    assert len(h.warnings("theirs")) == 1


async def test_a_secret_quoted_from_a_bad_spec_reaches_no_event_or_condition() -> None:
    h = Harness()
    bad = canary_body("leaky", interval="http://admin:S3CR3T-pw@prometheus:9090")
    h.cluster.seed(deployment("leaky"), bad)
    await h.run_until(lambda: bool(h.cluster.events_for(NS, "leaky")))
    body = h.cluster.peek(ObjectRef(CANARY, NS, "leaky"))
    assert body is not None
    (cond,) = [c for c in body["status"]["conditions"] if c["type"] == "Validated"]
    assert "spec.analysis.interval" in cond["message"]
    messages = [cond["message"], *(e["message"] for e in h.cluster.events_for(NS, "leaky"))]
    assert all("S3CR3T" not in m for m in messages), messages
    assert any("admin:xxxxx@prometheus" in m for m in messages)


async def test_a_crashing_canary_task_is_restarted_with_backoff_and_others_continue() -> None:
    crashes = [3]

    def explode() -> None:
        if crashes[0] > 0:
            crashes[0] -= 1
            raise RuntimeError("boom")

    h = Harness(workload_hook=explode)
    h.cluster.seed(deployment("app"), canary_body("app"))
    took = await h.run_until(lambda: h.phase("app") == "Initialized")
    assert crashes[0] == 0
    assert 1 + 2 + 4 <= took < 60  # three crashes, backoff 1 s, 2 s, 4 s


async def test_deleting_a_canary_stops_its_task() -> None:
    h = Harness()
    h.cluster.seed(deployment("app"), canary_body("app"))
    await h.run_until(lambda: h.phase("app") == "Initialized")
    runner = asyncio.ensure_future(h.controller.run())
    for _ in range(5):
        await asyncio.sleep(0)
    assert ObjectRef(CANARY, NS, "app") in h.controller.running
    await h.cluster.delete(ObjectRef(CANARY, NS, "app"))
    for _ in range(5):
        await asyncio.sleep(0)
    assert ObjectRef(CANARY, NS, "app") not in h.controller.running
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)


async def test_flagger_canary_total_counts_down_to_zero_when_canaries_go() -> None:
    h = Harness()
    h.cluster.seed(deployment("a"), canary_body("a"), deployment("b"), canary_body("b"))
    runner = asyncio.ensure_future(h.controller.run())
    try:

        async def total() -> str:
            for _ in range(5):
                await asyncio.sleep(0)
            text = h.metrics.exposition().decode()
            return next(
                line for line in text.splitlines() if line.startswith("flagger_canary_total")
            )

        assert await total() == 'flagger_canary_total{namespace="staging"} 2.0'
        await h.cluster.delete(ObjectRef(CANARY, NS, "a"))
        assert await total() == 'flagger_canary_total{namespace="staging"} 1.0'
        await h.cluster.delete(ObjectRef(CANARY, NS, "b"))
        # the last one gone: 0, not the stale 1 a dashboard would keep showing
        assert await total() == 'flagger_canary_total{namespace="staging"} 0.0'
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_no_status_series_while_the_canary_is_still_initialising() -> None:
    """Flagger first sets flagger_canary_status when initialisation is done (§2.4 step 14): a
    Canary whose primary never becomes ready has no status series."""
    h = Harness()
    h.cluster.hold_readiness(ObjectRef(DEPLOYMENT, NS, "app-primary"), {"observedGeneration": 0})
    h.cluster.seed(deployment("app"), canary_body("app"))
    start = h.clock.now()
    await h.run_until(lambda: h.clock.now() - start >= 120)
    assert h.phase("app") == "Initializing"
    assert "flagger_canary_status{" not in h.metrics.exposition().decode()


async def test_the_weight_gauge_appears_at_the_first_rollout_as_flaggers() -> None:
    """Flagger sets flagger_canary_weight where an advancing tick reads the routes back, so an
    initialised Canary has a status series but no weight series until its first rollout."""
    h = Harness()
    h.cluster.seed(deployment("app"), canary_body("app"))
    await h.run_until(lambda: h.phase("app") == "Initialized")
    rested = h.clock.now()
    await h.run_until(lambda: h.clock.now() - rested >= 120)  # two intervals at rest
    text = h.metrics.exposition().decode()
    assert 'flagger_canary_status{name="app",namespace="staging"} 1.0' in text
    assert "flagger_canary_weight{" not in text
    await h.set_image("app", "v2")
    await h.run_until(lambda: h.phase("app") == "Progressing")
    text = h.metrics.exposition().decode()
    assert 'flagger_canary_weight{namespace="staging",workload="app-primary"} 100.0' in text
    assert 'flagger_canary_weight{namespace="staging",workload="app"} 0.0' in text


async def test_flagger_metrics_are_exported_with_flaggers_names() -> None:
    h = Harness()
    h.cluster.seed(deployment("app"), canary_body("app"))
    await h.run_until(lambda: h.phase("app") == "Initialized")
    await h.set_image("app", "v2")
    await h.run_until(lambda: h.phase("app") == "Succeeded")
    text = h.metrics.exposition().decode()
    assert 'flagger_info{mesh_provider="kubernetes",version="test"} 1.0' in text
    assert 'flagger_canary_total{namespace="staging"} 1.0' in text
    assert 'flagger_canary_status{name="app",namespace="staging"} 1.0' in text
    assert 'flagger_canary_weight{namespace="staging",workload="app-primary"} 100.0' in text
    assert (
        'flagger_canary_successes_total{analysis_status="completed",deployment_strategy="canary",'
        'name="app",namespace="staging"} 1.0'
    ) in text
    duration = (
        'flagger_canary_metric_analysis{metric="request-duration",name="app",namespace="staging"}'
    )
    assert f"{duration} 0.12" in text
    # Go's default buckets, as Flagger's histogram, and no _created series (Go has none)
    buckets = [
        line.split('le="')[1].split('"')[0]
        for line in text.splitlines()
        if line.startswith("flagger_canary_duration_seconds_bucket")
    ]
    assert [float(b) for b in buckets] == [*GO_DEFAULT_BUCKETS, float("inf")]
    # written as Go writes them: le="1" and le="10", not "1.0" (label values on Prometheus 2)
    assert buckets == [
        "0.005",
        "0.01",
        "0.025",
        "0.05",
        "0.1",
        "0.25",
        "0.5",
        "1",
        "2.5",
        "5",
        "10",
        "+Inf",
    ]
    assert "_created" not in text


async def test_every_tick_past_the_rollback_check_is_timed_as_flagger_times_it() -> None:
    # Flagger starts timing after the threshold check: the pre-rollout tick, every analysis
    # (passing or failing, with metrics or none) and the promotion step; not Promoting,
    # Finalising or a rollback. A canary without metrics is timed too.
    h = Harness()
    h.cluster.seed(deployment("app"), canary_body("app", metrics=[]))
    await h.run_until(lambda: h.phase("app") == "Initialized")
    await h.set_image("app", "v2")
    await h.run_until(lambda: h.phase("app") == "Succeeded")
    text = h.metrics.exposition().decode()
    count = next(
        line
        for line in text.splitlines()
        if line.startswith('flagger_canary_duration_seconds_count{name="app"')
    )
    # stepWeight 50 up to maxWeight 50: the pre-rollout tick (weight 0 -> 50), the analysis at
    # 50 that decides to promote; then Promoting and Finalising are not analysis ticks
    assert count.endswith(" 2.0"), count


class HangingHooks:
    """A webhook that never answers: the tick that calls it waits until it is cancelled."""

    def __init__(self) -> None:
        self.calls = 0
        self.cancelled = 0

    async def call(self, hook: Webhook, payload: Mapping[str, Any]) -> HookOutcome:
        self.calls += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        raise AssertionError("unreachable")


async def test_stopping_the_controller_mid_tick_cancels_the_tick_and_leaks_no_task() -> None:
    """Structured concurrency: the watches, every canary's task, a tick stuck in a webhook call,
    and the sleep-or-wake race between ticks all end with Controller.run; nothing outlives it."""
    h = Harness()
    hooks = HangingHooks()
    h.deps = dataclasses.replace(h.deps, webhooks=hooks)
    h.controller = Controller(h.deps, ControllerOptions(jitter=0.0), metrics=h.metrics)
    webhook = {"name": "gate", "type": "pre-rollout", "url": "http://tester.test/"}
    h.cluster.seed(deployment("stuck"), canary_body("stuck", webhooks=[webhook]))
    h.cluster.seed(deployment("idle"), canary_body("idle"))
    await h.run_until(lambda: h.phase("stuck") == "Initialized" and h.phase("idle") != "")
    await h.set_image("stuck", "v2")
    before = asyncio.all_tasks()
    runner = asyncio.ensure_future(h.controller.run())
    for _ in range(2000):  # virtual time jumps to the next tick once every canary task is parked
        if hooks.calls:
            break
        await asyncio.sleep(0.001)
    assert hooks.calls == 1  # the stuck canary's tick is inside its pre-rollout webhook call
    assert len(h.controller.running) == 2  # the idle canary is napping between its ticks
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    assert hooks.cancelled == 1
    assert h.controller.running == set()
    leaked = asyncio.all_tasks() - before - {runner}
    assert not {t for t in leaked if not t.done()}, leaked


async def test_a_release_that_stops_using_a_configmap_restarts_once_and_promotes() -> None:
    """Flagger's SyncStatus replaces status.trackedConfigs (UpdateStatus), so a ConfigMap the new
    release no longer references counts as one new revision. A merge patch merges maps: written
    naively, the dropped key stayed, every tick saw the configs changed and restarted the
    analysis, and the release never promoted (TestScheduler_DaemonSetPromotion's V2 drops an
    envFrom this way)."""
    h = Harness()
    target = deployment("app")
    container = target["spec"]["template"]["spec"]["containers"][0]
    container["envFrom"] = [{"configMapRef": {"name": "app-env"}}]
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app-env", "namespace": NS},
        "data": {"color": "blue"},
    }
    h.cluster.seed(target, configmap, canary_body("app"))
    await h.run_until(lambda: h.phase("app") == "Initialized")

    def tracked() -> dict[str, Any]:
        body = h.cluster.peek(ObjectRef(CANARY, NS, "app"))
        assert body is not None
        return dict(body["status"].get("trackedConfigs") or {})

    assert list(tracked()) == ["configmap/app-env"]
    await h.cluster.patch(  # the new release: another image, and no envFrom any more
        ObjectRef(DEPLOYMENT, NS, "app"),
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:v2"}]}}}},
    )
    await h.run_until(lambda: h.phase("app") == "Succeeded", limit=1800)
    assert tracked() == {}


def test_the_no_cross_namespace_refs_flag_reads_as_flaggers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from engine.cli import build_parser

    def parsed(*argv: str) -> bool:
        return bool(build_parser().parse_args(["run", *argv]).no_cross_namespace_refs)

    assert parsed() is False  # Flagger's default
    assert parsed("--no-cross-namespace-refs") is True
    assert parsed("--no-cross-namespace-refs=true") is True
    assert parsed("--no-cross-namespace-refs=false") is False
    monkeypatch.setenv("CANARY_ENGINE_NO_CROSS_NAMESPACE_REFS", "true")
    assert parsed() is True


async def test_a_command_sent_while_the_spec_is_invalid_is_ignored_not_held() -> None:
    # Held until the spec is fixed, a promote --full would copy whatever revision runs then,
    # unanalysed: it is recorded as handled with the reason, and a fixed spec does not revive it.
    from engine.core.commands import COMMAND_ANNOTATION, encode_command

    h = Harness()
    h.cluster.seed(deployment("app"), canary_body("app"))
    await h.run_until(lambda: h.phase("app") == "Initialized")
    ref = ObjectRef(CANARY, NS, "app")
    command = encode_command(
        "promote", command_id="c0ffee" * 5, requested_at="2026-01-01T00:00:00Z", full=True
    )
    await h.cluster.patch(
        ref,
        {
            "metadata": {"annotations": {COMMAND_ANNOTATION: command}},
            "spec": {"analysis": {"stepWeight": 150}},
        },
    )
    await h.run_until(lambda: any("ignored" in w for w in h.warnings("app")))
    body = h.cluster.peek(ref)
    assert body is not None
    last = body["status"]["lastCommand"]
    assert last["id"] == "c0ffee" * 5 and last["command"] == "promote --full"
    assert last["outcome"].startswith("ignored: the Canary's spec is invalid")
    assert any(w.startswith("Invalid canary spec:") for w in h.warnings("app"))
    # The spec is fixed and a new revision arrives: it is analysed, not promoted by the old
    # command.
    await h.cluster.patch(ref, {"spec": {"analysis": {"stepWeight": 50}}})
    await h.set_image("app", "v2")
    await h.run_until(lambda: h.phase("app") in ("Progressing", "Promoting", "Succeeded"))
    events = [e["message"] for e in h.cluster.events_for(NS, "app")]
    assert not any("Command promote --full" in e and "ignored" not in e for e in events), events
    assert h.phase("app") == "Progressing"


def test_flaggers_own_args_start_the_controller(capsys: pytest.CaptureFixture[str]) -> None:
    # The args: of Flagger's chart, one dash, Go style: run reads them as its own; the tuning
    # flags with no use here are dropped with a note instead of stopping the controller.
    from engine.cli import build_parser
    from engine.cli._options import _flagger_run_flags

    flagger_args = [
        "run",
        "-log-level=info",
        "-mesh-provider=istio",
        "-metrics-server=http://prometheus:9090",
        "-selector-labels=app,name,app.kubernetes.io/name",
        "-enable-config-tracking=true",
        "-slack-user=flagger",
        "-slack-channel=general",
        "-slack-url",
        "https://hooks.slack.com/services/T/B/x",
        "-cluster-name=prod",
        "-threadiness",
        "4",
        "-enable-leader-election=true",
        "-leader-election-namespace=flux-system",
        "-no-cross-namespace-refs=false",
        "-kubeconfig-service-mesh",
        "/etc/istio/remote/kubeconfig",
    ]
    args = build_parser().parse_args(_flagger_run_flags(flagger_args))
    assert (args.mesh_provider, args.metrics_server, args.log_level) == (
        "istio",
        "http://prometheus:9090",
        "info",
    )
    assert args.slack_url == "https://hooks.slack.com/services/T/B/x"
    assert (args.slack_user, args.slack_channel, args.cluster_name) == (
        "flagger",
        "general",
        "prod",
    )
    assert args.leader_elect is True and args.enable_config_tracking is True
    assert args.no_cross_namespace_refs is False
    assert args.kubeconfig_service_mesh == "/etc/istio/remote/kubeconfig"
    err = capsys.readouterr().err
    assert "Flagger's -threadiness has no use here; ignored" in err
    assert "-leader-election-namespace" in err
    off = build_parser().parse_args(_flagger_run_flags(["run", "-enable-leader-election=false"]))
    assert off.leader_elect is False
    with pytest.raises(SystemExit):  # an option neither knows is still refused
        build_parser().parse_args(_flagger_run_flags(["run", "-no-such-flag=x"]))
