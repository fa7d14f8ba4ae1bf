"""KubeCluster against the fake API server (tests/kubeapi.py) over real HTTP.

Covers the protocol's round trips, the status subresource, preconditions, error translation
(no client-library exception escapes), and the watch-fed cache: reads without requests once
synced, read-your-writes, resuming a dropped watch, re-listing after 410 Gone.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from tests.kubeapi import FakeKubeApi, serve_kube_api
from tests.servers import free_port
from traffic.cluster._errors import ClusterError, ClusterUnavailable, Conflict, NotFound
from traffic.cluster._kube import KubeCluster, open_kube_cluster
from traffic.cluster._protocol import (
    CANARY,
    CONFIGMAP,
    DEFAULT_CACHE_KINDS,
    DEPLOYMENT,
    HTTP_ROUTE,
    HTTP_ROUTE_V1BETA1,
    LEASE,
    SERVICE,
    Body,
    Cluster,
    Kind,
    ObjectRef,
    WatchEvent,
)

pytestmark = pytest.mark.timeout(20)

T = TypeVar("T")
FAST: dict[str, Any] = {"backoff": (0.01, 0.05), "request_timeout": 2.0}


def deployment(
    name: str = "podinfo", namespace: str = "default", *, replicas: int = 1, **labels: str
) -> Body:
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "ghcr.io/podinfo:6.0.0"}]},
            },
        },
    }


def canary(name: str = "podinfo", namespace: str = "default", **spec: Any) -> Body:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}} | spec,
    }


def ref(kind: Kind, name: str = "podinfo", namespace: str = "default") -> ObjectRef:
    return ObjectRef(kind, namespace, name)


async def eventually(check: Callable[[], Awaitable[T]], within: float = 5.0) -> T:
    """Poll ``check`` until it returns something truthy (real time, bounded)."""
    async with asyncio.timeout(within):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.01)


def opened(kubeconfig: str, **kwargs: Any) -> AbstractAsyncContextManager[KubeCluster]:
    return open_kube_cluster(kubeconfig, **({"sleep": asyncio.sleep} | FAST | kwargs))


@pytest.fixture
async def api() -> AsyncIterator[FakeKubeApi]:
    async with serve_kube_api(crds=False) as server:  # toy Canaries: the server's generic behaviour
        yield server


@pytest.fixture
def kubeconfig(api: FakeKubeApi, tmp_path: Path) -> str:
    return str(api.write_kubeconfig(tmp_path / "kubeconfig"))


@pytest.fixture
async def cluster(kubeconfig: str) -> AsyncIterator[KubeCluster]:
    """A KubeCluster without cache: every read is a request."""
    async with opened(kubeconfig, cache_kinds=()) as c:
        yield c


# ---------------------------------------------------------------------------- round trips


async def test_create_then_get_and_list_round_trip(cluster: KubeCluster, api: FakeKubeApi) -> None:
    created = await cluster.create(deployment())
    await cluster.create(deployment("other", "prod", app="other"))
    await cluster.create(canary())

    assert created["metadata"]["resourceVersion"]
    assert created["metadata"]["uid"]
    got = await cluster.get(ref(DEPLOYMENT))
    assert got == created
    assert (await cluster.get(ref(CANARY)))["spec"]["targetRef"]["name"] == "podinfo"  # type: ignore[index]

    in_default = await cluster.list(DEPLOYMENT, "default")
    everywhere = await cluster.list(DEPLOYMENT, None)
    by_label = await cluster.list(DEPLOYMENT, None, labels={"app": "other"})
    assert [d["metadata"]["name"] for d in in_default] == ["podinfo"]
    assert [(d["metadata"]["namespace"], d["metadata"]["name"]) for d in everywhere] == [
        ("default", "podinfo"),
        ("prod", "other"),
    ]
    assert [d["metadata"]["name"] for d in by_label] == ["other"]
    # Built-in list items come without apiVersion/kind from the server; the adapter fills them.
    assert all(d["apiVersion"] == "apps/v1" and d["kind"] == "Deployment" for d in everywhere)
    assert ("list", "deployments") in api.requests
    assert any(r.query.get("labelSelector") == "app=other" for r in api.log)


async def test_create_defaults_the_namespace_and_supports_generate_name(
    cluster: KubeCluster,
) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"generateName": "podinfo-"},
        "data": {"a": "1"},
    }
    created = await cluster.create(body)
    assert created["metadata"]["namespace"] == "default"
    assert created["metadata"]["name"].startswith("podinfo-")
    assert body["metadata"] == {"generateName": "podinfo-"}  # the caller's dict is untouched


async def test_create_of_an_existing_object_raises_conflict(cluster: KubeCluster) -> None:
    await cluster.create(canary())
    with pytest.raises(Conflict, match="already exists"):
        await cluster.create(canary())


async def test_create_of_an_unknown_kind_is_a_value_error(cluster: KubeCluster) -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        await cluster.create({"apiVersion": "x/v1", "kind": "Nope", "metadata": {"name": "a"}})


async def test_patch_is_a_json_merge_patch_sent_as_merge_patch_json(
    cluster: KubeCluster, api: FakeKubeApi
) -> None:
    await cluster.create(canary(analysis={"interval": "1m", "threshold": 5}))
    patched = await cluster.patch(
        ref(CANARY), {"spec": {"analysis": {"threshold": None, "maxWeight": 50}}}
    )
    assert patched["spec"]["analysis"] == {"interval": "1m", "maxWeight": 50}
    assert patched["metadata"]["generation"] == 2
    patches = [r for r in api.log if r.method == "PATCH"]
    assert [r.content_type for r in patches] == ["application/merge-patch+json"]
    # Deployments too (the client would otherwise pick strategic merge for built-ins).
    await cluster.create(deployment())
    await cluster.patch(ref(DEPLOYMENT), {"spec": {"replicas": 3}})
    assert api.log[-1].content_type == "application/merge-patch+json"
    assert api.log[-1].authorization == "Bearer fake-token"


async def test_status_writes_change_only_status_and_spec_writes_ignore_status(
    cluster: KubeCluster, api: FakeKubeApi
) -> None:
    await cluster.create(canary())
    status = await cluster.patch(
        ref(CANARY),
        {"spec": {"skipAnalysis": True}, "status": {"phase": "Progressing", "canaryWeight": 10}},
        status=True,
    )
    assert status["status"] == {"phase": "Progressing", "canaryWeight": 10}
    assert "skipAnalysis" not in status["spec"]
    assert status["metadata"]["generation"] == 1
    assert api.requests[("patch", "canaries/status")] == 1

    spec = await cluster.patch(
        ref(CANARY), {"spec": {"skipAnalysis": True}, "status": {"phase": "Failed"}}
    )
    assert spec["spec"]["skipAnalysis"] is True
    assert spec["status"]["phase"] == "Progressing"
    assert spec["metadata"]["generation"] == 2

    await cluster.create(deployment())
    dep = await cluster.patch(ref(DEPLOYMENT), {"status": {"readyReplicas": 1}}, status=True)
    assert dep["status"] == {"readyReplicas": 1}


async def test_a_stale_expect_version_raises_conflict(cluster: KubeCluster) -> None:
    created = await cluster.create(canary())
    version = created["metadata"]["resourceVersion"]
    await cluster.patch(ref(CANARY), {"spec": {"skipAnalysis": True}}, expect_version=version)
    with pytest.raises(Conflict, match="modified"):
        await cluster.patch(ref(CANARY), {"spec": {"skipAnalysis": False}}, expect_version=version)
    with pytest.raises(Conflict):
        await cluster.patch(
            ref(CANARY), {"status": {"phase": "Failed"}}, status=True, expect_version=version
        )
    # A resourceVersion inside the patch body is a precondition too.
    with pytest.raises(Conflict):
        await cluster.patch(ref(CANARY), {"metadata": {"resourceVersion": version}})
    current = await cluster.get(ref(CANARY))
    assert current is not None
    assert current["spec"]["skipAnalysis"] is True
    assert "status" not in current


async def test_missing_objects(cluster: KubeCluster) -> None:
    assert await cluster.get(ref(CANARY, "nope")) is None
    with pytest.raises(NotFound):
        await cluster.patch(ref(CANARY, "nope"), {"spec": {}})
    await cluster.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}})
    with pytest.raises(NotFound):  # configmaps have no status subresource
        await cluster.patch(ref(CONFIGMAP, "cm"), {"status": {"a": 1}}, status=True)
    assert await cluster.list(SERVICE, "default") == []


async def test_delete_removes_the_object_and_a_missing_one_is_fine(
    cluster: KubeCluster, api: FakeKubeApi
) -> None:
    await cluster.create(deployment())
    await cluster.create(canary())
    await cluster.delete(ref(DEPLOYMENT))  # built-in: the server answers a Status
    await cluster.delete(ref(CANARY))  # custom resource: the server answers the object
    await cluster.delete(ref(CANARY))
    assert await cluster.get(ref(DEPLOYMENT)) is None
    assert api.store.objects("canaries.flagger.app") == []


async def test_one_object_is_visible_through_every_version_of_its_group(
    cluster: KubeCluster,
) -> None:
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "podinfo"},
        "spec": {"rules": []},
    }
    await cluster.create(route)
    old = await cluster.get(ref(HTTP_ROUTE_V1BETA1))
    assert old is not None
    assert old["apiVersion"] == "gateway.networking.k8s.io/v1beta1"
    assert (await cluster.get(ref(HTTP_ROUTE))) is not None


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_server_errors_become_cluster_unavailable(
    cluster: KubeCluster, api: FakeKubeApi, status: int
) -> None:
    await cluster.create(canary())
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: cluster.get(ref(CANARY)),
        lambda: cluster.list(CANARY, "default"),
        lambda: cluster.create(canary("other")),
        lambda: cluster.patch(ref(CANARY), {"spec": {"skipAnalysis": True}}),
        lambda: cluster.patch(ref(CANARY), {"status": {"phase": "Failed"}}, status=True),
        lambda: cluster.delete(ref(CANARY)),
    ]
    for call in calls:
        api.fail_next(1, status=status)
        with pytest.raises(ClusterUnavailable) as caught:
            await call()
        assert isinstance(caught.value.__cause__, ApiException)  # raise ... from e
        assert str(status) in str(caught.value)
    assert await cluster.get(ref(CANARY)) is not None  # the faults were used up


async def test_fault_injection_matches_method_and_path(
    cluster: KubeCluster, api: FakeKubeApi
) -> None:
    await cluster.create(canary())
    api.fail_next(2, method="PATCH", path="/status")
    assert await cluster.get(ref(CANARY)) is not None
    await cluster.patch(ref(CANARY), {"spec": {"skipAnalysis": True}})
    for _ in range(2):
        with pytest.raises(ClusterUnavailable):
            await cluster.patch(ref(CANARY), {"status": {"phase": "X"}}, status=True)
    await cluster.patch(ref(CANARY), {"status": {"phase": "X"}}, status=True)


async def test_other_client_errors_are_plain_cluster_errors(
    cluster: KubeCluster, api: FakeKubeApi
) -> None:
    api.fail_next(1, status=403, message="canaries is forbidden")
    with pytest.raises(ClusterError, match="forbidden") as caught:
        await cluster.list(CANARY, "default")
    assert not isinstance(caught.value, NotFound | Conflict | ClusterUnavailable)


async def test_an_unreachable_server_is_cluster_unavailable(tmp_path: Path) -> None:
    port = free_port()  # a port nobody listens on
    async with serve_kube_api() as api:
        api.url = f"http://127.0.0.1:{port}"
        path = str(api.write_kubeconfig(tmp_path / "kubeconfig"))
    async with opened(path, cache_kinds=()) as c:
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: c.get(ref(CANARY)),
            lambda: c.create(canary()),
            lambda: c.delete(ref(CANARY)),
        ]
        for call in calls:
            with pytest.raises(ClusterUnavailable) as caught:
                await call()
            assert isinstance(caught.value.__cause__, aiohttp.ClientError | OSError)


async def test_a_request_timeout_is_cluster_unavailable(kubeconfig: str, api: FakeKubeApi) -> None:
    api.stall_next(1, method="GET")
    async with opened(kubeconfig, cache_kinds=(), request_timeout=0.2) as c:
        with pytest.raises(ClusterUnavailable):
            await c.get(ref(CANARY))
        api.release_stalled()
        assert await c.get(ref(CANARY)) is None


async def test_the_kubeconfig_token_is_sent_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    async with serve_kube_api(token="s3cret", crds=False) as api:
        good = str(api.write_kubeconfig(tmp_path / "good"))
        async with opened(good, cache_kinds=()) as c:
            await c.create(canary())
        api.token = "rotated"
        async with opened(good, cache_kinds=()) as c:
            with pytest.raises(ClusterError, match="401"):
                await c.get(ref(CANARY))


async def test_configuration_comes_from_kubeconfig_env_or_fails_cleanly(
    api: FakeKubeApi, kubeconfig: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # not in a pod
    monkeypatch.setenv("KUBECONFIG", kubeconfig)
    async with open_kube_cluster(sleep=asyncio.sleep, cache_kinds=(), **FAST) as c:
        await c.create(canary())
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(ClusterError, match="no Kubernetes configuration"):
        async with open_kube_cluster(sleep=asyncio.sleep):
            pass
    (tmp_path / "broken").write_text("clusters: [\n")
    with pytest.raises(ClusterError, match="cannot load"):
        async with open_kube_cluster(str(tmp_path / "broken"), sleep=asyncio.sleep):
            pass


# ---------------------------------------------------------------------------- the cache


async def test_a_synced_cache_answers_reads_without_requests(
    api: FakeKubeApi, kubeconfig: str
) -> None:
    api.store.seed(
        canary(),
        canary("b", "prod"),
        deployment(),
        deployment("api", tier="backend"),
        deployment("other", "prod"),
    )
    async with opened(kubeconfig, cache_kinds=(CANARY, DEPLOYMENT)) as c:
        await c.wait_synced()
        assert c.is_cached(CANARY) and c.is_cached(DEPLOYMENT, "prod")
        api.reset_counts()
        for _ in range(3):  # three "controller ticks"
            assert (await c.get(ref(CANARY)))["metadata"]["name"] == "podinfo"  # type: ignore[index]
            assert await c.get(ref(CANARY, "missing")) is None
            assert [d["metadata"]["name"] for d in await c.list(DEPLOYMENT, "default")] == [
                "api",
                "podinfo",
            ]
            assert len(await c.list(DEPLOYMENT, None)) == 3
            backend = await c.list(DEPLOYMENT, None, labels={"tier": "backend"})
            assert [d["metadata"]["name"] for d in backend] == ["api"]
            assert len(await c.list(CANARY, None)) == 2
        assert api.reads() == 0, api.requests
        # Every reader shares the cache's one read-only copy: none can change what it keeps.
        got = await c.get(ref(DEPLOYMENT))
        assert got is not None and got is await c.get(ref(DEPLOYMENT))
        with pytest.raises(TypeError, match="read-only"):
            got["spec"]["replicas"] = 99
        assert (await c.get(ref(DEPLOYMENT)))["spec"]["replicas"] == 1  # type: ignore[index]
        # Uncached kinds still go to the API.
        assert await c.get(ref(SERVICE)) is None
        assert api.reads() == 1


async def test_reads_before_the_first_list_go_to_the_api(api: FakeKubeApi, kubeconfig: str) -> None:
    api.store.seed(canary())
    api.stall_next(1, method="GET", path="/canaries")  # the cache's LIST hangs
    async with opened(kubeconfig, cache_kinds=(CANARY,)) as c:
        await eventually(lambda: _true(api.stalled == 1))
        assert not c.is_cached(CANARY)
        assert await c.get(ref(CANARY)) is not None
        assert api.count("get", "canaries") == 1
        api.release_stalled()
        await asyncio.wait_for(c.wait_synced(), 5)
        await c.get(ref(CANARY))
        assert api.count("get", "canaries") == 1


async def test_writes_are_readable_from_the_cache_before_their_watch_event(
    api: FakeKubeApi, kubeconfig: str
) -> None:
    api.store.seed(canary(), deployment())
    async with opened(kubeconfig, cache_kinds=(CANARY, DEPLOYMENT)) as c:
        await c.wait_synced()
        # Cut the cache off from the server: no watch event can arrive from now on.
        api.fail_next(10_000, path="watch=true")
        api.drop_watches()
        await eventually(lambda: _true(api.open_watches == 0))
        api.reset_counts()

        written = await c.patch(ref(CANARY), {"status": {"phase": "Progressing"}}, status=True)
        assert (await c.get(ref(CANARY))) == written
        await c.patch(ref(DEPLOYMENT), {"spec": {"replicas": 0}})
        assert (await c.get(ref(DEPLOYMENT)))["spec"]["replicas"] == 0  # type: ignore[index]
        await c.create(canary("new"))
        assert [x["metadata"]["name"] for x in await c.list(CANARY, "default")] == [
            "new",
            "podinfo",
        ]
        await c.delete(ref(CANARY, "new"))
        assert await c.get(ref(CANARY, "new")) is None
        assert api.reads() == 0


async def test_late_watch_events_never_undo_our_newer_writes(
    api: FakeKubeApi, kubeconfig: str
) -> None:
    api.store.seed(
        canary(),
        canary("gone"),
        canary("marker"),
        deployment(),
        deployment("again"),
        deployment("marker"),
    )
    async with opened(kubeconfig, cache_kinds=(CANARY, DEPLOYMENT)) as c:
        canaries, deployments = c.watch(CANARY, "default"), c.watch(DEPLOYMENT, "default")
        await _take(canaries, 3)
        await _take(deployments, 3)
        # Cut the cache off: the changes below reach it only through our own writes first.
        api.fail_next(10_000, path="watch=true")
        api.drop_watches()
        await eventually(lambda: _true(api.open_watches == 0))
        # Someone else's writes (older) ...
        api.store.put(canary(skipAnalysis=True))
        api.store.put(canary("gone", skipAnalysis=True))
        api.store.put(deployment(replicas=2))
        api.store.put(deployment("again", replicas=2))
        # ... then ours (newer). Deployments' DELETE answers a Status without resourceVersion.
        ours = await c.patch(ref(CANARY), {"status": {"phase": "Progressing"}}, status=True)
        await c.delete(ref(CANARY, "gone"))
        await c.delete(ref(DEPLOYMENT))
        await c.delete(ref(DEPLOYMENT, "again"))
        again = await c.create(deployment("again"))
        assert await c.get(ref(DEPLOYMENT, "again")) == again  # delete-then-create is visible
        # Let the cache resume: it replays every change above, then the markers.
        api.clear_faults()
        api.store.put(canary("marker", skipAnalysis=True))
        api.store.put(deployment("marker", replicas=3))
        seen_canaries = await _until(canaries, "marker")
        seen_deployments = await _until(deployments, "marker")

        assert seen_canaries == [
            ("MODIFIED", "podinfo"),
            ("DELETED", "gone"),
            ("MODIFIED", "marker"),
        ]
        assert seen_deployments == [
            ("DELETED", "podinfo"),
            ("DELETED", "again"),
            ("ADDED", "again"),
            ("MODIFIED", "marker"),
        ]
        assert await c.get(ref(CANARY)) == ours
        assert await c.get(ref(CANARY, "gone")) is None
        assert await c.get(ref(DEPLOYMENT)) is None
        assert await c.get(ref(DEPLOYMENT, "again")) == again
        await canaries.aclose()  # type: ignore[attr-defined]
        await deployments.aclose()  # type: ignore[attr-defined]


async def test_a_dropped_watch_resumes_from_its_resource_version_without_relisting(
    api: FakeKubeApi, kubeconfig: str
) -> None:
    api.store.seed(canary())
    async with opened(kubeconfig, cache_kinds=(CANARY,)) as c:
        await c.wait_synced()
        for abort in (False, True):  # the server ends the stream / the connection breaks
            await eventually(lambda: _true(api.open_watches == 1))
            seen = api.store.resource_version
            watches_before = api.count("watch")
            assert api.drop_watches(abort=abort) == 1
            api.store.put(canary(skipAnalysis=abort))
            await eventually(partial(_spec_is, c, ref(CANARY), "skipAnalysis", abort))
            resumed = [r for r in api.log if r.verb == "watch"][watches_before:]
            assert resumed[0].query["resourceVersion"] == seen
        assert api.count("list") == 1


async def test_410_gone_makes_the_cache_relist(api: FakeKubeApi, kubeconfig: str) -> None:
    api.store.seed(canary(), canary("doomed"))
    async with opened(kubeconfig, cache_kinds=(CANARY,)) as c:
        await c.wait_synced()
        events = c.watch(CANARY, "default")
        assert {(e.type, e.body["metadata"]["name"]) for e in await _take(events, 2)} == {
            ("ADDED", "podinfo"),
            ("ADDED", "doomed"),
        }
        api.drop_watches()
        api.store.put(canary(skipAnalysis=True))
        api.store.remove("canaries.flagger.app", "default", "doomed")
        api.store.put(canary("born"))
        api.store.compact()  # the cache's resourceVersion is now too old to watch from
        await eventually(lambda: _true(api.count("list") == 2))
        await eventually(lambda: _spec_has(c, ref(CANARY), "skipAnalysis"))
        assert [x["metadata"]["name"] for x in await c.list(CANARY, None)] == ["born", "podinfo"]
        changes = {(e.type, e.body["metadata"]["name"]) for e in await _take(events, 3)}
        assert changes == {("MODIFIED", "podinfo"), ("DELETED", "doomed"), ("ADDED", "born")}
        await events.aclose()  # type: ignore[attr-defined]


async def test_the_cache_backs_off_and_recovers_from_watch_failures(
    api: FakeKubeApi, kubeconfig: str
) -> None:
    api.store.seed(canary())
    async with opened(kubeconfig, cache_kinds=(CANARY,)) as c:
        await c.wait_synced()
        api.fail_next(3, path="watch=true", status=503)
        api.drop_watches()
        api.store.put(canary(skipAnalysis=True))
        await eventually(lambda: _spec_has(c, ref(CANARY), "skipAnalysis"))
        assert api.count("watch") >= 4
        assert api.count("list") == 1


@pytest.mark.parametrize(
    "line",
    [
        b"[]\n",
        b"null\n",
        b'"text"\n',
        b'{"type": "MODIFIED", "object": {"metadata": "x"}}\n',
        b'{"type": "MODIFIED", "object": {"metadata": {"name": 7}}}\n',
    ],
    ids=["a list", "null", "a string", "metadata not an object", "a name not a string"],
)
async def test_a_malformed_watch_event_restarts_the_cache_instead_of_ending_it(
    api: FakeKubeApi, kubeconfig: str, line: bytes
) -> None:
    # Valid JSON of the wrong shape ended the informer for good (AttributeError): the cache
    # stayed unsynced and the controller stopped.
    api.store.seed(canary())
    async with opened(kubeconfig, cache_kinds=(CANARY,)) as c:
        await c.wait_synced()
        await eventually(lambda: _true(api.open_watches == 1))
        assert api.send_raw(line) == 1
        api.store.put(canary(skipAnalysis=True))
        await eventually(lambda: _spec_has(c, ref(CANARY), "skipAnalysis"))
        assert c.is_cached(CANARY)


async def test_a_silent_watch_is_renewed_from_its_resource_version(
    api: FakeKubeApi, kubeconfig: str
) -> None:
    # A real API server bookmarks a watch about once a minute: longer silence is a dead
    # connection, renewed without a relist (it used to wait out the server's 300 s timeout).
    api.store.seed(canary())
    async with opened(kubeconfig, cache_kinds=(CANARY,), watch_silence=0.3) as c:
        await c.wait_synced()
        await eventually(lambda: _true(api.count("watch") >= 3))
        api.store.put(canary(skipAnalysis=True))
        await eventually(lambda: _spec_has(c, ref(CANARY), "skipAnalysis"))
        assert api.count("list") == 1


async def test_a_watch_request_that_hangs_is_given_up_and_retried(
    api: FakeKubeApi, kubeconfig: str
) -> None:
    api.store.seed(canary())
    async with opened(kubeconfig, cache_kinds=(CANARY,), watch_silence=0.3) as c:
        await c.wait_synced()
        await eventually(lambda: _true(api.open_watches == 1))
        api.stall_next(1, path="watch=true")  # the next watch gets no answer at all
        api.drop_watches()
        api.store.put(canary("born"))
        await eventually(lambda: _true(api.stalled == 1))
        await eventually(lambda: _is_cached_object(c, ref(CANARY, "born")))
        # from the cache a new watch filled, not from a read that bypassed a stale one
        assert c.is_cached(CANARY)
        reads = api.reads()
        assert await c.get(ref(CANARY, "born")) is not None
        assert api.reads() == reads
        api.release_stalled()


async def _is_cached_object(c: KubeCluster, target: ObjectRef) -> bool:
    return await c.get(target) is not None


async def test_a_watch_answering_http_410_relists_with_growing_back_off(
    api: FakeKubeApi, kubeconfig: str
) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(seconds)

    api.store.seed(canary())
    async with opened(kubeconfig, cache_kinds=(CANARY,), sleep=sleep) as c:
        await c.wait_synced()
        api.fail_next(3, path="watch=true", status=410, reason="Gone", message="too old")
        api.drop_watches()
        api.store.put(canary(skipAnalysis=True))
        # Every 410 re-lists; expiring again right after a LIST backs off (0.01, 0.02, 0.04).
        await eventually(lambda: _true(api.count("list") == 1 + 3 and api.open_watches == 1))
        assert slept[-3:] == [0.01, 0.02, 0.04]
        assert await _spec_has(c, ref(CANARY), "skipAnalysis")


async def test_the_cache_waits_as_long_as_a_throttling_server_asks(
    api: FakeKubeApi, kubeconfig: str
) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(0)  # the test does not wait the seconds out

    api.store.seed(canary())
    api.fail_next(2, method="GET", path="/canaries", status=429, retry_after=20)
    async with opened(kubeconfig, cache_kinds=(CANARY,), sleep=sleep) as c:
        await asyncio.wait_for(c.wait_synced(), 5)
    assert slept[:2] == [20.0, 20.0]  # not the back-off's 0.01, 0.02


async def test_the_cache_retries_a_failing_first_list(api: FakeKubeApi, kubeconfig: str) -> None:
    api.store.seed(canary())
    api.fail_next(2, method="GET", path="/canaries")
    async with opened(kubeconfig, cache_kinds=(CANARY,)) as c:
        await asyncio.wait_for(c.wait_synced(), 5)
        assert api.count("list") == 3


async def test_watch_yields_current_objects_then_changes(api: FakeKubeApi, kubeconfig: str) -> None:
    api.store.seed(canary(), canary("elsewhere", "prod"))
    async with opened(kubeconfig, cache_kinds=()) as c:
        events = c.watch(CANARY, "default")  # starts caching the kind
        first = await _take(events, 1)
        assert [(e.type, e.body["metadata"]["name"]) for e in first] == [("ADDED", "podinfo")]
        api.store.put(canary("elsewhere", "prod", skipAnalysis=True))
        await c.patch(ref(CANARY), {"spec": {"skipAnalysis": True}})
        api.store.remove("canaries.flagger.app", "default", "podinfo")
        rest = await _take(events, 2)
        assert [(e.type, e.body["metadata"]["name"]) for e in rest] == [
            ("MODIFIED", "podinfo"),
            ("DELETED", "podinfo"),
        ]
        assert c.is_cached(CANARY)
        await events.aclose()  # type: ignore[attr-defined]


async def test_a_namespace_scope_limits_lists_watches_and_the_cache(
    api: FakeKubeApi, kubeconfig: str
) -> None:
    api.store.seed(canary("a", "team-a"), canary("b", "team-b"), canary("c", "team-c"))
    async with opened(kubeconfig, namespaces=["team-a", "team-b"], cache_kinds=(CANARY,)) as c:
        await c.wait_synced()
        assert [x["metadata"]["name"] for x in await c.list(CANARY, None)] == ["a", "b"]
        assert api.reads() == 2  # one LIST per namespace, none cluster-wide
        assert all("/namespaces/team-" in r.path for r in api.log if r.verb in ("list", "watch"))
        assert await c.get(ref(CANARY, "c", "team-c")) is not None  # outside: asks the API
        assert api.count("get") == 1
        # Uncached kinds: one LIST per namespace in scope.
        api.reset_counts()
        assert await c.list(DEPLOYMENT, None) == []
        assert api.count("list") == 2


async def test_closing_the_cluster_ends_watches_with_cluster_unavailable(
    api: FakeKubeApi, kubeconfig: str
) -> None:
    api.store.seed(canary())
    async with opened(kubeconfig, cache_kinds=(CANARY,)) as c:
        events = c.watch(CANARY, None)
        await _take(events, 1)
        await c.aclose()
        with pytest.raises(ClusterUnavailable):
            await _take(events, 1)
        with pytest.raises(ClusterError):
            await c.start_cache([DEPLOYMENT])


async def test_more_watches_than_the_request_pool_leave_requests_a_connection(
    kubeconfig: str, api: FakeKubeApi
) -> None:
    # A watch holds its connection for minutes, and the library's pool has 100 per host. A cache
    # of 7 kinds in 16 namespaces (112 watches) took them all: the watches past 100 never
    # started, and a GET (a Lease renewal) waited for a connection until it timed out.
    namespaces = [f"team-{i}" for i in range(16)]
    kinds = (*DEFAULT_CACHE_KINDS, CONFIGMAP)
    async with opened(kubeconfig, namespaces=namespaces, cache_kinds=kinds) as c:
        async with asyncio.timeout(10):
            await c.wait_synced()

        async def all_watching() -> bool:
            return api.open_watches >= len(namespaces) * len(kinds)

        await eventually(all_watching, within=10)
        started = time.monotonic()
        assert await c.get(ref(LEASE, "canary-engine", "team-0"), fresh=True) is None
        assert time.monotonic() - started < FAST["request_timeout"]


async def test_an_exec_plugin_token_is_renewed_before_it_expires(tmp_path: Path) -> None:
    # EKS and GKE kubeconfigs run a plugin for a token of 15 minutes to an hour. The library sets
    # it once at load: after it expired every request answered 401 until a restart.
    current = tmp_path / "token"
    current.write_text("first")
    plugin = tmp_path / "get-token.sh"
    soon = "2000-01-01T00:00:00Z"  # already expired: the library renews it at every check
    plugin.write_text(
        "#!/bin/sh\n"
        'printf \'{"apiVersion": "client.authentication.k8s.io/v1beta1", '
        '"kind": "ExecCredential", "status": {"token": "%s", '
        f'"expirationTimestamp": "{soon}"}}}}\' "$(cat {current})"\n'
    )
    plugin.chmod(0o755)
    async with serve_kube_api(crds=False, token="first") as server:
        kubeconfig = server.kubeconfig()
        kubeconfig["users"][0]["user"] = {
            "exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": str(plugin)}
        }
        path = tmp_path / "kubeconfig"
        path.write_text(json.dumps(kubeconfig))
        async with opened(str(path), cache_kinds=(), token_refresh=0.05) as c:
            lease = ref(LEASE, "canary-engine", "default")
            assert await c.get(lease) is None
            server.token = "second"  # the old token is refused from now on (401)
            current.write_text("second")

            async def answers() -> bool:
                try:
                    return await c.get(lease) is None
                except ClusterError:
                    return False

            assert await eventually(answers)


def test_only_a_plugin_or_gcp_token_is_renewed() -> None:
    # A static token, a certificate or a context without a user (kubectl proxy) has nothing to
    # renew: a refresher for them failed once a minute for the life of the process.
    from types import SimpleNamespace

    from traffic.cluster._kube import _renews_a_token

    assert not _renews_a_token(None)
    assert not _renews_a_token(SimpleNamespace(provider=None, _user=None))
    assert not _renews_a_token(SimpleNamespace(provider=None, _user={"token": "t"}))
    assert _renews_a_token(SimpleNamespace(provider=None, _user={"exec": {"command": "x"}}))
    assert _renews_a_token(SimpleNamespace(provider="gcp", _user={"auth-provider": {}}))


# ---------------------------------------------------------------------------- helpers


def _conforms_to_the_protocol(c: KubeCluster) -> Cluster:
    return c  # checked by mypy


async def _true(value: bool) -> bool:
    return value


async def _spec_has(c: KubeCluster, r: ObjectRef, key: str) -> bool:
    body = await c.get(r)
    return body is not None and key in body.get("spec", {})


async def _spec_is(c: KubeCluster, r: ObjectRef, key: str, value: object) -> bool:
    body = await c.get(r)
    return body is not None and body.get("spec", {}).get(key) == value


async def _until(events: AsyncIterator[WatchEvent], name: str) -> list[tuple[str, str]]:
    """(type, name) of each event up to and including the first one for ``name``."""
    seen: list[tuple[str, str]] = []
    async with asyncio.timeout(5):
        while not seen or seen[-1][1] != name:
            event = await anext(events)
            seen.append((event.type, event.body["metadata"]["name"]))
    return seen


async def _take(events: AsyncIterator[WatchEvent], n: int) -> list[WatchEvent]:
    async with asyncio.timeout(5):
        return [await anext(events) for _ in range(n)]


# ---------------------------------------------------------------------------- tracked reads


async def test_tracked_reads_stay_unchanged_until_something_read_changes(
    api: FakeKubeApi, kubeconfig: str
) -> None:
    api.store.seed(canary(), deployment(), deployment("api", tier="backend"))
    async with opened(kubeconfig, cache_kinds=(CANARY, DEPLOYMENT)) as c:
        await c.wait_synced()

        async def a_tick() -> Any:
            with c.track_reads() as reads:
                await c.get(ref(CANARY))
                await c.get(ref(DEPLOYMENT, "missing"))
                await c.list(DEPLOYMENT, "default", labels={"tier": "backend"})
            return reads

        reads = await a_tick()
        assert reads.unchanged()
        # A change of an object nobody read, in a kind nobody listed: still unchanged.
        api.store.put(canary("other"))
        await eventually(lambda: c.get(ref(CANARY, "other")))
        assert reads.unchanged()
        # The Canary that was read changes (a watch event): changed.
        body = api.store.get("canaries.flagger.app", "default", "podinfo")
        assert body is not None
        body["spec"]["suspend"] = True
        api.store.put(body)
        await eventually(lambda: _true(not reads.unchanged()))

        # An object that was missing appears: changed.
        reads = await a_tick()
        api.store.put(deployment("missing"))
        await eventually(lambda: _true(not reads.unchanged()))

        # Any change in a listed kind and namespace (the list is filtered afterwards): changed.
        reads = await a_tick()
        api.store.put(deployment("unrelated", replicas=3))
        await eventually(lambda: _true(not reads.unchanged()))


async def test_a_read_from_the_api_or_a_write_never_counts_as_unchanged(
    api: FakeKubeApi, kubeconfig: str
) -> None:
    api.store.seed(canary(), deployment())
    async with opened(kubeconfig, cache_kinds=(CANARY,)) as c:
        await c.wait_synced()
        with c.track_reads() as reads:
            await c.get(ref(DEPLOYMENT))  # not cached: a GET to the API server
        assert not reads.unchanged()
        with c.track_reads() as reads:
            await c.list(DEPLOYMENT, "default")
        assert not reads.unchanged()
        with c.track_reads() as reads:
            await c.get(ref(CANARY))
            await c.patch(ref(CANARY), {"metadata": {"labels": {"a": "b"}}})
        assert not reads.unchanged()
        # Outside the block nothing is recorded: an API read afterwards leaves a log alone.
        with c.track_reads() as reads:
            await c.get(ref(CANARY))
        await c.get(ref(DEPLOYMENT))
        assert reads.unchanged()


async def test_concurrent_tracked_reads_do_not_mix(api: FakeKubeApi, kubeconfig: str) -> None:
    api.store.seed(canary("a"), canary("b"))
    async with opened(kubeconfig, cache_kinds=(CANARY,)) as c:
        await c.wait_synced()

        async def read(name: str) -> Any:
            with c.track_reads() as reads:
                await asyncio.sleep(0)  # let the other task start in between
                await c.get(ref(CANARY, name))
            return reads

        a, b = await asyncio.gather(read("a"), read("b"))
        body = api.store.get("canaries.flagger.app", "default", "a")
        assert body is not None
        body["spec"]["suspend"] = True
        api.store.put(body)
        await eventually(lambda: _true(not a.unchanged()))
        assert b.unchanged()


async def test_the_cache_does_not_keep_managed_fields(api: FakeKubeApi, kubeconfig: str) -> None:
    """Server-side apply's ``metadata.managedFields`` (a large part of every object on a real API
    server) is dropped from cached objects; an uncached read still returns the object whole."""
    body = deployment()
    body["metadata"]["managedFields"] = [
        {"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}}
    ]
    api.store.seed(body)
    async with opened(kubeconfig, cache_kinds=(DEPLOYMENT,)) as c:
        await c.wait_synced()
        cached = await c.get(ref(DEPLOYMENT))
        assert cached is not None and "managedFields" not in cached["metadata"]
        assert cached["spec"]["replicas"] == 1
    async with opened(kubeconfig, cache_kinds=()) as c:
        whole = await c.get(ref(DEPLOYMENT))
        assert whole is not None and whole["metadata"]["managedFields"][0]["manager"] == "kubectl"


async def test_a_slow_list_is_not_cut_off_by_the_request_timeout(
    api: FakeKubeApi, kubeconfig: str
) -> None:
    """A cache's LIST of a large collection may take longer than any single-object request:
    it is bounded by its silence (LIST_SILENCE_TIMEOUT), not by ``request_timeout``."""
    api.store.seed(canary())
    api.stall_next(1, method="GET", path="/canaries")  # the cache's first LIST
    async with opened(kubeconfig, cache_kinds=(CANARY,), request_timeout=0.2) as c:
        await eventually(lambda: _true(api.stalled == 1))
        await asyncio.sleep(0.6)  # three request timeouts
        api.release_stalled()
        await asyncio.wait_for(c.wait_synced(), 5)
        assert api.count("list", "canaries") == 1  # answered, not failed and retried


async def test_a_list_made_during_a_tick_keeps_the_request_timeout(
    api: FakeKubeApi, kubeconfig: str
) -> None:
    """Only a cache's LIST gets the long silence bound: an uncached list (a tick's, e.g. the
    pods a metric provider selects) still fails after ``request_timeout`` so it cannot stall
    the canary's tick for minutes."""
    api.store.seed(canary())
    api.stall_next(1, method="GET", path="/canaries")
    async with opened(kubeconfig, cache_kinds=(), request_timeout=0.2) as c:
        started = time.monotonic()
        with pytest.raises(ClusterError):
            await asyncio.wait_for(c.list(CANARY, "test"), 30)
        assert time.monotonic() - started < 10
        api.release_stalled()


async def test_a_large_collection_is_listed_in_pages(api: FakeKubeApi, kubeconfig: str) -> None:
    # 1,203 Deployments: the cache's first LIST reads three pages of 500 (limit / continue), as
    # client-go's reflector does, rather than one answer the API server must build whole.
    from traffic.cluster._kube import LIST_PAGE_SIZE

    api.store.seed(*(deployment(f"app-{n:04d}") for n in range(1203)))
    async with opened(kubeconfig, cache_kinds=(DEPLOYMENT,)) as c:
        await c.wait_synced()
        pages = [r for r in api.log if r.verb == "list" and r.resource == "deployments"]
        assert [r.query.get("limit") for r in pages] == [str(LIST_PAGE_SIZE)] * 3
        assert "continue" not in pages[0].query and all("continue" in r.query for r in pages[1:])
        names = [d["metadata"]["name"] for d in await c.list(DEPLOYMENT, None)]
        assert names == [f"app-{n:04d}" for n in range(1203)]
        # the cache watches from the list's resourceVersion: a change after it arrives
        api.store.put(deployment("app-0000", replicas=3))
        await eventually(lambda: _spec_is(c, ref(DEPLOYMENT, "app-0000"), "replicas", 3))
    # an uncached kind is listed in pages too
    api.store.seed(*(canary(f"c-{n:04d}") for n in range(501)))
    async with opened(kubeconfig, cache_kinds=()) as c:
        api.reset_counts()
        assert len(await c.list(CANARY, "default")) == 501
        assert api.count("list", "canaries") == 2


async def test_an_expired_continue_token_lists_again_unpaged(
    api: FakeKubeApi, kubeconfig: str
) -> None:
    # The server compacted past the list's resourceVersion between two pages (410 Gone): the
    # list is read again in one request, as client-go's pager falls back.
    api.store.seed(*(canary(f"c-{n:04d}") for n in range(700)))
    api.fail_next(1, method="GET", path="continue=", status=410, message="continue too old")
    async with opened(kubeconfig, cache_kinds=()) as c:
        api.reset_counts()
        assert len(await c.list(CANARY, "default")) == 700
        queries = [r.query for r in api.log if r.verb == "list"]
        assert [("limit" in q, "continue" in q) for q in queries] == [
            (True, False),
            (True, True),
            (False, False),
        ]
