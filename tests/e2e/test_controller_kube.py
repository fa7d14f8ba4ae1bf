"""``canary-engine run`` end to end: the controller against a Kubernetes API over real HTTP.

The API is the fake server of ``tests/kubeapi.py`` (kubernetes-asyncio talks to it for real:
LIST + WATCH caches, merge patches, the status subresource, resourceVersion conflicts); the
metrics come from a tiny fake Prometheus served here (``/api/v1/query``, answering the builtin
``kubernetes`` provider queries per canary and grouped ``sum by (...)``, and the seed's
``error-rate`` MetricTemplate), which also answers the Canary's webhooks (``/hooks/<name>``).

Time is virtual (``VirtualClock``): canary tasks are clock actors, and the test's one other
actor (``TimeKeeper``) moves time in steps when asked to, each step only once the API server has
been idle for a moment (real time), so watch events, leader-election renewals and the
controller's own bookkeeping (none of which hold virtual time) have caught up before time moves
on; between steps it holds time still. A whole rollout of the seed's ``webhook-server``
(interval 60s) takes well under a second of real time. Controllers run in this process through
``run_controller`` (a fresh KubeCluster, caches and tasks each), each with its own token, so the
fake server's request log tells the replicas apart.

A stand-in for kube-controller-manager (``World.install``) marks every Deployment fully rolled
out in the very write that changes it, so readiness never depends on when a watch event
happens to arrive; the same hook records every distinct Canary status and pod template stored.

Checked as a user would with kubectl: the Deployments' images and replicas, the Canary status
(phase, the ``Promoted`` condition, lastAppliedSpec/lastPromotedSpec, failedChecks), the Events
on the Canary in order, and ``/metrics`` scraped over HTTP from the controller's port.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from engine import VirtualClock
from engine.shell.metrics import MetricsRecorder
from engine.shell.run import RunOptions, run_controller
from tests.kubeapi import FakeKubeApi, serve_kube_api
from tests.servers import free_port
from traffic import LEASE as LEASE_KIND
from traffic import RouterOptions, kind_of, open_kube_cluster
from traffic.cluster import ReadLog

pytestmark = pytest.mark.timeout(60)

Body = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "config" / "deploy" / "samples" / "webhook-server.yaml"
NS = "staging"
NAME = "webhook-server"
V1 = "ghcr.io/example/webhook-server:1.0.0"
V2 = "ghcr.io/example/webhook-server:1.1.0"
CANARIES = "canaries.flagger.app"
DEPLOYMENTS = "deployments.apps"
JSON_PATCH = "application/json-patch+json"
LEASE_NS = "flux-system"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: What the controller caches (LIST + WATCH), as the fake server names the resources.
PLURALS = (
    "canaries",
    "metrictemplates",
    "alertproviders",
    "deployments",
    "services",
    "horizontalpodautoscalers",
    "configmaps",
)

# ---------------------------------------------------------------------------- fake Prometheus

_GROUPED_TARGETS = re.compile(r'kubernetes_pod_name=~"\(\?:([^)"]*)\)-')
_GROUPED_NAMESPACES = re.compile(r'kubernetes_namespace=~"\(\?:([^)"]*)\)"')
_TARGET = re.compile(r'kubernetes_pod_name=~"([^"(]+?)-\[0-9a-zA-Z\]')
_NAMESPACE = re.compile(r'kubernetes_namespace="([^"]*)"')
GROUP_TARGET_LABEL = "canary_engine_target"

#: (namespace, target) -> whether that workload's pods answer well right now.
Health = Callable[[str, str], bool]


def _alternatives(text: str) -> list[str]:
    # Names here hold no regex metacharacters, so the alternation is just "|"-separated.
    return [v.replace("\\\\", "\\") for v in text.split("|")]


class FakePrometheus:
    """Answers Prometheus instant queries and the Canary's webhooks.

    Values: success rate 99.5 % (healthy) or 50 % (unhealthy), P99 120 ms, error rate 0.5 % or
    50 %. ``health`` decides per (namespace, target) at query time; ``queries`` lists every
    query and ``hooks`` every webhook call (name, payload); webhooks always answer 200.
    """

    def __init__(self) -> None:
        self.url = ""
        self.health: Health = lambda namespace, target: True
        self.queries: list[str] = []
        self.hooks: list[tuple[str, Body]] = []
        #: Every range query: (query, start, end, step), times as sent (Unix seconds).
        self.ranges: list[tuple[str, float, float, float]] = []

    def value(self, expr: str, namespace: str, target: str) -> float:
        healthy = self.health(namespace, target)
        if "histogram_quantile" in expr:
            return 0.12  # seconds (the builtin duration query's unit)
        if expr.lstrip().startswith("100 -"):
            return 0.5 if healthy else 50.0  # the error-rate template
        return 99.5 if healthy else 50.0  # request-success-rate

    def answer(self, expr: str) -> Body:
        now = 1_767_225_600.0
        if expr.strip() == "vector(1)":
            result = [{"metric": {}, "value": [now, "1"]}]
        elif GROUP_TARGET_LABEL in expr:
            targets = _alternatives(_GROUPED_TARGETS.findall(expr)[0])
            namespaces = _alternatives(_GROUPED_NAMESPACES.findall(expr)[0])
            result = [
                {
                    "metric": {"kubernetes_namespace": ns, GROUP_TARGET_LABEL: target},
                    "value": [now, repr(self.value(expr, ns, target))],
                }
                for ns in namespaces
                for target in targets
            ]
        else:
            target = _TARGET.findall(expr)[0]
            ns = _NAMESPACE.findall(expr)[0]
            result = [{"metric": {}, "value": [now, repr(self.value(expr, ns, target))]}]
        return {"status": "success", "data": {"resultType": "vector", "result": result}}

    async def handle_query(self, request: web.Request) -> web.Response:
        expr = request.query.get("query")
        if expr is None:
            expr = str((await request.post()).get("query", ""))
        self.queries.append(expr)
        return web.json_response(self.answer(expr))

    async def handle_query_range(self, request: web.Request) -> web.Response:
        """A matrix with the instant value at every step of the range (Prometheus' grid)."""
        form = dict(request.query) | {k: str(v) for k, v in (await request.post()).items()}
        expr = form.get("query", "")
        start, end, step = float(form["start"]), float(form["end"]), float(form["step"])
        self.ranges.append((expr, start, end, step))
        target, ns = _TARGET.findall(expr)[0], _NAMESPACE.findall(expr)[0]
        value = repr(self.value(expr, ns, target))
        points = [[start + i * step, value] for i in range(int((end - start) // step) + 1)]
        result = [{"metric": {}, "values": points}] if points else []
        return web.json_response(
            {"status": "success", "data": {"resultType": "matrix", "result": result}}
        )

    async def handle_hook(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.hooks.append((name, await request.json()))
        return web.Response(text="ok")


@asynccontextmanager
async def serve_fake_prometheus() -> AsyncIterator[FakePrometheus]:
    prom = FakePrometheus()
    app = web.Application()
    app.router.add_route("*", "/api/v1/query", prom.handle_query)
    app.router.add_route("*", "/api/v1/query_range", prom.handle_query_range)
    app.router.add_post("/hooks/{name}", prom.handle_hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    prom.url = f"http://{host}:{port}"
    try:
        yield prom
    finally:
        await runner.cleanup()


# ---------------------------------------------------------------------------- the fake cluster


def ready_status(body: Mapping[str, Any]) -> Body:
    """What the Deployment controller reports once a rollout has completed."""
    replicas = int((body.get("spec") or {}).get("replicas", 1))
    stamp = "2026-01-01T00:00:00Z"
    return {
        "observedGeneration": body["metadata"].get("generation", 1),
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "conditions": [
            {
                "type": "Available",
                "status": "True",
                "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability.",
                "lastUpdateTime": stamp,
                "lastTransitionTime": stamp,
            },
            {
                "type": "Progressing",
                "status": "True",
                "reason": "NewReplicaSetAvailable",
                "message": f'Deployment "{body["metadata"]["name"]}" has successfully progressed.',
                "lastUpdateTime": stamp,
                "lastTransitionTime": stamp,
            },
        ],
    }


StatusRow = tuple[str, int, int]  # (phase, canaryWeight, failedChecks)


@dataclass
class World:
    """One fake API server (with a Deployment controller) and one fake Prometheus."""

    api: FakeKubeApi
    prom: FakePrometheus
    dir: Path
    label: str
    clock: VirtualClock
    time: TimeKeeper
    #: Every distinct (phase, canaryWeight, failedChecks) each Canary was stored with, in order.
    statuses: dict[str, list[StatusRow]] = field(default_factory=dict)
    #: Every distinct pod template each Deployment was stored with, in order.
    templates: dict[str, list[Body]] = field(default_factory=dict)

    def install(self) -> None:
        store = self.api.store
        commit = store._commit

        def observed_commit(
            group: str, plural: str, key: tuple[str, str], body: Body, type_: str
        ) -> None:
            if (group, plural) == ("apps", "deployments"):
                # kube-controller-manager's part: the rollout completes in the same write.
                body["status"] = ready_status(body)
                template = copy.deepcopy(body["spec"]["template"])
                seen = self.templates.setdefault(key[1], [])
                if not seen or seen[-1] != template:
                    seen.append(template)
            commit(group, plural, key, body, type_)
            if (group, plural) == ("flagger.app", "canaries"):
                status = body.get("status") or {}
                row = (
                    str(status.get("phase", "")),
                    int(status.get("canaryWeight", 0)),
                    int(status.get("failedChecks", 0)),
                )
                rows = self.statuses.setdefault(key[1], [])
                if status and (not rows or rows[-1] != row):
                    rows.append(row)

        store._commit = observed_commit  # type: ignore[method-assign]

    def kubeconfig(self, token: str = "canary-engine") -> Path:
        config = self.api.kubeconfig()
        config["users"][0]["user"]["token"] = token
        path = self.dir / f"kubeconfig-{self.label}-{token}"
        path.write_text(json.dumps(config))
        return path

    # -- kubectl

    def canary(self, name: str = NAME) -> Body:
        body = self.api.store.get(CANARIES, NS, name)
        assert body is not None, f"canary {name} not found"
        return body

    def status(self, name: str = NAME) -> Body:
        return dict(self.canary(name).get("status") or {})

    def phase(self, name: str = NAME) -> str:
        return str(self.status(name).get("phase", ""))

    def routed_weight(self, name: str = NAME) -> int:
        """The canary weight the apex Service routes (the kubernetes router's annotation)."""
        apex = self.api.store.get("services", NS, name)
        annotations = ((apex or {}).get("metadata") or {}).get("annotations") or {}
        weights = json.loads(annotations.get("canary-engine.io/weights", '{"canary": 0}'))
        return int(weights["canary"])

    def deployment(self, name: str) -> Body:
        body = self.api.store.get(DEPLOYMENTS, NS, name)
        assert body is not None, f"deployment {name} not found"
        return body

    def image(self, name: str) -> str:
        return str(self.deployment(name)["spec"]["template"]["spec"]["containers"][0]["image"])

    def replicas(self, name: str) -> int:
        return int(self.deployment(name)["spec"]["replicas"])

    def events(self, name: str = NAME) -> list[Body]:
        """``kubectl get events --field-selector involvedObject.kind=Canary``, oldest first."""
        found = [
            e
            for e in self.api.store.objects("events", NS)
            if e["involvedObject"]["kind"] == "Canary" and e["involvedObject"]["name"] == name
        ]
        return sorted(found, key=lambda e: int(e["metadata"]["resourceVersion"]))

    def messages(self, name: str = NAME) -> list[str]:
        return [e["message"] for e in self.events(name)]

    async def set_image(self, name: str, image: str) -> None:
        """``kubectl set image deployment/<name> <name>=<image>``: a patch over HTTP."""
        ops = [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": image}]
        url = f"{self.api.url}/apis/apps/v1/namespaces/{NS}/deployments/{name}"
        headers = {"Content-Type": JSON_PATCH, "Authorization": "Bearer kubectl"}
        async with (
            aiohttp.ClientSession() as session,
            session.patch(url, data=json.dumps(ops), headers=headers) as response,
        ):
            assert response.status == 200, await response.text()

    def seed(self, name: str = NAME, *, template: bool = True, **analysis: Any) -> None:
        """The seed setup's webhook-server: Deployment, Canary (the sample) and MetricTemplate,
        with the webhooks and the template's Prometheus pointed at the fake."""
        canary, metric_template = yaml.safe_load_all(SAMPLE.read_text())
        canary["metadata"]["name"] = name
        canary["spec"]["targetRef"]["name"] = name
        canary["spec"]["analysis"].update(analysis)
        for hook in canary["spec"]["analysis"]["webhooks"]:
            hook["url"] = f"{self.prom.url}/hooks/{hook['name']}"
        metric_template["spec"]["provider"]["address"] = self.prom.url
        self.api.store.seed(deployment(name, V1), canary)
        if template:
            self.api.store.seed(metric_template)


def deployment(name: str, image: str) -> Body:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": name}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": name, "image": image, "ports": [{"containerPort": 8080}]}
                    ]
                },
            },
        },
    }


@asynccontextmanager
async def open_world(directory: Path, label: str = "") -> AsyncIterator[World]:
    threads = CountingExecutor()
    asyncio.get_running_loop().set_default_executor(threads)
    async with serve_kube_api() as api, serve_fake_prometheus() as prom:
        clock = VirtualClock()
        keeper = TimeKeeper(api, clock, threads)
        w = World(api, prom, directory, label, clock, keeper)
        w.install()
        try:
            yield w
            # what a real API server would have dropped against config/deploy/crd
            assert api.pruned == [], f"fields the CRD does not declare: {api.pruned}"
        finally:
            await keeper.aclose()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(tmp_path) as w:
        yield w


# ---------------------------------------------------------------------------- the controller


@dataclass
class Running:
    """One ``canary-engine run`` (run_controller) in this process."""

    task: asyncio.Task[int]
    stop: asyncio.Event
    port: int
    token: str

    async def shutdown(self) -> int:
        self.stop.set()
        return await asyncio.wait_for(self.task, 10)

    async def scrape(self, path: str = "/metrics") -> tuple[int, str]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{self.port}{path}") as response,
        ):
            return response.status, await response.text()


async def start(
    w: World,
    *,
    identity: str = "canary-engine-0",
    leader_elect: bool = False,
    namespaces: tuple[str, ...] = (),
    **settings: Any,
) -> Running:
    port = free_port()
    options = RunOptions(
        kubeconfig=str(w.kubeconfig(identity)),
        namespaces=namespaces,
        selector={},
        metrics_server=w.prom.url,
        mesh_provider="kubernetes",
        port=port,
        leader_elect=leader_elect,
        lease_namespace=LEASE_NS,
        identity=identity,
        version="test",
        **settings,
    )
    stop = asyncio.Event()
    task = asyncio.ensure_future(run_controller(options, clock=w.clock, stop=stop))
    run = Running(task, stop, port, f"Bearer {identity}")
    # Real time, before the test moves virtual time: /readyz answers 200 once the Canary cache
    # has synced (a standby at once); then let the first ticks start.
    async with asyncio.timeout(10):
        while True:
            alive(run)()
            try:
                if (await run.scrape("/readyz"))[0] == 200:
                    break
            except aiohttp.ClientConnectionError:
                pass  # not listening yet
            await asyncio.sleep(0.005)
    await settle(w.api, w.time.threads)
    return run


async def release(w: World, *phases: str) -> None:
    """A controller initialises the seeded Canary, V2 is applied, and the run goes on until the
    Canary reaches one of ``phases``; the controller then stops cleanly."""
    run = await start(w)
    try:
        await w.time.run_until(lambda: w.phase() == "Initialized", also=alive(run))
        await w.set_image(NAME, V2)
        await w.time.run_until(lambda: w.phase() in phases, also=alive(run))
    finally:
        assert await run.shutdown() == 0


#: How long everything must stay quiet before virtual time may move: in event-loop turns (a
#: request travels through several turns between the controller's wake-up and the server's
#: handler, and everything runs in this one loop) and in real time.
QUIET_TURNS = 20
QUIET_SECONDS = 0.002


class CountingExecutor(ThreadPoolExecutor):
    """The loop's default executor, counting the jobs not finished yet: aiohttp hands part of
    every request to a thread (netrc and proxy lookups, as kubernetes-asyncio enables
    ``trust_env``), and on a loaded machine that takes real time with no loop turn to see."""

    def __init__(self) -> None:
        super().__init__(max_workers=4, thread_name_prefix="test-default-executor")
        self.pending = 0
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._lock:
            self.pending += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _: Future[Any]) -> None:
        with self._lock:
            self.pending -= 1


async def settle(api: FakeKubeApi, threads: CountingExecutor) -> None:
    """Wait (real time) until the API server has answered everything and heard nothing new for
    a moment, and no thread job is pending: watch events have been delivered, renewals
    written, tasks spawned.

    Counting loop turns, not only milliseconds, keeps this right on a loaded machine: when the
    process is descheduled, milliseconds pass in one turn."""
    loop = asyncio.get_running_loop()
    seen, turns, since = -1, 0, loop.time()
    while turns < QUIET_TURNS or loop.time() - since < QUIET_SECONDS:
        busy = len(api._handlers) - api.open_watches
        if busy > 0 or threads.pending > 0 or len(api.log) != seen:
            seen, turns, since = len(api.log), 0, loop.time()
        else:
            turns += 1
        await asyncio.sleep(0 if turns < QUIET_TURNS else 0.001)


class TimeKeeper:
    """The one clock actor of the test: moves virtual time only when asked to, in steps.

    While idle it waits on a plain queue (not on the clock), which holds virtual time still, so
    the controller never free-runs between the test's steps (e.g. while it scrapes /metrics or
    shuts a controller down).
    """

    def __init__(self, api: FakeKubeApi, clock: VirtualClock, threads: CountingExecutor) -> None:
        self._api = api
        #: The loop's default executor (settle waits for its jobs).
        self.threads = threads
        self.clock = clock
        self._requests: asyncio.Queue[
            tuple[Callable[[], Awaitable[float]], asyncio.Future[float]]
        ] = asyncio.Queue()
        self._task = clock.spawn(self._serve())

    async def _serve(self) -> None:
        while True:
            job, answer = await self._requests.get()
            try:
                answer.set_result(await job())
            except Exception as exc:
                answer.set_exception(exc)

    async def run_until(
        self,
        done: Callable[[], bool],
        *,
        step: float = 5.0,
        limit: float = 3600.0,
        also: Callable[[], Any] | None = None,
        state: Callable[[], object] | None = None,
        horizon: float | None = None,
    ) -> float:
        """Move virtual time (in ``step``s, settling in between) until ``done()``; the virtual
        seconds it took. ``also`` runs after each settle (to fail fast on a dead controller);
        ``state`` describes what the test waits on, for the message when it never happens;
        time never steps past ``horizon``."""
        clock = self.clock

        async def job() -> float:
            start_at = clock.now()
            while True:
                await settle(self._api, self.threads)
                if also is not None:
                    also()
                if done():
                    return clock.now() - start_at
                if clock.now() - start_at >= limit:
                    described = f"; state: {state()}" if state is not None else ""
                    raise AssertionError(f"not done after {limit} virtual seconds{described}")
                # At most one step, and no further than the next wake-up, so every wake-up
                # (a canary's tick, a lease renewal, a cache's back-off) is followed by a
                # settle before time moves again.
                now = clock.now()
                wake = clock.next_deadline()
                await clock.sleep(
                    min(
                        step,
                        step if wake is None else max(0.0, wake - now),
                        step if horizon is None else max(0.0, horizon - now),
                    )
                )

        answer: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._requests.put_nowait((job, answer))
        return await answer

    async def advance(self, seconds: float, *, step: float = 5.0) -> None:
        until = self.clock.now() + seconds
        await self.run_until(lambda: self.clock.now() >= until, step=step, horizon=until)

    async def aclose(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def alive(*runs: Running) -> Callable[[], None]:
    def check() -> None:
        for run in runs:
            if run.task.done():
                raise AssertionError(f"the controller stopped: {run.task.result()}")

    return check


def writes(w: World, *, by: str | None = None) -> list[tuple[str, str, Any]]:
    """(method, path, body) of every write request, optionally only those of one client."""
    return [
        (r.method, r.path, r.body)
        for r in w.api.log
        if r.method in WRITES and (by is None or r.authorization == by)
    ]


def images(w: World, name: str) -> list[str]:
    """The image of each distinct pod template Deployment ``name`` was stored with, in order:
    one entry per write that changed the template."""
    return [t["spec"]["containers"][0]["image"] for t in w.templates[name]]


def timeline(w: World, name: str = NAME) -> list[tuple[float, str]]:
    """(virtual seconds, message) of the Canary's events, oldest first."""
    base = VirtualClock().utcnow()
    return [
        (
            (
                datetime.fromisoformat(e["firstTimestamp"].replace("Z", "+00:00")) - base
            ).total_seconds(),
            e["message"],
        )
        for e in w.events(name)
    ]


@contextmanager
def no_reads_from(w: World) -> Iterator[None]:
    w.api.reset_counts()
    yield
    assert w.api.reads() == 0, [(r.verb, r.path) for r in w.api.log if r.verb in ("get", "list")]


# ---------------------------------------------------------------------------- the tests


def condition(status: Mapping[str, Any], type_: str) -> Body:
    found = [c for c in status.get("conditions") or [] if c.get("type") == type_]
    assert len(found) == 1, status
    return dict(found[0])


ROLLOUT_EVENTS = [
    "all the metrics providers are available!",
    "Initialization done! webhook-server.staging",
    "New revision detected! Scaling up webhook-server.staging",
    "Starting canary analysis for webhook-server.staging",
    "Pre-rollout check acceptance-test passed",
    "Advance webhook-server.staging canary weight 15",
    "Advance webhook-server.staging canary weight 30",
    "Copying webhook-server.staging template spec to webhook-server-primary.staging",
    "Routing all traffic to primary",
    "Promotion completed! Scaling down webhook-server.staging",
]


async def test_a_full_rollout_through_run_controller(world: World) -> None:
    w = world
    w.seed()
    run = await start(w)
    try:
        await w.time.run_until(lambda: w.phase() == "Initialized", also=alive(run))
        assert w.image(f"{NAME}-primary") == V1
        assert w.replicas(NAME) == 0
        assert (await run.scrape("/healthz"))[0] == 200
        assert (await run.scrape("/readyz"))[0] == 200

        await w.set_image(NAME, V2)
        took = await w.time.run_until(lambda: w.phase() == "Succeeded", also=alive(run))
        status_code, metrics = await run.scrape()
    finally:
        assert await run.shutdown() == 0

    assert w.image(f"{NAME}-primary") == V2
    assert w.image(NAME) == V2
    assert w.replicas(NAME) == 0
    assert w.replicas(f"{NAME}-primary") == 2
    status = w.status()
    assert status["phase"] == "Succeeded"
    promoted = condition(status, "Promoted")
    assert (promoted["status"], promoted["reason"]) == ("True", "Succeeded")
    assert status["lastAppliedSpec"] == status["lastPromotedSpec"]
    assert status["failedChecks"] == 0 and status["canaryWeight"] == 0
    # detection, 2 analysis steps, promotion, finalising, succeeded: 5 intervals (+ jitter)
    assert 4 * 54 <= took <= 6 * 66 + 5
    events = w.events()
    assert [e["message"] for e in events] == ROLLOUT_EVENTS
    assert {(e["reason"], e["type"], e["source"]["component"]) for e in events} == {
        ("Synced", "Normal", "flagger")
    }
    involved = {(e["involvedObject"]["apiVersion"], e["involvedObject"]["uid"]) for e in events}
    assert involved == {("flagger.app/v1beta1", w.canary()["metadata"]["uid"])}
    assert [h for h, _ in w.prom.hooks] == ["acceptance-test", "load-test", "load-test"]

    assert status_code == 200
    assert 'flagger_canary_status{name="webhook-server",namespace="staging"} 1.0' in metrics
    assert (
        'flagger_canary_weight{namespace="staging",workload="webhook-server-primary"} 100.0'
        in metrics
    )
    assert 'flagger_canary_weight{namespace="staging",workload="webhook-server"} 0.0' in metrics
    assert (
        'flagger_canary_successes_total{analysis_status="completed",deployment_strategy="canary",'
        'name="webhook-server",namespace="staging"} 1.0'
    ) in metrics
    assert 'flagger_canary_total{namespace="staging"} 1.0' in metrics
    assert 'flagger_info{mesh_provider="kubernetes",version="test"} 1.0' in metrics
    assert (
        'flagger_canary_metric_analysis{metric="request-success-rate",name="webhook-server",'
        'namespace="staging"} 99.5'
    ) in metrics


async def test_a_judged_metric_asks_prometheus_for_the_wall_clock_window(world: World) -> None:
    # The judge's range queries and the hosted providers' windows are Unix time. run used to
    # pass the clock's now(), the event loop's monotonic seconds (seconds since boot with the
    # real clock), so every judged range query asked for 1970, found no primary history, and
    # a healthy Canary ended inconclusive, then rolled back.
    w = world
    w.seed(template=True)
    canary = w.canary()
    metrics = canary["spec"]["analysis"]["metrics"]
    judged = next(m for m in metrics if m.get("templateRef"))
    judged["judge"] = {"baseline": "primary", "harmful": "increase", "window": "1h"}
    w.api.store.seed(canary)
    await release(w, "Succeeded", "Failed")
    assert w.phase() == "Succeeded", w.messages()
    assert w.prom.ranges, "the judge asked no range query"
    wall = w.clock.utcnow().timestamp()
    for _, start_at, end_at, _ in w.prom.ranges:
        assert wall - 3600 <= end_at <= wall  # this run's ticks, in Unix seconds
        assert end_at - start_at < 2 * 3600  # the window (and a margin), not since 1970


async def test_the_controller_flags_of_flaggers_chart_reach_the_workload(world: World) -> None:
    # -selector-labels and -include-label-prefix (Flagger's chart values selectorLabels,
    # includeLabelPrefix): a target selected by its own label, its team labels kept on the primary
    w = world
    w.seed()
    target = deployment(NAME, V1)
    for labels in (target["metadata"]["labels"], target["spec"]["template"]["metadata"]["labels"]):
        labels.clear()
        labels.update({"team-app": NAME, "team/owner": "payments", "other": "x"})
    target["spec"]["selector"] = {"matchLabels": {"team-app": NAME}}
    w.api.store.seed(target)
    run = await start(
        w,
        routing=RouterOptions(selector_labels=("team-app",)),
        include_label_prefixes=("team",),
    )
    try:
        await w.time.run_until(lambda: w.phase() == "Initialized", also=alive(run))
    finally:
        assert await run.shutdown() == 0
    primary = w.deployment(f"{NAME}-primary")
    assert primary["spec"]["selector"] == {"matchLabels": {"team-app": f"{NAME}-primary"}}
    assert primary["metadata"]["labels"] == {
        "team-app": f"{NAME}-primary",
        "team/owner": "payments",
    }


async def test_a_failing_rollout_rolls_back_and_leaves_the_primary_untouched(world: World) -> None:
    w = world
    w.seed()
    w.prom.health = lambda namespace, target: target != NAME  # the new pods answer 5xx
    run = await start(w)
    try:
        await w.time.run_until(lambda: w.phase() == "Initialized", also=alive(run))
        primary_before = w.deployment(f"{NAME}-primary")
        await w.set_image(NAME, V2)
        await w.time.run_until(lambda: w.phase() == "Failed", also=alive(run))
        _, metrics = await run.scrape()
    finally:
        assert await run.shutdown() == 0

    primary = w.deployment(f"{NAME}-primary")
    assert primary["spec"]["template"] == primary_before["spec"]["template"]
    assert primary["metadata"]["generation"] == primary_before["metadata"]["generation"]
    assert w.image(f"{NAME}-primary") == V1
    assert images(w, f"{NAME}-primary") == [V1]
    assert w.replicas(NAME) == 0
    status = w.status()
    assert status["phase"] == "Failed"
    promoted = condition(status, "Promoted")
    assert (promoted["status"], promoted["reason"]) == ("False", "Failed")
    # threshold 5: five failed checks, then the rollback on the next tick
    assert w.statuses[NAME] == [
        ("Initialized", 0, 0),
        ("Progressing", 0, 0),
        ("Progressing", 15, 0),
        *[("Progressing", 15, n) for n in range(1, 6)],
        ("Failed", 0, 0),
    ]
    messages = w.messages()
    halt = "Halt webhook-server.staging advancement success rate 50.00% < 95%"
    # the five identical Halts are one Event counted five times, as client-go's EventCorrelator
    # (Flagger's recorder) writes them
    halts = [(e["message"], e["count"]) for e in w.events() if e["message"].startswith("Halt")]
    assert halts == [(halt, 5)]
    assert messages[-2:] == [
        "Rolling back webhook-server.staging failed checks threshold reached 5",
        "Canary failed! Scaling down webhook-server.staging",
    ]
    warnings = [e["message"] for e in w.events() if e["type"] == "Warning"]
    assert warnings == [halt, *messages[-2:]]
    assert 'flagger_canary_status{name="webhook-server",namespace="staging"} 2.0' in metrics
    assert (
        'flagger_canary_failures_total{analysis_status="completed",deployment_strategy="canary",'
        'name="webhook-server",namespace="staging"} 1.0'
    ) in metrics


async def test_injected_500s_on_writes_are_retried_next_tick_without_failed_checks(
    world: World,
) -> None:
    w = world
    w.seed()
    run = await start(w)
    target = f"/apis/apps/v1/namespaces/{NS}/deployments/{NAME}"
    try:
        await w.time.run_until(lambda: w.phase() == "Initialized", also=alive(run))
        await w.set_image(NAME, V2)
        # scaling the target up for the new revision fails twice
        w.api.fail_next(2, method="PATCH", path=target)
        await w.time.run_until(lambda: w.phase() == "Progressing", also=alive(run))
        # then a status write, an event and the promotion's write to the primary
        w.api.fail_next(1, method="PATCH", path=f"/canaries/{NAME}/status")
        w.api.fail_next(1, method="POST", path="/events")
        w.api.fail_next(1, method="PATCH", path=f"{target}-primary")
        await w.time.run_until(lambda: w.phase() == "Succeeded", also=alive(run))
    finally:
        assert await run.shutdown() == 0
    assert w.image(f"{NAME}-primary") == V2
    assert w.replicas(NAME) == 0
    assert w.phase() == "Succeeded"
    # no failed check was counted for any of them, and the primary was promoted once
    assert all(failed == 0 for _, _, failed in w.statuses[NAME])
    assert images(w, f"{NAME}-primary") == [V1, V2]
    injected = "500 Internal Server Error: injected failure"
    # (the two identical warnings are one Event counted twice, as client-go writes them)
    warnings = [(e["message"], e.get("count", 1)) for e in w.events() if e["type"] == "Warning"]
    assert [m for m, _ in warnings] == [
        f"patch Deployment/staging/webhook-server: {injected}",
        "status of Canary/staging/webhook-server could not be written: "
        f"patch status of Canary/staging/webhook-server: {injected}",
        f"patch Deployment/staging/webhook-server-primary: {injected}",
    ]
    assert warnings[0][1] == 2
    # each failed tick was retried on the next tick, one interval later (not sooner: a status
    # write that failed after the routes moved must not cut the analysis of that step short)
    moments = [when for when, _ in timeline(w)]
    assert all(b - a == 0 or b - a >= 54 for a, b in itertools.pairwise(moments))
    advances = [when for when, m in timeline(w) if m.startswith("Advance")]
    assert len(advances) == 2 and advances[1] - advances[0] >= 54


# ---------------------------------------------------------------------------- kill and restart


class KillingCluster:
    """A KubeCluster whose process "dies" right after a chosen write reached the API server:
    the writing task freezes (as if the process were gone) and ``killed`` is set; the test then
    stops the controller. Everything else is the real KubeCluster."""

    def __init__(
        self,
        inner: Any,
        clock: VirtualClock,
        die_after: Callable[[int, bool], bool],
        kills: list[tuple[int, bool]],
    ) -> None:
        self._inner = inner
        self._clock = clock
        self._die_after = die_after  # (n-th write of this run, was it a status write) -> die?
        self._kills = kills
        self._writes = 0
        self.killed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def create(self, body: Body) -> Body:
        created: Body = await self._inner.create(body)
        await self._wrote(status=False)
        return created

    async def patch(self, ref: Any, patch: Body, **kwargs: Any) -> Body:
        patched: Body = await self._inner.patch(ref, patch, **kwargs)
        await self._wrote(status=bool(kwargs.get("status")))
        return patched

    async def delete(self, ref: Any) -> None:
        await self._inner.delete(ref)
        await self._wrote(status=False)

    async def _wrote(self, *, status: bool) -> None:
        self._writes += 1
        if self.killed or self._die_after(self._writes, status):
            self.killed = True
            self._kills.append((self._writes, status))
            # Dead: never return. (Parked on the clock, so the test's time can still move.)
            await self._clock.wait(asyncio.get_running_loop().create_future())


def fail_one_analysis(w: World) -> Health:
    """The new pods answer 5xx while they take 15 % of the traffic, until that has been counted
    as one failed check: one failed check in the whole rollout however often a tick is re-run."""

    def health(namespace: str, target: str) -> bool:
        return (w.routed_weight(target), w.status(target).get("failedChecks")) != (15, 0)

    return health


def first_seen(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


async def rollout(
    w: World, monkeypatch: pytest.MonkeyPatch, plan: Callable[[int], Callable[[int, bool], bool]]
) -> list[tuple[int, bool]]:
    """Initialise, set the new image and run until Succeeded, starting a fresh controller (new
    KubeCluster, caches, tasks) whenever the previous one was killed; ``plan(run)`` says when
    run number ``run`` dies. The kills: (n-th write of its run, was it a status write)."""
    kills: list[tuple[int, bool]] = []
    clusters: list[KillingCluster] = []

    @asynccontextmanager
    async def opener(*args: Any, **kwargs: Any) -> AsyncIterator[KillingCluster]:
        async with open_kube_cluster(*args, **kwargs) as inner:
            clusters.append(KillingCluster(inner, w.clock, plan(runs), kills))
            yield clusters[-1]

    monkeypatch.setattr("engine.shell.run.open_kube_cluster", opener)
    image_set = False

    def done() -> bool:
        return (
            (bool(clusters) and clusters[-1].killed)
            or w.phase() == "Succeeded"
            or (w.phase() == "Initialized" and not image_set)
        )

    runs = 0
    while w.api.store.get(CANARIES, NS, NAME) is None or w.phase() != "Succeeded":
        runs += 1
        assert runs < 200, "no progress"
        run = await start(w)
        try:
            await w.time.run_until(done, also=alive(run))
        finally:
            assert await run.shutdown() == 0
        if w.phase() == "Initialized" and not image_set:
            await w.set_image(NAME, V2)
            image_set = True
    return kills


def at_every_tick(run: int) -> Callable[[int, bool], bool]:
    """Every run dies right after its first status write: at the end of each tick that
    changed something."""
    return lambda n, status: status


class AfterEveryWrite:
    """Kill plans that die after every single write of every tick: for each tick, a run dies
    after its 1st write, the next run (re-running that tick) after its 2nd, and so on, until a
    run gets through to the tick's status write (and dies there: the next tick starts over at
    its 1st write). Ticks are re-run from every partly carried-out state."""

    def __init__(self) -> None:
        self.k = 1

    def __call__(self, run: int) -> Callable[[int, bool], bool]:
        k = self.k

        def die(n: int, status: bool) -> bool:
            if status:
                self.k = 1
                return True
            if n == k:
                self.k = k + 1
                return True
            return False

        return die


def collapse(items: list[Any]) -> list[Any]:
    return [item for i, item in enumerate(items) if i == 0 or items[i - 1] != item]


async def test_a_controller_killed_at_every_tick_finishes_the_rollout_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        open_world(tmp_path, "reference") as ref,
        open_world(tmp_path, "ticks") as ticks,
        open_world(tmp_path, "middle") as middle,
    ):
        for w in (ref, ticks, middle):
            w.seed()
            w.prom.health = fail_one_analysis(w)
        assert await rollout(ref, monkeypatch, lambda run: lambda n, status: False) == []
        tick_kills = await rollout(ticks, monkeypatch, at_every_tick)
        middle_kills = await rollout(middle, monkeypatch, AfterEveryWrite())

    # the uninterrupted run: one failed check at weight 15, then promotion
    assert ref.statuses[NAME] == [
        ("Initialized", 0, 0),
        ("Progressing", 0, 0),
        ("Progressing", 15, 0),
        ("Progressing", 15, 1),
        ("Progressing", 30, 1),
        ("Promoting", 30, 1),
        ("Finalising", 0, 1),
        ("Succeeded", 0, 1),
    ]
    # killed after every tick that wrote a status: exactly the same statuses in the same order
    assert tick_kills == [(n, True) for n, _ in tick_kills]
    assert len(tick_kills) == len(ref.statuses[NAME])
    assert ticks.statuses[NAME] == ref.statuses[NAME]
    # ... and the same events, but for what follows the run's last status write (its
    # post-rollout hooks, count and final event): a controller killed right after that write
    # never sends them, as Flagger, which does them once the write succeeded, at most once
    after_the_last_write = [f"Promotion completed! Scaling down {NAME}.{NS}"]
    assert ticks.messages() == [m for m in ref.messages() if m not in after_the_last_write]
    # killed in the middle of ticks too: a tick killed after moving the routes but before its
    # status write is finished by the restarted controller from the routes, so the status may
    # skip a weight; phases and failedChecks still go exactly the same way
    assert sum(not status for _, status in middle_kills) >= len(ref.statuses[NAME])
    for key in (0, 2):
        got = collapse([row[key] for row in middle.statuses[NAME]])
        assert got == collapse([row[key] for row in ref.statuses[NAME]])
    # the events of a re-run tick are sent again; the events of a tick killed after its routes
    # moved may be lost (as in Flagger: "Advance ..." follows the route change); no others
    assert set(middle.messages()) <= set(ref.messages())
    milestones = [
        m for m in ref.messages() if not m.startswith("Advance") and m not in after_the_last_write
    ]
    assert first_seen([m for m in middle.messages() if m in milestones]) == milestones

    for w in (ticks, middle):
        # promoted once: the primary's template was written for the new revision exactly once
        assert images(w, f"{NAME}-primary") == images(ref, f"{NAME}-primary") == [V1, V2]
        assert (
            w.deployment(f"{NAME}-primary")["metadata"]["generation"]
            == ref.deployment(f"{NAME}-primary")["metadata"]["generation"]
        )
        assert w.image(f"{NAME}-primary") == V2 and w.replicas(NAME) == 0
        final, expected = w.status(), ref.status()
        compared = ("phase", "canaryWeight", "failedChecks", "lastAppliedSpec", "lastPromotedSpec")
        for name in compared:
            assert final[name] == expected[name], name
        assert condition(final, "Promoted") | {"lastUpdateTime": "", "lastTransitionTime": ""} == (
            condition(expected, "Promoted") | {"lastUpdateTime": "", "lastTransitionTime": ""}
        )
        # the same events (a tick re-run after a kill repeats the events it had already sent)


# ---------------------------------------------------------------------------- leader election

LEASE = "canary-engine-leader-election"


def lease_holder(w: World) -> str | None:
    lease = w.api.store.get("leases.coordination.k8s.io", LEASE_NS, LEASE)
    return None if lease is None else (lease.get("spec") or {}).get("holderIdentity")


async def test_only_the_leader_writes_and_the_standby_takes_over_when_it_stops(
    world: World,
) -> None:
    w = world
    w.seed()
    a = await start(w, identity="canary-engine-a", leader_elect=True)
    b: Running | None = None
    try:
        await w.time.run_until(
            lambda: lease_holder(w) == "canary-engine-a" and w.phase() == "Initialized",
            step=1,
            also=alive(a),
        )
        b = await start(w, identity="canary-engine-b", leader_elect=True)
        await w.set_image(NAME, V2)
        await w.time.run_until(
            lambda: w.status().get("canaryWeight") == 15, step=1, also=alive(a, b)
        )
        assert (await b.scrape("/readyz"))[0] == 200  # a standby is ready
        # only the leader wrote anything; the standby only looked at the Lease
        assert writes(w, by=b.token) == []
        standby = {(r.verb, r.resource) for r in w.api.log if r.authorization == b.token}
        assert standby <= {("list", p) for p in PLURALS} | {("watch", p) for p in PLURALS} | {
            ("get", "leases")
        }
        assert {(method, path) for method, path, _ in writes(w, by=a.token)} >= {
            ("PATCH", f"/apis/flagger.app/v1beta1/namespaces/{NS}/canaries/{NAME}/status"),
            ("PATCH", f"/apis/apps/v1/namespaces/{NS}/deployments/{NAME}"),
            ("POST", f"/apis/apps/v1/namespaces/{NS}/deployments"),
            ("POST", f"/api/v1/namespaces/{NS}/events"),
        }

        seen = len(w.api.log)
        assert await a.shutdown() == 0
        # stopping (SIGTERM) cancels the work first, then hands the Lease back
        stopping = [(r.verb, r.resource) for r in w.api.log[seen:] if r.authorization == a.token]
        assert set(stopping) <= {("get", "leases"), ("patch", "leases")}  # (and a renewal)
        assert stopping[-2:] == [("get", "leases"), ("patch", "leases")]
        assert lease_holder(w) == ""
        seen = len(w.api.log)
        took = await w.time.run_until(
            lambda: lease_holder(w) == "canary-engine-b", step=1, also=alive(b)
        )
        await w.time.run_until(lambda: w.phase() == "Succeeded", step=1, also=alive(b))
        _, metrics = await b.scrape()
    finally:
        if a is not None and not a.task.done():
            await a.shutdown()
        if b is not None:
            assert await b.shutdown() == 0
    # the standby took over at its next retry (2 s, seen within a 1 s step), well within the
    # lease duration (15 s)
    assert took <= 2 + 1
    assert not any(r.authorization == a.token for r in w.api.log[seen:])
    assert w.image(f"{NAME}-primary") == V2 and w.replicas(NAME) == 0
    assert images(w, f"{NAME}-primary") == [V1, V2]
    assert w.messages() == ROLLOUT_EVENTS
    assert (
        'flagger_canary_successes_total{analysis_status="completed",deployment_strategy="canary",'
        'name="webhook-server",namespace="staging"} 1.0'
    ) in metrics


# ---------------------------------------------------------------------------- isolation, reads


async def test_a_malformed_canary_gets_a_condition_and_a_warning_and_does_not_delay_another(
    world: World,
) -> None:
    w = world
    # no CRD validation on the fake API server: stepWeight 150 gets stored as is
    w.seed("broken", stepWeight=150)
    w.seed()
    w.api.store.seed(deployment("broken", V1))
    run = await start(w, namespaces=(NS,))  # scoped: per-namespace caches and watches
    try:
        await w.time.run_until(lambda: w.phase() == "Initialized", also=alive(run))
        await w.time.advance(10 * 60)  # ten more intervals
        await w.set_image(NAME, V2)
        await w.time.run_until(lambda: w.phase() == "Succeeded", also=alive(run))
    finally:
        assert await run.shutdown() == 0
    # the valid one was initialised on its first tick, at once (the controller started at 0)
    assert {m: t for t, m in timeline(w)}["Initialization done! webhook-server.staging"] == 0
    status = w.status("broken")
    validated = condition(status, "Validated")
    assert validated["status"] == "False" and validated["reason"] == "InvalidSpec"
    assert "stepWeight: must be 0..100, got 150" in validated["message"]
    assert "phase" not in status  # never driven
    events = w.events("broken")
    assert [e["type"] for e in events] == ["Warning"]  # once, not every tick
    assert events[0]["message"].startswith("Invalid canary spec: ")
    assert "stepWeight" in events[0]["message"]
    assert w.api.store.get(DEPLOYMENTS, NS, "broken-primary") is None
    assert w.messages() == ROLLOUT_EVENTS


async def test_at_steady_state_a_tick_sends_no_read_requests(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    names = [NAME, "webhook-server-2", "webhook-server-3"]
    for i, name in enumerate(names):
        w.seed(name, template=i == 0)
    ticks: list[str] = []
    on_tick = MetricsRecorder.on_tick

    def counting(self: MetricsRecorder, canary: Any, report: Any) -> None:
        ticks.append(canary.metadata.name)
        on_tick(self, canary, report)

    monkeypatch.setattr(MetricsRecorder, "on_tick", counting)
    run = await start(w)
    try:
        await w.time.run_until(
            lambda: all(w.phase(n) == "Initialized" for n in names), also=alive(run)
        )
        for name in names:
            await w.set_image(name, V2)
        await w.time.run_until(
            lambda: all(
                w.phase(n) == "Progressing" and w.status(n)["canaryWeight"] > 0 for n in names
            ),
            also=alive(run),
        )
        # A restarted controller ticks every canary at once, so their checks are scored in one
        # batch: one grouped query per builtin metric for all three (and the template's query,
        # arbitrary PromQL, once per canary).
        assert await run.shutdown() == 0
        asked = len(w.prom.queries)
        run = await start(w)
        await w.time.advance(1)  # the batching window (50 ms) is clock time
        queries = w.prom.queries[asked:]
        grouped = [q for q in queries if GROUP_TARGET_LABEL in q]
        assert len(grouped) == 2, queries
        assert all("(?:webhook-server|webhook-server-2|webhook-server-3)" in q for q in grouped)
        assert sum(q.lstrip().startswith("100 -") for q in queries) == 3
        await w.time.run_until(
            lambda: all(w.phase(n) == "Succeeded" for n in names), also=alive(run)
        )
        await w.time.advance(2 * 60)  # let the caches take in the last writes' watch events
        ticks.clear()
        with no_reads_from(w):
            await w.time.advance(5 * 60)
            assert w.api.count() == w.api.count("watch")  # no writes either
        # watches only: the caches' own, and nothing from the ticks. At rest with nothing
        # changed, a tick is skipped whole (the controller does not even parse the Canary)...
        assert ticks == []
        # ...and a tick that does run at rest reads everything from the caches: with skipping
        # turned off, five minutes of full ticks still send nothing but the watches.
        with monkeypatch.context() as always_tick, no_reads_from(w):
            always_tick.setattr(ReadLog, "unchanged", lambda self: False)
            await w.time.advance(5 * 60)
            assert w.api.count() == w.api.count("watch")
        assert sorted(set(ticks)) == sorted(names) and len(ticks) >= 4 * len(names)
        assert all(w.phase(n) == "Succeeded" for n in names)
        ticks.clear()
        # ...yet every canary keeps its schedule: a new revision is seen at its next tick
        # (interval 60 s, jitter 10 %).
        await w.set_image(names[1], V1)
        took = await w.time.run_until(lambda: w.phase(names[1]) == "Progressing", step=1)
        assert took <= 66
        assert ticks == [names[1]]
        # ...and so is a change to anything else a resting canary reads: a deleted Service is
        # put back at the next tick.
        assert w.api.store.remove("services", NS, f"{names[2]}-canary") is not None
        took = await w.time.run_until(
            lambda: w.api.store.get("services", NS, f"{names[2]}-canary") is not None, step=1
        )
        assert took <= 66
    finally:
        assert await run.shutdown() == 0
    for name in names:
        assert w.image(f"{name}-primary") == V2


class Partitionable:
    """A KubeCluster whose Lease requests hang while it is cut off (the API server's lease
    endpoint unreachable for this replica, requests unanswered); everything else works."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._healed = asyncio.Event()
        self._healed.set()

    def cut(self) -> None:
        self._healed.clear()

    def heal(self) -> None:
        self._healed.set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def _gate(self, kind: Any) -> None:
        if kind is LEASE_KIND:
            await self._healed.wait()

    async def get(self, ref: Any, *, fresh: bool = False) -> Body | None:
        await self._gate(ref.kind)
        found: Body | None = await self._inner.get(ref, fresh=fresh)
        return found

    async def create(self, body: Body) -> Body:
        await self._gate(kind_of(body))
        created: Body = await self._inner.create(body)
        return created

    async def patch(self, ref: Any, patch: Body, **kwargs: Any) -> Body:
        await self._gate(ref.kind)
        patched: Body = await self._inner.patch(ref, patch, **kwargs)
        return patched


async def test_a_leader_that_cannot_renew_stops_before_the_standby_takes_over(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    w.seed()
    partitioned: list[Partitionable] = []

    @asynccontextmanager
    async def opener(*args: Any, **kwargs: Any) -> AsyncIterator[Partitionable]:
        async with open_kube_cluster(*args, **kwargs) as inner:
            partitioned.append(Partitionable(inner))
            yield partitioned[-1]

    monkeypatch.setattr("engine.shell.run.open_kube_cluster", opener)
    a = await start(w, identity="canary-engine-a", leader_elect=True)
    monkeypatch.undo()
    b = await start(w, identity="canary-engine-b", leader_elect=True)
    try:
        await w.time.run_until(
            lambda: lease_holder(w) == "canary-engine-a" and w.phase() == "Initialized",
            step=1,
            also=alive(a, b),
        )
        await w.set_image(NAME, V2)
        await w.time.run_until(lambda: w.phase() == "Progressing", step=1, also=alive(a, b))
        partitioned[0].cut()
        cut_at = w.clock.now()
        a_stopped: list[float] = []
        a.task.add_done_callback(lambda _: a_stopped.append(w.clock.now()))
        b_leads_at = cut_at + await w.time.run_until(
            lambda: lease_holder(w) == "canary-engine-b", step=1, also=alive(b)
        )
        b_leads = len(w.api.log)
        # a gave up at its renew deadline (10 s after its last renewal) and exits 1, as Flagger
        # does; b took over only after a lease duration (15 s) without renewals
        assert a.task.done() and a.task.result() == 1
        assert a_stopped[0] <= cut_at + 10 + 1
        assert a_stopped[0] < b_leads_at <= cut_at + 15 + 2 * 2 + 1
        await w.time.run_until(lambda: w.phase() == "Succeeded", step=1, also=alive(b))
    finally:
        partitioned[0].heal()
        if not a.task.done():
            await a.shutdown()
        assert await b.shutdown() == 0
    # no split brain: nothing from a once b led
    assert not any(r.authorization == a.token and r.method in WRITES for r in w.api.log[b_leads:])
    assert w.image(f"{NAME}-primary") == V2
    assert images(w, f"{NAME}-primary") == [V1, V2]
