"""``canary-engine run``: wire the real seams together and drive every Canary in the cluster.

Owns every long-lived client (Kubernetes cache, Prometheus, webhooks) in one ``AsyncExitStack``;
serves ``/healthz``, ``/readyz`` and ``/metrics``; with ``--leader-elect`` only the Lease holder
drives canaries (a standby is healthy and ready, and takes over within the lease duration); SIGTERM
and SIGINT stop the controller gracefully (canary tasks are cancelled between ticks' awaits, and
all state is already in the Canary statuses).
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
import structlog

from analysis import open_metric_sources, open_webhook_caller
from config import Problem, SpecError
from engine.shell.alerts import open_alert_sender
from engine.shell.clock import Clock, RealClock
from engine.shell.controller import BatchingAnalyzer, BatchingJudge, Controller, ControllerOptions
from engine.shell.credentials import CredentialsReader
from engine.shell.http import serve_endpoints
from engine.shell.kube_metrics import ClusterKubeApi
from engine.shell.leader import DEFAULT_LEASE_NAME, LeaderElector, LeaseConfig
from engine.shell.loop import EngineDeps, Settings
from engine.shell.metrics import MetricsRecorder
from engine.shell.notify import AlertRouter, NotifyOptions
from engine.shell.shards import Shard
from traffic import (
    CANARY,
    CONFIGMAP,
    DEFAULT_CACHE_KINDS,
    Cluster,
    ClusterError,
    MeshSplitCluster,
    RouterOptions,
    TargetWorkload,
    open_kube_cluster,
    router_for,
)

if TYPE_CHECKING:
    from traffic.cluster import KubeCluster  # (kubernetes-asyncio is imported lazily)

log = structlog.get_logger("canary-engine")

#: Seconds the controller waits for its caches' initial lists before it starts ticking anyway.
CACHE_SYNC_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    kubeconfig: str | None
    namespaces: Sequence[str]
    selector: Mapping[str, str]
    metrics_server: str
    mesh_provider: str
    port: int
    leader_elect: bool
    lease_namespace: str
    identity: str
    version: str
    #: Global notifier and --cluster-name (Flagger's -slack-*, -msteams-*, -cluster-name).
    notify: NotifyOptions = field(default_factory=NotifyOptions)
    #: This process's share of the fleet (--shards / --shard-index).
    shard: Shard = field(default_factory=Shard)
    #: --startup-spread: seconds over which the first ticks of the Canaries found at start go.
    startup_spread: float = 0.0
    #: --event-webhook (env EVENT_WEBHOOK_URL wins, as in Flagger); "" for none.
    event_webhook: str = ""
    #: Flagger's -selector-labels, -ingress-annotations-prefix and -ingress-class.
    routing: RouterOptions = field(default_factory=RouterOptions)
    #: Flagger's -include-label-prefix: target labels copied to the primary (and its configs).
    include_label_prefixes: tuple[str, ...] = ()
    #: Flagger's -enable-config-tracking.
    config_tracking: bool = True
    #: Flagger's -no-cross-namespace-refs.
    no_cross_namespace_refs: bool = False
    #: Flagger's -kubeconfig-service-mesh: the cluster the routers' mesh kinds go to
    #: (``traffic.cluster.MeshSplitCluster``); None: the main cluster.
    kubeconfig_service_mesh: str | None = None


def parse_selector(text: str | None) -> dict[str, str]:
    """``app=web,tier=front`` -> mapping; only equality selectors are supported."""
    if not text:
        return {}
    out: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or "!" in key:
            raise SpecError(
                Problem("--selector", f"expected key=value[,key=value...], got {text!r}")
            )
        out[key.strip()] = value.strip().lstrip("=")
    return out


def options_from_env(
    *,
    kubeconfig: str | None,
    namespaces: Sequence[str],
    selector: str | None,
    metrics_server: str,
    mesh_provider: str,
    port: int,
    leader_elect: bool,
    version: str,
    notify: NotifyOptions | None = None,
    shards: int = 1,
    shard_index: int = 0,
    startup_spread: float = 0.0,
    event_webhook: str | None = None,
    routing: RouterOptions | None = None,
    include_label_prefixes: Sequence[str] = (),
    config_tracking: bool = True,
    no_cross_namespace_refs: bool = False,
    kubeconfig_service_mesh: str | None = None,
) -> RunOptions:
    return RunOptions(
        kubeconfig=kubeconfig,
        namespaces=[n for ns in namespaces for n in ns.split(",") if n],
        selector=parse_selector(selector),
        metrics_server=metrics_server,
        mesh_provider=mesh_provider,
        port=port,
        leader_elect=leader_elect,
        lease_namespace=os.environ.get("POD_NAMESPACE") or "default",
        identity=os.environ.get("POD_NAME") or socket.gethostname(),
        version=version,
        notify=notify or NotifyOptions(),
        shard=Shard(shards, shard_index),
        startup_spread=startup_spread,
        event_webhook=os.environ.get("EVENT_WEBHOOK_URL") or event_webhook or "",
        routing=routing or RouterOptions(),
        include_label_prefixes=tuple(include_label_prefixes),
        config_tracking=config_tracking,
        no_cross_namespace_refs=no_cross_namespace_refs,
        kubeconfig_service_mesh=kubeconfig_service_mesh or None,
    )


def _unix_time(clock: Clock) -> float:
    """The clock's wall time as Unix seconds: the time metric providers answer in."""
    return clock.utcnow().timestamp()


async def run_controller(
    options: RunOptions, *, clock: Clock | None = None, stop: asyncio.Event | None = None
) -> int:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); exit status 0 on a clean stop, 1 when the
    controller failed (e.g. leadership was lost). Tests pass a VirtualClock and their own stop."""
    clock = clock or RealClock()
    on_signals = stop is None
    stop = stop or asyncio.Event()

    metrics = MetricsRecorder(version=options.version, mesh_provider=options.mesh_provider)
    async with AsyncExitStack() as stack:
        # First: a wrong --kubeconfig-service-mesh stops the start before any request is sent.
        mesh = await _open_mesh_cluster(stack, options, clock)
        cluster = await stack.enter_async_context(
            open_kube_cluster(
                options.kubeconfig,
                sleep=clock.sleep,
                namespaces=options.namespaces,
                # the default kinds and tracked ConfigMaps; Secrets are never cached (only those
                # a Canary references are read, by name, when needed): config/deploy/README.md
                cache_kinds=(*DEFAULT_CACHE_KINDS, CONFIGMAP),
            )
        )
        routed: Cluster = cluster
        if mesh is not None:
            # Another API server cannot hold owner references to the Canary (Flagger's
            # setOwnerRefs is false when the hosts differ): MeshSplitCluster's docs.
            routed = MeshSplitCluster(cluster, mesh, keep_owners=mesh.server == cluster.server)
        deps, on_alert = await _engine_deps(stack, options, cluster, clock, metrics, routed)
        controller = Controller(
            deps,
            ControllerOptions(
                namespaces=options.namespaces,
                selector=options.selector,
                shard=options.shard,
                startup_spread=options.startup_spread,
            ),
            metrics=metrics,
        )
        elector = _leader_elector(options, cluster, clock)

        def is_ready() -> bool:
            # A standby replica is ready (it serves /metrics and can take over); the leader is
            # ready once the Canary cache holds the initial list (possibly empty).
            if elector is not None and not elector.is_leader:
                return True
            return controller.ready.is_set() or cluster.is_cached(CANARY)

        await stack.enter_async_context(
            serve_endpoints(
                host="0.0.0.0",
                port=options.port,
                metrics=metrics.exposition,
                is_ready=is_ready,
            )
        )
        log.info(
            "controller_started",
            namespaces=list(options.namespaces) or "all",
            leader_election=options.leader_elect,
            shard=f"{options.shard.index}/{options.shard.count}",
            port=options.port,
            global_notifier=on_alert.global_notifier or "none",
            service_mesh_kubeconfig=options.kubeconfig_service_mesh or "the main cluster's",
        )

        async def drive() -> None:
            # Tick only once the caches hold the initial lists: otherwise the first tick of every
            # canary reads its Deployments and Services from the API server, all at once, and
            # that burst starves the very LISTs that would end it. Bounded, so a kind the server
            # does not serve (or RBAC hides) only costs reads, not the controller.
            with anyio.move_on_after(CACHE_SYNC_TIMEOUT) as sync:
                await cluster.wait_synced()
            if sync.cancelled_caught:
                missing = sorted(k.plural for k in cluster.cached_kinds if not cluster.is_cached(k))
                log.warning("cache_not_synced", kinds=missing, timeout=CACHE_SYNC_TIMEOUT)
            await controller.run()

        async def work() -> None:
            await (elector.run(drive) if elector is not None else drive())

        return await _run_until_stopped(work, stop, on_signals=on_signals)


async def _open_mesh_cluster(
    stack: AsyncExitStack, options: RunOptions, clock: Clock
) -> KubeCluster | None:
    """The cluster of ``--kubeconfig-service-mesh`` (None without it), opened on ``stack``. It
    caches nothing: routers read their few objects by name, once a tick, as on the main cluster
    (whose cache holds no mesh kind either). A kubeconfig that does not load is bad input naming
    the option, on one line (the library's message may span several)."""
    path = options.kubeconfig_service_mesh
    if path is None:
        return None
    try:
        return await stack.enter_async_context(
            open_kube_cluster(
                path, sleep=clock.sleep, namespaces=options.namespaces, cache_kinds=()
            )
        )
    except ClusterError as exc:
        detail = " ".join(str(exc).split())
    raise SpecError(
        Problem(
            "--kubeconfig-service-mesh",
            f"{detail}; give the kubeconfig of the service mesh's control plane cluster, or "
            "leave the option out to write the mesh's objects to the main cluster",
        )
    )


async def _engine_deps(
    stack: AsyncExitStack,
    options: RunOptions,
    cluster: Cluster,
    clock: Clock,
    metrics: MetricsRecorder,
    routed: Cluster,
) -> tuple[EngineDeps, AlertRouter]:
    """The engine's seams over the real cluster: metric providers, webhooks and alerts, each
    client opened on ``stack`` (closed when the controller stops). ``routed``: the cluster the
    routers write to (``cluster``, or a MeshSplitCluster with --kubeconfig-service-mesh);
    everything else (Canaries, workloads, Secrets, events, alerts) uses ``cluster``."""
    credentials = CredentialsReader(cluster, clock)
    stack.push_async_callback(credentials.aclose)
    # Every metric provider (Prometheus batched and grouped as before, the others through
    # their modules in analysis.providers). They speak Unix time, which clock.now() is not
    # (RealClock's is the event loop's monotonic clock): 1970 windows otherwise.
    unix_time = functools.partial(_unix_time, clock)
    sources = await stack.enter_async_context(
        open_metric_sources(
            sleep=clock.sleep,
            now=unix_time,
            credentials=credentials,
            kube=ClusterKubeApi(cluster),
        )
    )
    webhooks = await stack.enter_async_context(open_webhook_caller(sleep=clock.sleep))
    alert_sender = await stack.enter_async_context(open_alert_sender())
    on_alert = AlertRouter(cluster, alert_sender, options.notify)
    deps = EngineDeps(
        cluster=cluster,
        clock=clock,
        workload=TargetWorkload(
            cluster,
            selector_labels=options.routing.selector_labels,
            include_label_prefixes=options.include_label_prefixes,
            config_tracking=options.config_tracking,
        ),
        router_for=lambda provider: router_for(provider, routed, options.routing),
        metrics=sources,
        webhooks=webhooks,
        settings=Settings(
            mesh_provider=options.mesh_provider,
            metrics_server=options.metrics_server,
            event_webhook=options.event_webhook,
            no_cross_namespace_refs=options.no_cross_namespace_refs,
        ),
        provider_check=sources.check_providers,
        analyzer=BatchingAnalyzer(sources, clock),
        judge=BatchingJudge(sources, clock),
        on_tick=metrics.on_tick,
        on_outcome=metrics.on_outcome,
        on_alert=on_alert,
        metric_time=unix_time,
    )
    return deps, on_alert


def _leader_elector(options: RunOptions, cluster: Cluster, clock: Clock) -> LeaderElector | None:
    """With ``--leader-elect``, the Lease of this process's shard; else None (it always leads)."""
    if not options.leader_elect:
        return None
    return LeaderElector(
        cluster,
        clock,
        LeaseConfig(
            namespace=options.lease_namespace,
            name=options.shard.lease_name(DEFAULT_LEASE_NAME),
            identity=options.identity,
            release_on_cancel=True,  # SIGTERM: the standby takes over at once
        ),
    )


async def _run_until_stopped(
    work: Callable[[], Awaitable[None]], stop: asyncio.Event, *, on_signals: bool
) -> int:
    """Run ``work`` until it ends, ``stop`` is set or (``on_signals``) SIGTERM/SIGINT arrives:
    0 on a stop, 1 when ``work`` failed.

    One task group owns the process: the work (the controller behind the leader election), the
    signal handler and the stop request. Whichever ends first cancels the others, and the group
    does not return before every task in it has finished (structured concurrency: nothing
    outlives run_controller). None of these is a clock actor: they wait on watches and signals,
    not on the clock (each canary task is one)."""
    status = 0

    async def run_work() -> None:
        nonlocal status
        try:
            await work()
        except Exception as exc:
            log.error("controller_stopped", error=str(exc))
            status = 1
        group.cancel_scope.cancel()

    async def until_stopped() -> None:
        await stop.wait()
        log.info("controller_stopped", reason="signal")
        group.cancel_scope.cancel()

    async def on_signal() -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                stop.set()
                return

    async with anyio.create_task_group() as group:
        group.start_soon(run_work)
        group.start_soon(until_stopped)
        if on_signals:
            group.start_soon(on_signal)
    return status
