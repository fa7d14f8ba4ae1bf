"""One contract for every Cluster: the same tests against each implementation of the protocol.

The engine is tested on ``InMemoryCluster`` (simulate, unit tests) and runs on ``KubeCluster``
(kubernetes-asyncio), which the end-to-end tests point at the API server emulation
``tests/kubeapi.py``. Each test here runs against ``memory``, ``kube`` (no cache),
``kube-cached`` (the controller's configuration) and ``kube-namespaced`` (``--namespace``) — see
``cluster_backends.py`` — through the
``Cluster`` protocol only, and asserts what a real kube-apiserver does, so that the three
emulations of Kubernetes cannot drift apart or away from it:

* create / get / list, server-owned metadata, generateName, a resourceVersion on create refused;
* JSON merge patch (RFC 7386, its appendix A examples end to end), no-op writes, generation;
* resourceVersion preconditions (``expect_version`` and in the patch body) -> ``Conflict``;
* the status subresource (CRD semantics: status writes change only status, main-resource
  writes ignore status, create drops it);
* namespaces, equality label selectors, deletes (with finalizers: marked, then gone), Events;
* watches: current objects first, then every change in order; a dropped stream loses nothing;
  after 410 Gone the watcher re-lists and still converges on the cluster's state.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from cluster_backends import BACKENDS, NAMESPACES, Backend, nothing_more, open_backend, take

from traffic.cluster import (
    CANARY,
    CONFIGMAP,
    EVENT,
    SERVICE,
    Body,
    ClusterError,
    ClusterUnavailable,
    Conflict,
    Kind,
    NotFound,
    ObjectRef,
    WatchEvent,
    apply_merge_patch,
    json_copy,
)

pytestmark = pytest.mark.timeout(30)

NS, ELSEWHERE = NAMESPACES


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async with open_backend(request.param, tmp_path) as found:
        yield found


def configmap(
    name: str = "cfg",
    namespace: str = NS,
    data: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> Body:
    meta: Body = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = dict(labels)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": dict(data or {})}


def canary(name: str = "podinfo", namespace: str = NS, **spec: Any) -> Body:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}} | spec,
    }


def event(name: str, involved: str, namespace: str = NS, message: str = "hello") -> Body:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {"kind": "Canary", "name": involved, "namespace": namespace},
        "reason": "Synced",
        "message": message,
        "type": "Normal",
    }


def ref(kind: Kind, name: str, namespace: str = NS) -> ObjectRef:
    return ObjectRef(kind, namespace, name)


def rv(body: Mapping[str, Any]) -> str:
    return str(body["metadata"]["resourceVersion"])


def names(bodies: list[Body]) -> list[tuple[str, str]]:
    return [(b["metadata"]["namespace"], b["metadata"]["name"]) for b in bodies]


async def must_get(backend: Backend, target: ObjectRef) -> Body:
    found = await backend.cluster.get(target)
    assert found is not None, f"{target} not found"
    return found


@contextlib.asynccontextmanager
async def watching(
    backend: Backend, kind: Kind, namespace: str | None
) -> AsyncIterator[AsyncIterator[WatchEvent]]:
    stream = backend.cluster.watch(kind, namespace)
    try:
        yield stream
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


def summary(events: list[WatchEvent]) -> list[tuple[str, str]]:
    return [(e.type, e.body["metadata"]["name"]) for e in events]


# ---------------------------------------------------------------------------- create / get / list


async def test_create_returns_the_stored_object_with_server_metadata(backend: Backend) -> None:
    created = await backend.cluster.create(canary(skipAnalysis=True))
    meta = created["metadata"]
    assert (meta["name"], meta["namespace"]) == ("podinfo", NS)
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1
    assert isinstance(meta["resourceVersion"], str) and meta["resourceVersion"]
    assert (created["apiVersion"], created["kind"], created["spec"]) == (
        "flagger.app/v1beta1",
        "Canary",
        canary(skipAnalysis=True)["spec"],
    )
    assert await backend.cluster.get(ref(CANARY, "podinfo")) == created
    other = await backend.cluster.create(configmap(data={"a": "1"}))
    assert other["metadata"]["uid"] != meta["uid"]
    assert int(other["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    assert (other["apiVersion"], other["kind"], other["data"]) == ("v1", "ConfigMap", {"a": "1"})
    assert await backend.cluster.get(ref(CONFIGMAP, "cfg")) == other


async def test_a_written_body_is_the_callers_and_a_read_body_is_read_only(
    backend: Backend,
) -> None:
    created = await backend.cluster.create(configmap(data={"a": "1"}))
    created["data"]["a"] = "changed by the caller"  # the answer to a write is the caller's copy
    patched = await backend.cluster.patch(ref(CONFIGMAP, "cfg"), {"data": {"b": "2"}})
    patched["data"]["b"] = "changed by the caller"
    got = await must_get(backend, ref(CONFIGMAP, "cfg"))
    fresh = await backend.cluster.get(ref(CONFIGMAP, "cfg"), fresh=True)
    listed = await backend.cluster.list(CONFIGMAP, NS)
    for read in (got, fresh, listed[0]):
        assert read is not None
        with pytest.raises(TypeError, match="read-only: change a copy"):
            read["data"]["a"] = "changed by a reader"
        with pytest.raises(TypeError, match="read-only"):
            read["metadata"].pop("name")
        with pytest.raises(TypeError, match="read-only"):
            read.setdefault("spec", {})
        copy = json_copy(read)  # what a caller that wants to build on a read body does
        copy["data"]["a"] = "changed in the copy"
        assert json.loads(json.dumps(read)) == read  # still a JSON body for everything else
    assert (await must_get(backend, ref(CONFIGMAP, "cfg")))["data"] == {"a": "1", "b": "2"}


async def test_creating_an_existing_object_is_a_conflict(backend: Backend) -> None:
    await backend.cluster.create(configmap())
    with pytest.raises(Conflict, match="already exists"):
        await backend.cluster.create(configmap(data={"b": "2"}))
    assert (await must_get(backend, ref(CONFIGMAP, "cfg")))["data"] == {}


async def test_a_resource_version_on_create_is_refused(backend: Backend) -> None:
    # kube-apiserver: "resourceVersion should not be set on objects to be created" (a copy of
    # a read object sent back as a create is a bug the emulations must not hide).
    body = configmap()
    body["metadata"]["resourceVersion"] = "7"
    with pytest.raises(ClusterUnavailable, match="resourceVersion should not be set"):
        await backend.cluster.create(body)
    assert await backend.cluster.get(ref(CONFIGMAP, "cfg")) is None


async def test_generate_name_makes_a_unique_name(backend: Backend) -> None:
    made = set()
    for spelled in ({}, {"name": ""}, {}):
        body = event("", "podinfo")
        body["metadata"] = {"generateName": "podinfo.", "namespace": NS, **spelled}
        made.add((await backend.cluster.create(body))["metadata"]["name"])
    assert len(made) == 3
    assert all(n.startswith("podinfo.") and len(n) > len("podinfo.") for n in made)
    listed = await backend.cluster.list(EVENT, NS)
    assert {b["metadata"]["name"] for b in listed} == made


async def test_create_without_a_namespace_lands_in_default(backend: Backend) -> None:
    body = configmap()
    del body["metadata"]["namespace"]
    created = await backend.cluster.create(body)
    assert created["metadata"]["namespace"] == "default"
    assert await backend.cluster.get(ref(CONFIGMAP, "cfg", "default")) is not None
    assert await backend.cluster.get(ref(CONFIGMAP, "cfg")) is None


async def test_missing_objects(backend: Backend) -> None:
    missing = ref(CANARY, "ghost")
    assert await backend.cluster.get(missing) is None
    assert await backend.cluster.list(CANARY, NS) == []
    with pytest.raises(NotFound):
        await backend.cluster.patch(missing, {"spec": {"skipAnalysis": True}})
    with pytest.raises(NotFound):
        await backend.cluster.patch(missing, {"status": {"phase": "Failed"}}, status=True)
    await backend.cluster.delete(missing)  # not an error


# ---------------------------------------------------------------------------- namespaces, labels


async def test_namespaces_separate_objects_of_the_same_name(backend: Backend) -> None:
    await backend.cluster.create(configmap(data={"where": "here"}))
    await backend.cluster.create(configmap(namespace=ELSEWHERE, data={"where": "there"}))
    await backend.cluster.create(configmap("b", data={"where": "here"}))
    assert (await must_get(backend, ref(CONFIGMAP, "cfg")))["data"] == {"where": "here"}
    assert (await must_get(backend, ref(CONFIGMAP, "cfg", ELSEWHERE)))["data"] == {"where": "there"}
    assert names(await backend.cluster.list(CONFIGMAP, NS)) == [(NS, "b"), (NS, "cfg")]
    assert names(await backend.cluster.list(CONFIGMAP, ELSEWHERE)) == [(ELSEWHERE, "cfg")]
    assert names(await backend.cluster.list(CONFIGMAP, None)) == [
        (NS, "b"),
        (NS, "cfg"),
        (ELSEWHERE, "cfg"),
    ]  # sorted by namespace, then name
    there = ref(CONFIGMAP, "cfg", ELSEWHERE)
    assert (await backend.cluster.patch(there, {"data": {"where": "moved"}}))["data"] == {
        "where": "moved"
    }
    await backend.cluster.delete(there)
    assert await backend.cluster.get(there) is None
    assert (await must_get(backend, ref(CONFIGMAP, "cfg")))["data"] == {"where": "here"}


async def test_label_selectors_are_equality_and_all_must_match(backend: Backend) -> None:
    name_key = "app.kubernetes.io/name"
    await backend.cluster.create(configmap("a", labels={name_key: "podinfo", "tier": "web"}))
    await backend.cluster.create(configmap("b", labels={name_key: "podinfo", "tier": "db"}))
    await backend.cluster.create(configmap("c", labels={name_key: "other", "tier": "web"}))
    await backend.cluster.create(configmap("d"))
    await backend.cluster.create(configmap("e", ELSEWHERE, labels={name_key: "podinfo"}))

    async def selected(namespace: str | None, labels: Mapping[str, str] | None) -> list[str]:
        found = await backend.cluster.list(CONFIGMAP, namespace, labels=labels)
        return [b["metadata"]["name"] for b in found]

    assert await selected(NS, {name_key: "podinfo"}) == ["a", "b"]
    assert await selected(NS, {name_key: "podinfo", "tier": "web"}) == ["a"]
    assert await selected(NS, {"tier": "web"}) == ["a", "c"]
    assert await selected(NS, {"tier": "nowhere"}) == []
    assert await selected(None, {name_key: "podinfo"}) == ["a", "b", "e"]
    assert await selected(NS, {}) == await selected(NS, None) == ["a", "b", "c", "d"]
    # A label change moves an object in or out of a selection.
    await backend.cluster.patch(ref(CONFIGMAP, "d"), {"metadata": {"labels": {"tier": "web"}}})
    await backend.cluster.patch(ref(CONFIGMAP, "a"), {"metadata": {"labels": {"tier": None}}})
    assert await selected(NS, {"tier": "web"}) == ["c", "d"]


# ---------------------------------------------------------------------------- merge patch

#: RFC 7386 appendix A: (target, patch, result).
RFC_7386_EXAMPLES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_7386_EXAMPLES)
def test_the_one_merge_patch_follows_rfc_7386(target: Any, patch: Any, result: Any) -> None:
    before = repr(target)
    assert apply_merge_patch(target, patch) == result
    assert repr(target) == before  # the input is never modified


@pytest.mark.parametrize(("target", "patch", "result"), RFC_7386_EXAMPLES)
async def test_merge_patch_end_to_end_follows_rfc_7386(
    backend: Backend, target: Any, patch: Any, result: Any
) -> None:
    # Each example one level down, under spec.x of a custom resource: what the engine patches.
    await backend.cluster.create(canary(x=target))
    patched = await backend.cluster.patch(ref(CANARY, "podinfo"), {"spec": {"x": patch}})
    expected = {"targetRef": canary()["spec"]["targetRef"]}
    if result is not None:
        expected["x"] = result
    assert patched["spec"] == expected
    assert (await must_get(backend, ref(CANARY, "podinfo")))["spec"] == expected


async def test_merge_patch_merges_maps_deletes_nulls_and_replaces_lists(backend: Backend) -> None:
    await backend.cluster.create(
        canary(
            analysis={"interval": "1m", "threshold": 5, "metrics": [{"name": "a"}, {"name": "b"}]},
            service={"port": 80},
        )
    )
    patched = await backend.cluster.patch(
        ref(CANARY, "podinfo"),
        {
            "metadata": {"labels": {"team": "x"}, "annotations": {"note": None}},
            "spec": {
                "analysis": {"threshold": None, "metrics": [{"name": "c"}], "maxWeight": 50},
                "service": None,
                "skipAnalysis": True,
            },
        },
    )
    assert patched["spec"] == {
        "targetRef": canary()["spec"]["targetRef"],
        "analysis": {"interval": "1m", "metrics": [{"name": "c"}], "maxWeight": 50},
        "skipAnalysis": True,
    }
    assert patched["metadata"]["labels"] == {"team": "x"}
    assert "annotations" not in patched["metadata"] or not patched["metadata"]["annotations"]
    assert await must_get(backend, ref(CANARY, "podinfo")) == patched


async def test_a_write_that_changes_nothing_is_not_a_new_version(backend: Backend) -> None:
    created = await backend.cluster.create(canary(skipAnalysis=False))
    same = await backend.cluster.patch(ref(CANARY, "podinfo"), {"spec": {"skipAnalysis": False}})
    assert rv(same) == rv(created)
    status_less = await backend.cluster.patch(
        ref(CANARY, "podinfo"), {"status": {"phase": "Initialized"}}
    )  # status through the main resource: ignored, so nothing changes
    assert rv(status_less) == rv(created)
    assert await must_get(backend, ref(CANARY, "podinfo")) == created


async def test_server_owned_metadata_is_not_patched(backend: Backend) -> None:
    created = await backend.cluster.create(canary())
    patched = await backend.cluster.patch(
        ref(CANARY, "podinfo"),
        {
            "metadata": {
                "creationTimestamp": "2000-01-01T00:00:00Z",
                "generation": 42,
                "deletionTimestamp": "2000-01-01T00:00:00Z",
                "labels": {"a": "b"},
            }
        },
    )
    for key in ("uid", "creationTimestamp", "generation"):
        assert patched["metadata"][key] == created["metadata"][key], key
    assert "deletionTimestamp" not in patched["metadata"]
    assert patched["metadata"]["labels"] == {"a": "b"}
    assert await must_get(backend, ref(CANARY, "podinfo")) == patched


async def test_a_patch_cannot_rename_or_move_an_object(backend: Backend) -> None:
    await backend.cluster.create(configmap(data={"a": "1"}))
    for meta in ({"name": "renamed"}, {"namespace": ELSEWHERE}):
        with pytest.raises(ClusterError, match="does not match") as raised:
            await backend.cluster.patch(ref(CONFIGMAP, "cfg"), {"metadata": meta, "data": {}})
        assert not isinstance(raised.value, NotFound | Conflict)
    assert (await must_get(backend, ref(CONFIGMAP, "cfg")))["data"] == {"a": "1"}
    assert await backend.cluster.get(ref(CONFIGMAP, "renamed")) is None
    assert await backend.cluster.get(ref(CONFIGMAP, "cfg", ELSEWHERE)) is None


async def test_generation_counts_spec_changes_only(backend: Backend) -> None:
    target = ref(CANARY, "podinfo")
    await backend.cluster.create(canary())
    spec = await backend.cluster.patch(target, {"spec": {"skipAnalysis": True}})
    assert spec["metadata"]["generation"] == 2
    labels = await backend.cluster.patch(target, {"metadata": {"labels": {"a": "b"}}})
    assert labels["metadata"]["generation"] == 2 and rv(labels) != rv(spec)
    status = await backend.cluster.patch(target, {"status": {"phase": "Progressing"}}, status=True)
    assert status["metadata"]["generation"] == 2 and rv(status) != rv(labels)
    again = await backend.cluster.patch(target, {"spec": {"skipAnalysis": False}})
    assert again["metadata"]["generation"] == 3


# ---------------------------------------------------------------------------- conflicts


async def test_a_stale_expect_version_is_a_conflict_and_changes_nothing(backend: Backend) -> None:
    target = ref(CANARY, "podinfo")
    created = await backend.cluster.create(canary())
    moved = await backend.cluster.patch(target, {"spec": {"skipAnalysis": True}})
    for status in (False, True):
        with pytest.raises(Conflict, match="modified"):
            await backend.cluster.patch(
                target,
                {"spec": {"skipAnalysis": False}, "status": {"phase": "Failed"}},
                status=status,
                expect_version=rv(created),
            )
    assert await must_get(backend, target) == moved
    ok = await backend.cluster.patch(
        target, {"status": {"phase": "Progressing"}}, status=True, expect_version=rv(moved)
    )
    assert ok["status"] == {"phase": "Progressing"} and rv(ok) != rv(moved)


async def test_a_resource_version_in_the_patch_is_a_precondition(backend: Backend) -> None:
    target = ref(CANARY, "podinfo")
    created = await backend.cluster.create(canary())
    moved = await backend.cluster.patch(target, {"spec": {"skipAnalysis": True}})
    for status in (False, True):
        with pytest.raises(Conflict):
            await backend.cluster.patch(
                target,
                {"metadata": {"resourceVersion": rv(created)}, "status": {"phase": "Failed"}},
                status=status,
            )
    assert await must_get(backend, target) == moved
    ok = await backend.cluster.patch(
        target, {"metadata": {"resourceVersion": rv(moved)}, "spec": {"skipAnalysis": False}}
    )
    assert ok["spec"]["skipAnalysis"] is False


async def test_of_two_writers_from_one_read_only_the_first_wins(backend: Backend) -> None:
    target = ref(CANARY, "podinfo")
    await backend.cluster.create(canary())
    read_by_us = await must_get(backend, target)
    read_by_them = await backend.other.get(target)
    assert read_by_them is not None and rv(read_by_them) == rv(read_by_us)
    await backend.other.patch(
        target, {"status": {"phase": "Progressing"}}, status=True, expect_version=rv(read_by_them)
    )
    with pytest.raises(Conflict):
        await backend.cluster.patch(
            target, {"status": {"phase": "Failed"}}, status=True, expect_version=rv(read_by_us)
        )
    fresh = await backend.other.get(target)
    assert fresh is not None and fresh["status"] == {"phase": "Progressing"}


# ---------------------------------------------------------------------------- status subresource


async def test_create_drops_the_status_of_a_kind_with_a_status_subresource(
    backend: Backend,
) -> None:
    body = canary()
    body["status"] = {"phase": "Succeeded"}
    created = await backend.cluster.create(body)
    assert "status" not in created
    assert "status" not in await must_get(backend, ref(CANARY, "podinfo"))


async def test_a_status_write_changes_only_the_status(backend: Backend) -> None:
    target = ref(CANARY, "podinfo")
    created = await backend.cluster.create(canary())
    written = await backend.cluster.patch(
        target,
        {
            "metadata": {"labels": {"sneaky": "yes"}, "annotations": {"a": "b"}},
            "spec": {"skipAnalysis": True},
            "status": {"phase": "Progressing", "canaryWeight": 10},
        },
        status=True,
    )
    assert written["status"] == {"phase": "Progressing", "canaryWeight": 10}
    assert written["spec"] == created["spec"]
    assert "labels" not in written["metadata"] and "annotations" not in written["metadata"]
    assert written["metadata"]["generation"] == created["metadata"]["generation"]
    assert await must_get(backend, target) == written


async def test_a_main_resource_write_ignores_the_status(backend: Backend) -> None:
    target = ref(CANARY, "podinfo")
    await backend.cluster.create(canary())
    await backend.cluster.patch(target, {"status": {"phase": "Progressing"}}, status=True)
    written = await backend.cluster.patch(
        target, {"spec": {"skipAnalysis": True}, "status": {"phase": "Failed", "x": 1}}
    )
    assert written["spec"]["skipAnalysis"] is True
    assert written["status"] == {"phase": "Progressing"}
    cleared = await backend.cluster.patch(target, {"spec": {"skipAnalysis": None}, "status": None})
    assert "skipAnalysis" not in cleared["spec"] and cleared["status"] == {"phase": "Progressing"}


async def test_status_writes_merge_and_null_deletes(backend: Backend) -> None:
    target = ref(CANARY, "podinfo")
    await backend.cluster.create(canary())
    conditions = [{"type": "Promoted", "status": "Unknown"}]
    await backend.cluster.patch(
        target,
        {"status": {"phase": "Progressing", "canaryWeight": 10, "conditions": conditions}},
        status=True,
    )
    merged = await backend.cluster.patch(
        target,
        {"status": {"canaryWeight": None, "iterations": 1, "conditions": [{"type": "X"}]}},
        status=True,
    )
    assert merged["status"] == {
        "phase": "Progressing",
        "iterations": 1,
        "conditions": [{"type": "X"}],
    }
    untouched = await backend.cluster.patch(target, {"spec": {}}, status=True)
    assert untouched["status"] == merged["status"] and rv(untouched) == rv(merged)
    gone = await backend.cluster.patch(target, {"status": None}, status=True)
    assert "status" not in gone
    assert "status" not in await must_get(backend, target)


async def test_kinds_without_a_status_subresource_refuse_status_writes(backend: Backend) -> None:
    await backend.cluster.create(configmap(data={"a": "1"}))
    await backend.cluster.create(event("e1", "podinfo"))
    for target in (ref(CONFIGMAP, "cfg"), ref(EVENT, "e1")):
        with pytest.raises(NotFound):
            await backend.cluster.patch(target, {"status": {"x": "y"}}, status=True)
    assert (await must_get(backend, ref(CONFIGMAP, "cfg")))["data"] == {"a": "1"}


async def test_a_built_in_kind_with_a_status_subresource(backend: Backend) -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {"selector": {"app": "podinfo"}, "ports": [{"port": 80}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}},
    }
    created = await backend.cluster.create(service)
    assert "status" not in created
    target = ref(SERVICE, "podinfo")
    lb = {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}]}}
    written = await backend.cluster.patch(target, {"status": lb}, status=True)
    assert written["status"] == lb and written["spec"] == created["spec"]
    ignored = await backend.cluster.patch(target, {"status": {"loadBalancer": {}}})
    assert ignored["status"] == lb and rv(ignored) == rv(written)


# ---------------------------------------------------------------------------- deletes, Events


async def test_delete_removes_the_object(backend: Backend) -> None:
    await backend.cluster.create(configmap())
    await backend.cluster.create(configmap("kept"))
    await backend.cluster.delete(ref(CONFIGMAP, "cfg"))
    assert await backend.cluster.get(ref(CONFIGMAP, "cfg")) is None
    assert names(await backend.cluster.list(CONFIGMAP, NS)) == [(NS, "kept")]
    await backend.cluster.delete(ref(CONFIGMAP, "cfg"))  # again: fine
    recreated = await backend.cluster.create(configmap(data={"new": "1"}))
    assert recreated["data"] == {"new": "1"} and recreated["metadata"]["generation"] == 1


async def test_an_object_with_finalizers_is_marked_and_goes_with_the_last_finalizer(
    backend: Backend,
) -> None:
    # Flagger's finalizer.flagger.app: kubectl delete marks the Canary, the controller reverts
    # the target and removes the finalizer, and only then does the object go.
    target = ref(CANARY, "podinfo")
    body = canary()
    body["metadata"]["finalizers"] = ["finalizer.flagger.app", "other.example.com"]
    created = await backend.cluster.create(body)
    await backend.cluster.delete(target)
    marked = await must_get(backend, target)
    assert marked["metadata"]["deletionTimestamp"]
    assert marked["metadata"]["finalizers"] == ["finalizer.flagger.app", "other.example.com"]
    assert rv(marked) != rv(created)
    await backend.cluster.delete(target)  # deleting again changes nothing
    assert rv(await must_get(backend, target)) == rv(marked)
    # Once deletion has begun, finalizers can only be removed.
    with pytest.raises(ClusterError, match="no new finalizers") as raised:
        await backend.cluster.patch(
            target, {"metadata": {"finalizers": ["finalizer.flagger.app", "late.example.com"]}}
        )
    assert not isinstance(raised.value, NotFound | Conflict)
    assert await must_get(backend, target) == marked
    # The deletion timestamp is the server's: a patch cannot clear it.
    kept = await backend.cluster.patch(
        target, {"metadata": {"deletionTimestamp": None, "finalizers": ["other.example.com"]}}
    )
    assert kept["metadata"]["deletionTimestamp"] == marked["metadata"]["deletionTimestamp"]
    last = await backend.cluster.patch(target, {"metadata": {"finalizers": None}})
    assert last == kept  # the answer is the last stored version
    assert await backend.cluster.get(target) is None
    assert await backend.cluster.list(CANARY, NS) == []
    with pytest.raises(NotFound):
        await backend.cluster.patch(target, {"metadata": {"finalizers": None}})


async def test_events_are_listed_per_namespace_with_their_involved_object(
    backend: Backend,
) -> None:
    await backend.cluster.create(event("podinfo.1", "podinfo", message="New revision detected"))
    await backend.cluster.create(event("podinfo.2", "podinfo", message="Advance podinfo"))
    await backend.cluster.create(event("other.1", "other", namespace=ELSEWHERE))
    listed = await backend.cluster.list(EVENT, NS)
    assert [(e["metadata"]["name"], e["message"]) for e in listed] == [
        ("podinfo.1", "New revision detected"),
        ("podinfo.2", "Advance podinfo"),
    ]
    assert all(e["involvedObject"]["name"] == "podinfo" for e in listed)
    assert all((e["apiVersion"], e["kind"]) == ("v1", "Event") for e in listed)
    assert len(await backend.cluster.list(EVENT, None)) == 3


# ---------------------------------------------------------------------------- watches


async def test_a_watch_starts_with_the_current_objects_then_streams_each_change_in_order(
    backend: Backend,
) -> None:
    await backend.other.create(canary("a"))
    await backend.other.create(canary("b"))
    await backend.other.create(canary("away", namespace=ELSEWHERE))
    async with watching(backend, CANARY, NS) as events:
        first = await take(events, 2)
        assert sorted(summary(first)) == [("ADDED", "a"), ("ADDED", "b")]
        other, a = backend.other, ref(CANARY, "a")
        await other.patch(a, {"spec": {"skipAnalysis": True}})
        await other.patch(a, {"spec": {"skipAnalysis": True}})  # no change: no event
        await other.patch(a, {"status": {"phase": "Progressing"}}, status=True)
        await other.create(canary("away2", namespace=ELSEWHERE))  # not this namespace
        await other.patch(ref(CANARY, "away", ELSEWHERE), {"spec": {"skipAnalysis": True}})
        await other.create(canary("c"))
        await other.delete(a)
        changes = await take(events, 4)
        assert summary(changes) == [
            ("MODIFIED", "a"),
            ("MODIFIED", "a"),
            ("ADDED", "c"),
            ("DELETED", "a"),
        ]
        assert changes[0].body["spec"]["skipAnalysis"] is True
        assert changes[1].body["status"] == {"phase": "Progressing"}
        versions = [int(rv(e.body)) for e in changes]
        assert versions == sorted(versions) and len(set(versions)) == 4
        await nothing_more(events)


async def test_a_watch_of_all_namespaces_and_two_watchers(backend: Backend) -> None:
    async with (
        watching(backend, CONFIGMAP, None) as everywhere,
        watching(backend, CONFIGMAP, ELSEWHERE) as elsewhere,
    ):
        await backend.other.create(configmap("here"))
        await backend.other.create(configmap("there", namespace=ELSEWHERE))
        # Order is promised per object only (a namespaced cache has a stream per namespace).
        assert sorted(summary(await take(everywhere, 2))) == [
            ("ADDED", "here"),
            ("ADDED", "there"),
        ]
        assert summary(await take(elsewhere, 1)) == [("ADDED", "there")]
        await nothing_more(elsewhere)
        await nothing_more(everywhere)


async def test_watch_events_are_copies(backend: Backend) -> None:
    await backend.other.create(configmap(data={"a": "1"}))
    async with watching(backend, CONFIGMAP, NS) as events:
        (added,) = await take(events, 1)
        assert (added.body["apiVersion"], added.body["kind"]) == ("v1", "ConfigMap")
        added.body["data"]["a"] = "changed by the watcher"
        assert (await must_get(backend, ref(CONFIGMAP, "cfg")))["data"] == {"a": "1"}


async def test_a_dropped_watch_loses_no_change(backend: Backend) -> None:
    await backend.other.create(canary("a"))
    async with watching(backend, CANARY, NS) as events:
        assert summary(await take(events, 1)) == [("ADDED", "a")]
        await backend.interrupt_watches()
        await backend.other.patch(ref(CANARY, "a"), {"spec": {"skipAnalysis": True}})
        await backend.other.patch(ref(CANARY, "a"), {"status": {"phase": "Waiting"}}, status=True)
        await backend.other.create(canary("b"))
        await backend.other.delete(ref(CANARY, "b"))
        await backend.resume_watches(expired=False)
        changes = await take(events, 4)
        assert summary(changes) == [
            ("MODIFIED", "a"),
            ("MODIFIED", "a"),
            ("ADDED", "b"),
            ("DELETED", "b"),
        ]
        assert changes[1].body["status"] == {"phase": "Waiting"}
        await nothing_more(events)


async def test_after_410_gone_the_watch_relists_and_converges(backend: Backend) -> None:
    # The protocol's promise: a watch never ends on an expired resourceVersion; the watcher
    # ends up with the cluster's state (intermediate versions may be folded into one event).
    await backend.other.create(canary("kept"))
    await backend.other.create(canary("doomed"))
    async with watching(backend, CANARY, NS) as events:
        seen: dict[str, Body] = {e.body["metadata"]["name"]: e.body for e in await take(events, 2)}
        await backend.interrupt_watches()
        await backend.other.patch(ref(CANARY, "kept"), {"spec": {"skipAnalysis": True}})
        await backend.other.patch(ref(CANARY, "kept"), {"spec": {"analysis": {"interval": "1m"}}})
        await backend.other.delete(ref(CANARY, "doomed"))
        await backend.other.create(canary("born"))
        lists_before = backend.api.count("list") if backend.api else 0
        await backend.resume_watches(expired=True)
        truth = {b["metadata"]["name"]: rv(b) for b in await backend.other.list(CANARY, NS)}
        while {n: rv(b) for n, b in seen.items()} != truth:
            (e,) = await take(events, 1)
            if e.type == "DELETED":
                seen.pop(e.body["metadata"]["name"])
            else:
                seen[e.body["metadata"]["name"]] = e.body
        assert seen["kept"]["spec"]["skipAnalysis"] is True
        if backend.api is not None:
            assert backend.api.count("list") > lists_before  # it did re-list
        # And the stream goes on.
        await backend.other.patch(ref(CANARY, "born"), {"spec": {"skipAnalysis": True}})
        assert summary(await take(events, 1)) == [("MODIFIED", "born")]
        await nothing_more(events)


async def test_a_watch_sees_an_object_marked_for_deletion_then_deleted(backend: Backend) -> None:
    body = canary()
    body["metadata"]["finalizers"] = ["finalizer.flagger.app"]
    await backend.other.create(body)
    async with watching(backend, CANARY, NS) as events:
        await take(events, 1)
        await backend.other.delete(ref(CANARY, "podinfo"))
        (marked,) = await take(events, 1)
        assert marked.type == "MODIFIED" and marked.body["metadata"]["deletionTimestamp"]
        await backend.other.patch(ref(CANARY, "podinfo"), {"metadata": {"finalizers": None}})
        assert summary(await take(events, 1)) == [("DELETED", "podinfo")]
