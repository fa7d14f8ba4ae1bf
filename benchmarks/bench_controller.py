"""The controller at scale: tick lag, API requests and memory for fleets of canaries.

Run from the repository root:

    python benchmarks/bench_controller.py [--canaries 1000 10000] [--interval 10] \
        [--warmup 2] [--measure 3] [--shards 1]
    python benchmarks/bench_controller.py --canaries 50000 --shards 2   # issue 10's target

For each fleet size, these processes:

* a fake Kubernetes API server (``tests/kubeapi.py``, real HTTP on 127.0.0.1) and a fake
  Prometheus (``/api/v1/query``; grouped and per-canary answers, healthy values). The fleet is
  spread over 20 namespaces; each canary (provider ``kubernetes``, interval ``--interval``, the
  two builtin metrics) is initialised once up front by the engine itself against an in-memory
  cluster (``CanaryDriver.tick`` on ``InMemoryCluster``), and every resulting object (Canary
  with status Initialized, target and ``-primary`` Deployments, the three Services) is seeded
  straight into the fake server's store, so the controllers start at steady state: a fleet at
  rest, which is what most of a real fleet is most of the time;
* ``--shards`` controller processes (one by default), each ``run_controller`` exactly as
  ``canary-engine run --shards N --shard-index I`` wires it (KubeCluster with its watch-fed
  caches, PrometheusSource, webhooks, batching, ``/metrics``), on real time, with a
  ``RealClock`` that records, for every canary-interval sleep, how late the sleeper woke: the
  tick lag (actual tick start minus scheduled tick start);
* this script, which starts them, waits until every shard's canaries have ticked once, lets
  ``--warmup`` intervals pass, then has every shard measure for ``--measure`` intervals.

Reported per fleet size: start-up (until every canary has ticked once, the slowest shard), tick
lag p50 / p99 / max over the measured ticks of all shards, ticks per second achieved vs. needed,
controller CPU utilisation (summed over the shards, and per shard), API requests per canary per
tick at steady state by verb (target: 0 reads; the caches' watches stay open and are not requests
per tick), and resident memory per canary: each controller's RSS (``/proc/self/status`` VmRSS)
at the end of the measurement minus its RSS before ``run_controller`` started, summed over the
shards and divided by the fleet size (so it includes the fixed cost of the clients; compare two
sizes for the marginal cost). ``--profile`` prints a cProfile of each controller over the
measured window to stderr (it inflates the lag); ``--json`` the raw results. Numbers are per
machine: record them with the CPU model and Python version.

Recorded (2 vCPU AMD EPYC, Python 3.11.7; ``--warmup 2 --measure 3``), with a Canary at rest
skipping its tick while nothing it reads has changed (``TickReport.at_rest``, ``ReadLog``):

* 1,000 canaries: lag p50 0.6 ms / p99 2.0 ms, 2 % of a core, 0 requests per canary per tick,
  105 KiB RSS per canary;
* 10,000 canaries: start 19 s, lag p50 0.5 ms / p99 1.2 ms (982 of the 1,000 ticks/s needed),
  12 % of a core, 0 requests, 63 KiB per canary;
* 50,000 canaries over two shards (``--shards 2``): start 109 s, lag p50 0.4 ms / p99 1.3 ms /
  max 113 ms, 4,978 of the 5,000 ticks/s needed, 35 % of a core per shard, 0 requests per canary
  per tick, 86 KiB RSS per canary (each shard's process holds the whole fleet's objects in its
  cache: 2.1 GiB each).

Before ticks at rest were skipped, an idle tick cost ~1 ms of CPU and one process saturated a
core at ~10,000 canaries (p99 1.1 s); a full tick (a canary in analysis, or one whose objects
changed) still costs about that, so one process sustains roughly 1,000 full ticks per second.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import multiprocessing
import os
import platform
import pstats
import socket
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

NAMESPACES = 20


def names(count: int) -> list[tuple[str, str]]:
    return [(f"team-{i % NAMESPACES}", f"app-{i}") for i in range(count)]


def canary_body(namespace: str, name: str, interval: int) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "progressDeadlineSeconds": 600,
            "service": {"port": 80, "targetPort": 8080},
            "analysis": {
                "interval": f"{interval}s",
                "threshold": 5,
                "maxWeight": 30,
                "stepWeight": 15,
                "metrics": [
                    {
                        "name": "request-success-rate",
                        "interval": "1m",
                        "thresholdRange": {"min": 95},
                    },
                    {"name": "request-duration", "interval": "1m", "thresholdRange": {"max": 500}},
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
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": name,
                            "image": f"ghcr.io/example/{name}:1.0.0",
                            "ports": [{"containerPort": 8080}],
                        }
                    ]
                },
            },
        },
    }


# ---------------------------------------------------------------------------------------------
# The fake API server and fake Prometheus (their own process)
# ---------------------------------------------------------------------------------------------


async def initialized_objects(count: int, interval: int) -> list[dict[str, Any]]:
    """Every object of the fleet as the engine leaves it after initialisation (in memory)."""
    from analysis import HookOutcome, MetricQuery, QueryFailure
    from config import Webhook
    from engine import EngineDeps, Settings, VirtualClock
    from engine.shell.loop import CanaryDriver
    from traffic import CANARY, DEPLOYMENT, SERVICE, DeploymentWorkload, InMemoryCluster, router_for
    from traffic.cluster import json_copy

    class Healthy:
        async def fetch(self, queries: Sequence[MetricQuery]) -> list[float | QueryFailure]:
            return [99.9 for _ in queries]

    class Ok:
        async def call(self, hook: Webhook, payload: Mapping[str, Any]) -> HookOutcome:
            return HookOutcome(hook, True)

    clock = VirtualClock()
    cluster = InMemoryCluster(now=clock.utcnow)
    fleet = names(count)
    for namespace, name in fleet:
        cluster.seed(deployment_body(namespace, name), canary_body(namespace, name, interval))
    deps = EngineDeps(
        cluster=cluster,
        clock=clock,
        workload=DeploymentWorkload(cluster),
        router_for=lambda provider: router_for(provider, cluster),
        metrics=Healthy(),
        webhooks=Ok(),
        settings=Settings(),
    )
    for namespace, name in fleet:
        report = await CanaryDriver(deps, namespace, name).tick()
        assert report.status is not None and report.status.phase.value == "Initialized", report
    objects: list[dict[str, Any]] = []
    for kind in (CANARY, DEPLOYMENT, SERVICE):
        # read bodies are read-only; the caller rewrites owner references in its own copies
        objects.extend(json_copy(body) for body in await cluster.list(kind, None))
    return objects


def serve(conn: Connection, count: int, interval: int) -> None:
    """Child process: seed the store, serve the API and Prometheus, answer the parent."""
    from aiohttp import web

    from engine.shell.logs import configure
    from tests.kubeapi import FakeKubeApi

    configure("json", "warning")

    async def main() -> None:
        started = time.perf_counter()
        objects = await initialized_objects(count, interval)
        api = FakeKubeApi(history_limit=1000)
        # Canaries first: owner references of the other objects point at the server's uids.
        uids: dict[str, str] = {}
        for body in objects:
            if body["kind"] == "Canary":
                old = body["metadata"]["uid"]
                uids[old] = api.store.put(body)["metadata"]["uid"]
        for body in objects:
            if body["kind"] != "Canary":
                for owner in body["metadata"].get("ownerReferences") or ():
                    owner["uid"] = uids.get(owner.get("uid"), owner.get("uid"))
                api.store.put(body)
        seeded = time.perf_counter() - started

        async def counts(_: web.Request) -> web.Response:
            return web.json_response([[v, r, n] for (v, r), n in api.requests.items()])

        async def reset(_: web.Request) -> web.Response:
            api.reset_counts()
            return web.json_response({})

        fleet = names(count)

        async def query(request: web.Request) -> web.Response:
            if request.method == "POST":
                expr = str((await request.post())["query"])
            else:
                expr = request.query["query"]
            value = 0.12 if "histogram_quantile" in expr else 99.9
            now = time.time()
            if "canary_engine_target" in expr:
                result = [
                    {
                        "metric": {"kubernetes_namespace": ns, "canary_engine_target": name},
                        "value": [now, repr(value)],
                    }
                    for ns, name in fleet
                ]
            else:
                result = [{"metric": {}, "value": [now, "1" if "vector(1)" in expr else value]}]
            return web.json_response(
                {"status": "success", "data": {"resultType": "vector", "result": result}}
            )

        kube = web.Application(client_max_size=64 * 1024**2)
        kube.router.add_get("/_bench/counts", counts)
        kube.router.add_post("/_bench/reset", reset)
        kube.router.add_route("*", "/{tail:.*}", api.handle)
        prom = web.Application()
        prom.router.add_route("*", "/api/v1/query", query)
        urls = []
        for app in (kube, prom):
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            urls.append(f"http://{host}:{port}")
        api.url = urls[0]
        conn.send({"api": urls[0], "prometheus": urls[1], "seeded_s": seeded})
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.recv)  # the parent says stop
        await api.close()

    asyncio.run(main())


# ---------------------------------------------------------------------------------------------
# The controller (its own process)
# ---------------------------------------------------------------------------------------------


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def control(
    conn: Connection, urls: Mapping[str, str], count: int, shard: int, args: argparse.Namespace
) -> None:
    """Child process: run the controller of shard ``shard`` of ``args.shards``; say when each of
    its canaries has ticked once; measure when the parent says so; send the results back."""
    from engine.shell.clock import RealClock
    from engine.shell.logs import configure
    from engine.shell.run import RunOptions, run_controller
    from engine.shell.shards import Shard

    configure("json", "warning")  # the per-tick info lines would dominate the CPU profile

    class LagClock(RealClock):
        """Real time; records how late each canary-interval sleep woke (the tick lag)."""

        def __init__(self, shortest: float) -> None:
            self.shortest = shortest
            self.lags: list[float] = []
            self.started = 0  # interval sleeps begun (each follows a completed tick)

        async def sleep(self, seconds: float) -> None:
            if seconds < self.shortest:
                await super().sleep(seconds)
                return
            self.started += 1
            deadline = self.now() + seconds
            await super().sleep(seconds)
            self.lags.append(self.now() - deadline)

    async def main() -> dict[str, Any]:
        interval = args.interval
        share = Shard(count=args.shards, index=shard)
        mine = sum(share.owns(ns, name) for ns, name in names(count))
        loop = asyncio.get_running_loop()
        with tempfile.TemporaryDirectory() as tmp:
            kubeconfig = Path(tmp) / "kubeconfig"
            kubeconfig.write_text(
                json.dumps(
                    {
                        "apiVersion": "v1",
                        "kind": "Config",
                        "clusters": [{"name": "fake", "cluster": {"server": urls["api"]}}],
                        "users": [{"name": "fake", "user": {"token": f"bench-{shard}"}}],
                        "contexts": [
                            {"name": "fake", "context": {"cluster": "fake", "user": "fake"}}
                        ],
                        "current-context": "fake",
                    }
                )
            )
            clock = LagClock(shortest=interval / 2)
            options = RunOptions(
                kubeconfig=str(kubeconfig),
                namespaces=(),
                selector={},
                metrics_server=urls["prometheus"],
                mesh_provider="kubernetes",
                port=free_port(),
                leader_elect=False,
                lease_namespace="default",
                identity=f"bench-{shard}",
                version="bench",
                shard=share,
            )
            rss_before = rss_bytes()
            stop = asyncio.Event()
            started = time.perf_counter()
            task = asyncio.ensure_future(run_controller(options, clock=clock, stop=stop))
            while clock.started < mine:  # every canary of this shard has finished its first tick
                if task.done():
                    raise RuntimeError(f"the controller stopped: {task.result()}")
                await asyncio.sleep(0.1)
            startup = time.perf_counter() - started
            conn.send(("ready", startup))
            await loop.run_in_executor(None, conn.recv)  # the parent says: measure
            clock.lags.clear()
            profiler = cProfile.Profile() if args.profile else None
            if profiler is not None:
                profiler.enable()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            await asyncio.sleep(args.measure * interval)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            if profiler is not None:
                profiler.disable()
                stats = pstats.Stats(profiler, stream=sys.stderr)
                stats.sort_stats("cumulative").print_stats(40)
            lags = list(clock.lags)
            rss_after = rss_bytes()
            stop.set()
            await asyncio.wait_for(task, 60)
        return {
            "shard": shard,
            "canaries": mine,
            "startup_s": startup,
            "lags": lags,
            "wall_s": wall,
            "cpu_utilisation": cpu / wall,
            "rss_before_mib": rss_before / 1024**2,
            "rss_after_mib": rss_after / 1024**2,
        }

    conn.send(("result", asyncio.run(main())))


def server_counts(api: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{api}/_bench/counts", timeout=60) as response:
        rows = json.load(response)
    out: dict[str, int] = {}
    for verb, _resource, n in rows:
        out[verb] = out.get(verb, 0) + n
    return out


def reset_counts(api: str) -> None:
    request = urllib.request.Request(f"{api}/_bench/reset", method="POST")
    with urllib.request.urlopen(request, timeout=60):
        pass


# ---------------------------------------------------------------------------------------------
# Orchestration and report
# ---------------------------------------------------------------------------------------------


def measure(count: int, args: argparse.Namespace) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    server_end, server_child = ctx.Pipe()
    server = ctx.Process(target=serve, args=(server_child, count, args.interval), daemon=True)
    server.start()
    controllers: list[Any] = []
    try:
        if not server_end.poll(1800):
            raise SystemExit("the fake API server did not start")
        urls = server_end.recv()
        pipes = []
        for shard in range(args.shards):
            parent_end, child_end = ctx.Pipe()
            process = ctx.Process(target=control, args=(child_end, urls, count, shard, args))
            process.start()
            controllers.append(process)
            pipes.append(parent_end)
        budget = 1800 + (args.warmup + args.measure) * args.interval
        startups = []
        for pipe in pipes:  # every shard's canaries have ticked once
            if not pipe.poll(budget):
                raise SystemExit(f"a controller was not ready within {budget} s")
            startups.append(pipe.recv()[1])
        startup_requests = server_counts(urls["api"])
        time.sleep(args.warmup * args.interval)
        reset_counts(urls["api"])
        for pipe in pipes:
            pipe.send("measure")
        shards = []
        for pipe in pipes:
            if not pipe.poll(budget):
                raise SystemExit(f"a controller did not report within {budget} s")
            shards.append(pipe.recv()[1])
        requests = server_counts(urls["api"])
        for process in controllers:
            process.join(60)
    finally:
        for process in controllers:
            if process.is_alive():
                process.kill()
        server_end.send("stop")
        server.join(30)
        if server.is_alive():
            server.kill()
    lags = sorted(lag for shard in shards for lag in shard["lags"])
    ticks = len(lags)
    wall = max(shard["wall_s"] for shard in shards)
    per_tick = {verb: n / max(1, ticks) for verb, n in sorted(requests.items())}
    rss_growth = sum(shard["rss_after_mib"] - shard["rss_before_mib"] for shard in shards)
    return {
        "canaries": count,
        "shards": args.shards,
        "startup_s": max(startups),
        "ticks": ticks,
        "ticks_per_s": ticks / wall,
        "ticks_needed_per_s": count / args.interval,
        "lag_p50_ms": 1000 * statistics.median(lags) if lags else float("nan"),
        "lag_p99_ms": 1000 * lags[min(ticks - 1, int(0.99 * ticks))] if lags else float("nan"),
        "lag_max_ms": 1000 * lags[-1] if lags else float("nan"),
        "cpu_utilisation": sum(shard["cpu_utilisation"] for shard in shards),
        "requests": requests,
        "startup_requests": startup_requests,
        "requests_per_canary_tick": per_tick,
        "reads_per_canary_tick": (requests.get("get", 0) + requests.get("list", 0)) / max(1, ticks),
        # every process caches the whole fleet's objects: growth summed over the processes
        "rss_per_canary_kib": rss_growth * 1024 / count,
        "per_shard": [
            {k: v for k, v in shard.items() if k != "lags"} | {"ticks": len(shard["lags"])}
            for shard in shards
        ],
        "seeded_s": urls["seeded_s"],
    }


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"controller benchmark: interval {args.interval}s, warm-up {args.warmup}, measured "
        f"{args.measure} intervals; Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {_cpu_model()}"
    )
    header = (
        f"{'canaries':>9} {'startup':>8} {'lag p50':>9} {'lag p99':>9} {'lag max':>9} "
        f"{'ticks/s':>13} {'cpu':>5} {'reads/tick':>11} {'req/canary/tick':>16} {'RSS/canary':>11}"
    )
    print(header)
    for r in results:
        per_tick = sum(r["requests_per_canary_tick"].values())
        print(
            f"{r['canaries']:>9} {r['startup_s']:>7.1f}s {r['lag_p50_ms']:>7.1f}ms "
            f"{r['lag_p99_ms']:>7.1f}ms {r['lag_max_ms']:>7.1f}ms "
            f"{r['ticks_per_s']:>6.0f}/{r['ticks_needed_per_s']:<6.0f} "
            f"{100 * r['cpu_utilisation']:>4.0f}% {r['reads_per_canary_tick']:>11.4f} "
            f"{per_tick:>16.4f} {r['rss_per_canary_kib']:>8.1f}KiB"
        )
    for r in results:
        rss = ", ".join(
            f"shard {p['shard']} ({p['canaries']} canaries, {100 * p['cpu_utilisation']:.0f}% "
            f"of a core) {p['rss_before_mib']:.0f} -> {p['rss_after_mib']:.0f} MiB"
            for p in r["per_shard"]
        )
        print(
            f"  {r['canaries']} over {r['shards']} shard(s): requests in the measured window by "
            f"verb {r['requests']}; RSS {rss}; server seeded in {r['seeded_s']:.1f}s; "
            f"requests until every canary had ticked once: {r['startup_requests']}"
        )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--canaries", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--interval", type=int, default=10, help="analysis interval (s)")
    parser.add_argument("--warmup", type=float, default=2, help="intervals before measuring")
    parser.add_argument("--measure", type=float, default=3, help="intervals measured")
    parser.add_argument(
        "--shards", type=int, default=1, help="controller processes, one shard each (run --shards)"
    )
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the controller while measuring (stderr)"
    )
    args = parser.parse_args()
    results = [measure(count, args) for count in args.canaries]
    if args.json:
        print(json.dumps(results, indent=2))
    report(results, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
