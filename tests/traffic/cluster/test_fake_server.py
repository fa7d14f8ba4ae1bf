"""The fake API server's own contract (tests/kubeapi.py), where KubeCluster does not exercise it.

Talks plain HTTP (aiohttp) so every status code, Status body, patch flavour and watch edge
case is checked as the real API server answers it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.kubeapi import FakeKubeApi, json_patch, parse_path, serve_kube_api

pytestmark = pytest.mark.timeout(20)

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
CANARIES = "/apis/flagger.app/v1beta1/namespaces/default/canaries"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSONP = {"Content-Type": "application/json-patch+json"}
SMP = {"Content-Type": "application/strategic-merge-patch+json"}


def deployment(name: str = "podinfo", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}},
    }


def canary(name: str = "podinfo", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name},
        "spec": {"targetRef": {"name": name}} | spec,
    }


@pytest.fixture
async def api() -> AsyncIterator[FakeKubeApi]:
    # toy Canaries and Deployments: the server's generic behaviour
    async with serve_kube_api(crds=False, builtins=False) as server:
        yield server


@pytest.fixture
async def http(api: FakeKubeApi) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(api.url, timeout=aiohttp.ClientTimeout(total=5)) as s:
        yield s


async def call(
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    **params: str,
) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body) if body is not None else None
    async with http.request(method, path, data=data, headers=headers, params=params) as r:
        return r.status, await r.json()


async def watch_events(
    http: aiohttp.ClientSession, path: str, n: int | None = None, **params: str
) -> list[dict[str, Any]]:
    """The first ``n`` events of a watch (None: until the server ends the stream)."""
    events: list[dict[str, Any]] = []
    async with (
        asyncio.timeout(5),
        http.get(path, params={"watch": "true", **params}) as r,
    ):
        assert r.status == 200
        while n is None or len(events) < n:
            line = await r.content.readline()
            if not line:
                break
            events.append(json.loads(line))
    return events


def assert_status(body: dict[str, Any], code: int, reason: str) -> None:
    assert body["kind"] == "Status"
    assert body["apiVersion"] == "v1"
    assert body["status"] == "Failure"
    assert (body["code"], body["reason"]) == (code, reason)
    assert body["message"]


# ---------------------------------------------------------------------------- CRUD


async def test_errors_are_status_objects(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "GET", f"{CANARIES}/nope")
    assert status == 404
    assert_status(body, 404, "NotFound")
    assert body["details"] == {"name": "nope", "group": "flagger.app", "kind": "canaries"}
    status, body = await call(http, "GET", "/not/an/api/path")
    assert status == 404
    assert_status(body, 404, "NotFound")


async def test_create_fills_server_metadata_and_refuses_duplicates(
    http: aiohttp.ClientSession,
) -> None:
    status, created = await call(http, "POST", CANARIES, canary() | {"status": {"phase": "X"}})
    assert status == 201
    meta = created["metadata"]
    assert meta["namespace"] == "default"
    assert meta["generation"] == 1
    assert meta["uid"] and meta["creationTimestamp"] and meta["resourceVersion"]
    assert "status" not in created  # the status subresource owns it
    status, body = await call(http, "POST", CANARIES, canary())
    assert status == 409
    assert_status(body, 409, "AlreadyExists")


async def test_create_validates_name_namespace_and_kind(http: aiohttp.ClientSession) -> None:
    status, made = await call(
        http, "POST", CONFIGMAPS, {"kind": "ConfigMap", "metadata": {"generateName": "cm-"}}
    )
    assert status == 201
    assert made["metadata"]["name"].startswith("cm-")
    assert len(made["metadata"]["name"]) == len("cm-") + 5
    status, body = await call(http, "POST", CONFIGMAPS, {"metadata": {}})
    assert (status, body["reason"]) == (422, "Invalid")
    status, body = await call(
        http, "POST", CONFIGMAPS, {"metadata": {"name": "x", "namespace": "other"}}
    )
    assert (status, body["reason"]) == (400, "BadRequest")
    status, body = await call(http, "POST", DEPLOYMENTS, canary())
    assert (status, body["reason"]) == (400, "BadRequest")


async def test_put_checks_the_resource_version(http: aiohttp.ClientSession) -> None:
    _, created = await call(http, "POST", CONFIGMAPS, {"metadata": {"name": "cm"}, "data": {}})
    stale = created | {"data": {"a": "1"}}
    status, updated = await call(http, "PUT", f"{CONFIGMAPS}/cm", stale)
    assert status == 200
    assert updated["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    status, body = await call(http, "PUT", f"{CONFIGMAPS}/cm", stale)
    assert status == 409
    assert_status(body, 409, "Conflict")
    unconditional = {"metadata": {"name": "cm"}, "data": {"b": "2"}}
    status, body = await call(http, "PUT", f"{CONFIGMAPS}/cm", unconditional)
    assert (status, body["data"]) == (200, {"b": "2"})
    status, body = await call(http, "PUT", f"{CONFIGMAPS}/other", unconditional)
    assert (status, body["reason"]) == (400, "BadRequest")  # name mismatch
    status, body = await call(http, "PUT", f"{CONFIGMAPS}/missing", {"metadata": {}})
    assert status == 404


async def test_delete_answers_status_for_builtins_and_the_object_for_custom_resources(
    http: aiohttp.ClientSession,
) -> None:
    await call(http, "POST", DEPLOYMENTS, deployment())
    _, created = await call(http, "POST", CANARIES, canary())
    status, body = await call(http, "DELETE", f"{DEPLOYMENTS}/podinfo")
    assert (status, body["kind"], body["status"]) == (200, "Status", "Success")
    status, body = await call(
        http, "DELETE", f"{CANARIES}/podinfo", {"preconditions": {"resourceVersion": "0"}}
    )
    assert status == 409
    status, body = await call(http, "DELETE", f"{CANARIES}/podinfo")
    assert (status, body["kind"]) == (200, "Canary")
    assert int(body["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    status, body = await call(http, "DELETE", f"{CANARIES}/podinfo")
    assert status == 404


async def test_versions_of_a_group_share_one_storage(http: aiohttp.ClientSession) -> None:
    v1 = "/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes"
    v1beta1 = "/apis/gateway.networking.k8s.io/v1beta1/namespaces/default/httproutes"
    await call(http, "POST", v1, {"kind": "HTTPRoute", "metadata": {"name": "r"}, "spec": {}})
    status, body = await call(http, "GET", f"{v1beta1}/r")
    assert (status, body["apiVersion"]) == (200, "gateway.networking.k8s.io/v1beta1")


# ---------------------------------------------------------------------------- lists


async def test_lists_are_shaped_like_the_real_api(
    api: FakeKubeApi, http: aiohttp.ClientSession
) -> None:
    api.store.seed(
        deployment("a", app="a", tier="web"),
        deployment("b", app="b"),
        canary("c"),
        deployment("x", app="a") | {"metadata": {"name": "x", "namespace": "prod"}},
    )
    _, listed = await call(http, "GET", DEPLOYMENTS)
    assert listed["kind"] == "DeploymentList"
    assert listed["apiVersion"] == "apps/v1"
    assert listed["metadata"]["resourceVersion"] == api.store.resource_version
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a", "b"]
    assert all("apiVersion" not in i and "kind" not in i for i in listed["items"])
    _, crs = await call(http, "GET", CANARIES)
    assert crs["kind"] == "CanaryList"
    assert crs["items"][0]["kind"] == "Canary"  # custom resources keep them
    _, everywhere = await call(http, "GET", "/apis/apps/v1/deployments")
    assert [i["metadata"]["namespace"] for i in everywhere["items"]] == ["default"] * 2 + ["prod"]


@pytest.mark.parametrize(
    ("selector", "names"),
    [
        ("app=a", ["a", "x"]),
        ("app==a,tier=web", ["a"]),
        ("app!=a", ["b"]),
        ("tier", ["a"]),
        ("!tier", ["b", "x"]),
    ],
)
async def test_label_selectors(
    api: FakeKubeApi, http: aiohttp.ClientSession, selector: str, names: list[str]
) -> None:
    api.store.seed(deployment("a", app="a", tier="web"), deployment("b", app="b"))
    api.store.seed(deployment("x", app="a") | {"metadata": {"name": "x", "labels": {"app": "a"}}})
    _, listed = await call(http, "GET", DEPLOYMENTS, labelSelector=selector)
    assert [i["metadata"]["name"] for i in listed["items"]] == names


async def test_field_selector_and_unsupported_selectors(
    api: FakeKubeApi, http: aiohttp.ClientSession
) -> None:
    api.store.seed(deployment("a"), deployment("b"))
    _, listed = await call(http, "GET", DEPLOYMENTS, fieldSelector="metadata.name=b")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["b"]
    status, _ = await call(http, "GET", DEPLOYMENTS, labelSelector="app in (a,b)")
    assert status == 400
    status, _ = await call(http, "GET", DEPLOYMENTS, fieldSelector="spec.replicas=1")
    assert status == 400


# ---------------------------------------------------------------------------- patches


async def test_merge_and_strategic_merge_patches(http: aiohttp.ClientSession) -> None:
    await call(http, "POST", CANARIES, canary(analysis={"interval": "1m", "threshold": 5}))
    patch = {"spec": {"analysis": {"threshold": None, "maxWeight": 50}}}
    status, body = await call(http, "PATCH", f"{CANARIES}/podinfo", patch, MERGE)
    assert status == 200
    assert body["spec"]["analysis"] == {"interval": "1m", "maxWeight": 50}
    # a custom resource has no strategic merge: 415, as the real server (kubernetes-asyncio
    # sends it for a dict body unless told otherwise); a built-in kind takes it
    status, body = await call(
        http, "PATCH", f"{CANARIES}/podinfo", {"spec": {"skipAnalysis": True}}, SMP
    )
    assert_status(body, 415, "UnsupportedMediaType")
    await call(http, "POST", DEPLOYMENTS, deployment())
    status, body = await call(
        http, "PATCH", f"{DEPLOYMENTS}/podinfo", {"spec": {"replicas": 3}}, SMP
    )
    assert (status, body["spec"]["replicas"]) == (200, 3)
    status, body = await call(
        http, "PATCH", f"{CANARIES}/podinfo", {}, {"Content-Type": "application/apply-patch+yaml"}
    )
    assert_status(body, 415, "UnsupportedMediaType")


async def test_json_patches(http: aiohttp.ClientSession) -> None:
    _, created = await call(http, "POST", CANARIES, canary(stepWeights=[10, 20]))
    ops = [
        {"op": "test", "path": "/spec/targetRef/name", "value": "podinfo"},
        {"op": "add", "path": "/spec/stepWeights/-", "value": 50},
        {"op": "replace", "path": "/spec/stepWeights/0", "value": 5},
        {"op": "add", "path": "/metadata/labels", "value": {"a~b/c": "1"}},
        {"op": "remove", "path": "/spec/targetRef"},
    ]
    status, body = await call(http, "PATCH", f"{CANARIES}/podinfo", ops, JSONP)
    assert status == 200
    assert body["spec"] == {"stepWeights": [5, 20, 50]}
    assert body["metadata"]["labels"] == {"a~b/c": "1"}
    failing = [{"op": "test", "path": "/spec/stepWeights/0", "value": 10}]
    status, body = await call(http, "PATCH", f"{CANARIES}/podinfo", failing, JSONP)
    assert_status(body, 422, "Invalid")
    # What kubernetes-asyncio sends for a dict body of a custom object by default.
    status, body = await call(http, "PATCH", f"{CANARIES}/podinfo", {"spec": {}}, JSONP)
    assert_status(body, 400, "BadRequest")
    stale = [
        {
            "op": "replace",
            "path": "/metadata/resourceVersion",
            "value": created["metadata"]["resourceVersion"],
        }
    ]
    status, body = await call(http, "PATCH", f"{CANARIES}/podinfo", stale, JSONP)
    assert_status(body, 409, "Conflict")


def test_json_patch_move_copy_and_pointer_escapes() -> None:
    doc = {"a": {"b~c": 1, "d/e": 2}, "l": [1, 2]}
    out = json_patch(
        doc,
        [
            {"op": "copy", "from": "/a/b~0c", "path": "/x"},
            {"op": "move", "from": "/a/d~1e", "path": "/l/0"},
        ],
    )
    assert out == {"a": {"b~c": 1}, "l": [2, 1, 2], "x": 1}
    assert doc["a"] == {"b~c": 1, "d/e": 2}  # the input is not modified


async def test_a_resource_version_in_a_merge_patch_is_a_precondition(
    http: aiohttp.ClientSession,
) -> None:
    _, created = await call(http, "POST", CANARIES, canary())
    version = created["metadata"]["resourceVersion"]
    ok = {"metadata": {"resourceVersion": version}, "spec": {"skipAnalysis": True}}
    status, body = await call(http, "PATCH", f"{CANARIES}/podinfo", ok, MERGE)
    assert status == 200
    status, body = await call(http, "PATCH", f"{CANARIES}/podinfo", ok, MERGE)
    assert_status(body, 409, "Conflict")


async def test_a_patch_that_changes_nothing_keeps_the_resource_version(
    http: aiohttp.ClientSession, api: FakeKubeApi
) -> None:
    _, created = await call(http, "POST", CANARIES, canary())
    _, same = await call(http, "PATCH", f"{CANARIES}/podinfo", {"spec": {}}, MERGE)
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert api.store.resource_version == created["metadata"]["resourceVersion"]


# ---------------------------------------------------------------------------- subresources


async def test_the_status_subresource_isolates_status_from_spec(
    http: aiohttp.ClientSession,
) -> None:
    await call(http, "POST", CANARIES, canary())
    both = {"spec": {"skipAnalysis": True}, "status": {"phase": "Progressing"}}
    _, body = await call(http, "PATCH", f"{CANARIES}/podinfo/status", both, MERGE)
    assert body["status"] == {"phase": "Progressing"}
    assert "skipAnalysis" not in body["spec"]
    assert body["metadata"]["generation"] == 1
    _, body = await call(http, "PATCH", f"{CANARIES}/podinfo", both | {"status": {}}, MERGE)
    assert body["spec"]["skipAnalysis"] is True
    assert body["status"] == {"phase": "Progressing"}
    assert body["metadata"]["generation"] == 2
    # Metadata-only changes do not bump generation.
    labels = {"metadata": {"labels": {"a": "b"}}}
    _, body = await call(http, "PATCH", f"{CANARIES}/podinfo", labels, MERGE)
    assert body["metadata"]["generation"] == 2
    # PUT on /status replaces the status only.
    put = body | {"spec": {}, "status": {"phase": "Succeeded"}}
    _, body = await call(http, "PUT", f"{CANARIES}/podinfo/status", put)
    assert (body["status"], body["spec"]["skipAnalysis"]) == ({"phase": "Succeeded"}, True)
    _, got = await call(http, "GET", f"{CANARIES}/podinfo/status")
    assert got == body


async def test_kinds_without_a_status_subresource(http: aiohttp.ClientSession) -> None:
    await call(http, "POST", CONFIGMAPS, {"metadata": {"name": "cm"}, "status": {"kept": 1}})
    status, body = await call(http, "PATCH", f"{CONFIGMAPS}/cm/status", {"status": {}}, MERGE)
    assert_status(body, 404, "NotFound")
    _, body = await call(http, "PATCH", f"{CONFIGMAPS}/cm", {"status": {"more": 2}}, MERGE)
    assert body["status"] == {"kept": 1, "more": 2}
    status, _ = await call(http, "GET", f"{DEPLOYMENTS}/podinfo/logs")
    assert status == 404


async def test_the_scale_subresource_of_deployments(http: aiohttp.ClientSession) -> None:
    await call(http, "POST", DEPLOYMENTS, deployment())
    _, scale = await call(http, "GET", f"{DEPLOYMENTS}/podinfo/scale")
    assert (scale["apiVersion"], scale["kind"]) == ("autoscaling/v1", "Scale")
    assert scale["spec"] == {"replicas": 1}
    assert scale["status"]["selector"] == "app=podinfo"
    _, scale = await call(
        http, "PATCH", f"{DEPLOYMENTS}/podinfo/scale", {"spec": {"replicas": 0}}, MERGE
    )
    assert scale["spec"] == {"replicas": 0}
    _, dep = await call(http, "GET", f"{DEPLOYMENTS}/podinfo")
    assert dep["spec"]["replicas"] == 0
    assert dep["metadata"]["generation"] == 2
    status, _ = await call(http, "GET", f"{CANARIES}/podinfo/scale")
    assert status == 404


# ---------------------------------------------------------------------------- watches


async def test_a_watch_without_version_starts_with_the_current_objects(
    api: FakeKubeApi, http: aiohttp.ClientSession
) -> None:
    api.store.seed(canary("a"), canary("b"), deployment("not-a-canary"))

    async def change() -> None:
        await eventually_watching(api)
        api.store.put(canary("a", skipAnalysis=True))
        api.store.remove("canaries.flagger.app", "default", "b")

    task = asyncio.create_task(change())
    events = await watch_events(http, CANARIES, 4)
    await task
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "a"),
        ("ADDED", "b"),
        ("MODIFIED", "a"),
        ("DELETED", "b"),
    ]
    assert events[0]["object"]["kind"] == "Canary"
    assert int(events[3]["object"]["metadata"]["resourceVersion"]) > int(
        events[2]["object"]["metadata"]["resourceVersion"]
    )


async def test_a_watch_from_a_version_replays_what_happened_since(
    api: FakeKubeApi, http: aiohttp.ClientSession
) -> None:
    api.store.seed(canary("a"))
    since = api.store.resource_version
    api.store.seed(canary("b"), canary("a", skipAnalysis=True))
    events = await watch_events(http, CANARIES, 2, resourceVersion=since)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "b"),
        ("MODIFIED", "a"),
    ]
    # Built-in kinds carry apiVersion/kind in watch events (unlike list items).
    api.store.seed(deployment())
    events = await watch_events(http, DEPLOYMENTS, 1, resourceVersion=since)
    assert events[0]["object"]["kind"] == "Deployment"


async def test_a_too_old_version_answers_410_gone_in_an_error_event(
    http: aiohttp.ClientSession,
) -> None:
    async with serve_kube_api(history_limit=3, crds=False) as small:
        small.store.seed(*(canary(f"c{i}") for i in range(5)))
        async with aiohttp.ClientSession(small.url) as session:
            events = await watch_events(session, CANARIES, resourceVersion="1")
            assert len(events) == 1
            assert events[0]["type"] == "ERROR"
            assert_status(events[0]["object"], 410, "Expired")
            assert "too old resource version" in events[0]["object"]["message"]
            # Still inside the window: replayed.
            replayed = await watch_events(session, CANARIES, 2, resourceVersion="3")
            assert [e["object"]["metadata"]["name"] for e in replayed] == ["c3", "c4"]
            small.store.compact()
            events = await watch_events(session, CANARIES, resourceVersion="4")
            assert events[0]["object"]["code"] == 410


async def test_timeout_seconds_ends_the_watch(
    api: FakeKubeApi, http: aiohttp.ClientSession
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    events = await watch_events(http, CANARIES, resourceVersion="0", timeoutSeconds="1")
    assert events == []
    assert 0.9 <= loop.time() - started < 3
    assert api.open_watches == 0


async def test_bookmarks_only_for_watches_that_allow_them(
    api: FakeKubeApi, http: aiohttp.ClientSession
) -> None:
    api.store.seed(canary())
    version = api.store.resource_version

    async def mark() -> None:
        await eventually_watching(api, 2)
        assert api.bookmark() == 2
        api.drop_watches()

    task = asyncio.create_task(mark())
    allowed, plain = await asyncio.gather(
        watch_events(http, CANARIES, resourceVersion=version, allowWatchBookmarks="true"),
        watch_events(http, CANARIES, resourceVersion=version),
    )
    await task
    assert [e["type"] for e in allowed] == ["BOOKMARK"]
    assert allowed[0]["object"]["metadata"]["resourceVersion"] == version
    assert plain == []


async def test_dropping_watches_ends_or_cuts_the_streams(
    api: FakeKubeApi, http: aiohttp.ClientSession
) -> None:
    async def drop(abort: bool) -> None:
        await eventually_watching(api)
        assert api.drop_watches(abort=abort) == 1

    task = asyncio.create_task(drop(False))
    assert await watch_events(http, CANARIES) == []  # a clean end
    await task
    task = asyncio.create_task(drop(True))
    with pytest.raises(aiohttp.ClientPayloadError):
        await watch_events(http, CANARIES)
    await task
    await eventually_watching(api, 0)


# ---------------------------------------------------------------------------- test helpers


async def test_fault_injection_and_request_counters(
    api: FakeKubeApi, http: aiohttp.ClientSession
) -> None:
    await call(http, "POST", CANARIES, canary())
    api.reset_counts()
    api.fail_next(2, method="PATCH", path="/status", status=503)
    status, body = await call(http, "PATCH", f"{CANARIES}/podinfo/status", {}, MERGE)
    assert_status(body, 503, "ServiceUnavailable")
    status, _ = await call(http, "PATCH", f"{CANARIES}/podinfo", {}, MERGE)
    assert status == 200  # the path does not match
    status, _ = await call(http, "GET", f"{CANARIES}/podinfo/status")
    assert status == 200  # the method does not match
    status, _ = await call(http, "PATCH", f"{CANARIES}/podinfo/status", {}, MERGE)
    assert status == 503
    status, _ = await call(http, "PATCH", f"{CANARIES}/podinfo/status", {}, MERGE)
    assert status == 200  # used up
    api.fail_next(1, path="watch=true")  # matches the query string too
    status, _ = await call(http, "GET", CANARIES, watch="true")
    assert status == 500
    await call(http, "GET", CANARIES)
    await call(http, "PUT", f"{CANARIES}/podinfo", canary())
    await call(http, "DELETE", f"{CANARIES}/podinfo")
    assert api.requests == {
        ("patch", "canaries/status"): 3,
        ("patch", "canaries"): 1,
        ("get", "canaries/status"): 1,
        ("watch", "canaries"): 1,
        ("list", "canaries"): 1,
        ("update", "canaries"): 1,
        ("delete", "canaries"): 1,
    }
    assert api.reads() == 2
    assert api.count(resource="canaries/status") == 4
    api.fail_next(5)
    api.clear_faults()
    assert (await call(http, "GET", CANARIES))[0] == 200


async def test_stalled_requests_wait_for_release(
    api: FakeKubeApi, http: aiohttp.ClientSession
) -> None:
    api.stall_next(1, method="GET")
    pending = asyncio.create_task(call(http, "GET", CANARIES))
    await eventually(lambda: api.stalled == 1)
    assert not pending.done()
    api.release_stalled()
    status, _ = await pending
    assert status == 200
    assert api.stalled == 0


async def test_a_token_is_required_when_configured() -> None:
    async with (
        serve_kube_api(token="s3cret", crds=False) as api,
        aiohttp.ClientSession(api.url) as s,
    ):
        async with s.get(CANARIES) as r:
            assert r.status == 401
            assert_status(await r.json(), 401, "Unauthorized")
        async with s.get(CANARIES, headers={"Authorization": "Bearer s3cret"}) as r:
            assert r.status == 200
        assert api.kubeconfig()["users"][0]["user"]["token"] == "s3cret"


def test_paths() -> None:
    p = parse_path("/apis/apps/v1/namespaces/ns/deployments/d/scale")
    assert p is not None
    assert (p.group, p.version, p.plural, p.namespace, p.name, p.subresource) == (
        "apps",
        "v1",
        "deployments",
        "ns",
        "d",
        "scale",
    )
    assert p.resource == "deployments/scale"
    core = parse_path("/api/v1/namespaces/ns")
    assert core is not None
    assert (core.plural, core.name, core.namespace) == ("namespaces", "ns", None)
    assert parse_path("/healthz") is None


async def test_version_endpoint(http: aiohttp.ClientSession) -> None:
    _, body = await call(http, "GET", "/version")
    assert body["major"] == "1"


async def eventually(check: Any, within: float = 5.0) -> None:
    """Poll ``check`` until it is true (real time, bounded)."""
    async with asyncio.timeout(within):
        while True:
            if check():
                return
            await asyncio.sleep(0.01)


async def eventually_watching(api: FakeKubeApi, n: int = 1) -> None:
    await eventually(lambda: api.open_watches == n)
