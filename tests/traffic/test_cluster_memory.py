"""The in-memory cluster keeps the API server's contract: versions, merge patch, status, watch."""

from __future__ import annotations

import asyncio

import pytest
from traffic_testkit import NOW, NS, dep_ref, deployment

from traffic.cluster import (
    CANARY,
    CONFIGMAP,
    DEPLOYMENT,
    EVENT,
    Body,
    Conflict,
    InMemoryCluster,
    NotFound,
    ObjectRef,
    apply_merge_patch,
)


def configmap(name: str = "cfg", data: dict[str, str] | None = None, **labels: str) -> Body:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "data": data or {"a": "1"},
    }


def canary_cr(name: str = "podinfo") -> Body:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"targetRef": {"name": "podinfo"}},
        "status": {"phase": "Succeeded"},
    }


CM = ObjectRef(CONFIGMAP, NS, "cfg")


async def test_create_assigns_server_metadata_and_returns_a_copy() -> None:
    cluster = InMemoryCluster(now=lambda: NOW)
    created = await cluster.create(configmap())
    meta = created["metadata"]
    assert meta["uid"] and meta["generation"] == 1
    assert meta["creationTimestamp"] == "2024-01-01T12:00:00Z"
    assert isinstance(meta["resourceVersion"], str)
    created["data"]["a"] = "mutated"
    stored = await cluster.get(CM)
    assert stored is not None and stored["data"] == {"a": "1"}
    with pytest.raises(TypeError, match="read-only"):
        stored["data"]["a"] = "mutated again"
    assert (await cluster.get(CM))["data"] == {"a": "1"}  # type: ignore[index]


async def test_creating_an_existing_object_conflicts() -> None:
    cluster = InMemoryCluster()
    await cluster.create(configmap())
    with pytest.raises(Conflict, match='"cfg" already exists'):
        await cluster.create(configmap())


async def test_missing_objects_are_none_on_get_notfound_on_patch_and_fine_on_delete() -> None:
    cluster = InMemoryCluster()
    assert await cluster.get(CM) is None
    with pytest.raises(NotFound):
        await cluster.patch(CM, {"data": {"a": "2"}})
    await cluster.delete(CM)


def test_merge_patch_follows_rfc_7386() -> None:
    target = {"a": {"b": 1, "c": 2}, "list": [1, 2, 3], "keep": True}
    patched = apply_merge_patch(target, {"a": {"b": None, "d": 4}, "list": [9]})
    assert patched == {"a": {"c": 2, "d": 4}, "list": [9], "keep": True}
    assert target["a"] == {"b": 1, "c": 2}  # the input is not modified


async def test_patch_merges_nested_maps_and_null_deletes_keys() -> None:
    cluster = InMemoryCluster()
    await cluster.create(configmap(data={"a": "1", "b": "2"}, team="x"))
    after = await cluster.patch(
        CM, {"data": {"a": None, "c": "3"}, "metadata": {"labels": {"tier": "web"}}}
    )
    assert after["data"] == {"b": "2", "c": "3"}
    assert after["metadata"]["labels"] == {"team": "x", "tier": "web"}


async def test_stale_resource_version_conflicts_in_argument_and_in_body() -> None:
    cluster = InMemoryCluster()
    created = await cluster.create(configmap())
    first = created["metadata"]["resourceVersion"]
    second = (await cluster.patch(CM, {"data": {"a": "2"}}, expect_version=first))["metadata"][
        "resourceVersion"
    ]
    assert int(second) > int(first)
    with pytest.raises(Conflict, match="has been modified"):
        await cluster.patch(CM, {"data": {"a": "3"}}, expect_version=first)
    with pytest.raises(Conflict):
        await cluster.patch(CM, {"metadata": {"resourceVersion": first}, "data": {"a": "3"}})
    ok = await cluster.patch(CM, {"metadata": {"resourceVersion": second}, "data": {"a": "3"}})
    assert ok["data"] == {"a": "3"}
    assert "resourceVersion" in ok["metadata"]  # the precondition is not written as data


async def test_a_patch_that_changes_nothing_is_not_a_new_version() -> None:
    cluster = InMemoryCluster()
    created = await cluster.create(configmap())
    same = await cluster.patch(CM, {"data": {"a": "1"}})
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_server_metadata_cannot_be_patched() -> None:
    cluster = InMemoryCluster()
    created = await cluster.create(configmap())
    after = await cluster.patch(
        CM, {"metadata": {"uid": "forged", "generation": 99, "labels": {"x": "y"}}}
    )
    assert after["metadata"]["uid"] == created["metadata"]["uid"]
    assert after["metadata"]["generation"] == 1
    assert after["metadata"]["labels"] == {"x": "y"}
    # A rename is refused, not ignored: test_cluster_contract.py checks it on every Cluster.


async def test_status_subresource_is_separate_from_the_main_resource() -> None:
    cluster = InMemoryCluster()
    ref = ObjectRef(CANARY, NS, "podinfo")
    created = await cluster.create(canary_cr())
    assert "status" not in created  # dropped on create, as the API server does
    after_status = await cluster.patch(ref, {"status": {"phase": "Progressing"}}, status=True)
    assert after_status["status"] == {"phase": "Progressing"}
    assert after_status["metadata"]["generation"] == 1
    # A status write ignores everything but status ...
    ignored = await cluster.patch(
        ref, {"spec": {"suspend": True}, "status": {"canaryWeight": 10}}, status=True
    )
    assert "suspend" not in ignored["spec"] and ignored["status"]["canaryWeight"] == 10
    # ... and a normal write ignores status.
    normal = await cluster.patch(ref, {"spec": {"suspend": True}, "status": {"phase": "Failed"}})
    assert normal["spec"]["suspend"] is True and normal["status"]["phase"] == "Progressing"


async def test_kinds_without_status_subresource_reject_status_writes() -> None:
    cluster = InMemoryCluster()
    await cluster.create(configmap())
    with pytest.raises(NotFound, match="no status subresource"):
        await cluster.patch(CM, {"status": {"x": 1}}, status=True)


async def test_generation_moves_only_when_the_spec_changes() -> None:
    cluster = InMemoryCluster()
    ref = ObjectRef(CANARY, NS, "podinfo")
    await cluster.create(canary_cr())
    relabelled = await cluster.patch(ref, {"metadata": {"labels": {"team": "a"}}})
    assert relabelled["metadata"]["generation"] == 1
    changed = await cluster.patch(ref, {"spec": {"suspend": True}})
    assert changed["metadata"]["generation"] == 2
    again = await cluster.patch(ref, {"spec": {"suspend": True}})
    assert again["metadata"]["generation"] == 2


async def test_list_filters_by_namespace_and_labels() -> None:
    cluster = InMemoryCluster()
    await cluster.create(configmap("a", team="x"))
    await cluster.create(configmap("b", team="y"))
    other = configmap("c", team="x")
    other["metadata"]["namespace"] = "other"
    await cluster.create(other)
    assert [b["metadata"]["name"] for b in await cluster.list(CONFIGMAP, NS)] == ["a", "b"]
    everywhere = await cluster.list(CONFIGMAP, None, labels={"team": "x"})
    assert [(b["metadata"]["namespace"], b["metadata"]["name"]) for b in everywhere] == [
        ("other", "c"),
        (NS, "a"),
    ]
    assert await cluster.list(CONFIGMAP, NS, labels={"team": "z"}) == []


async def test_watch_replays_current_objects_then_streams_changes() -> None:
    cluster = InMemoryCluster()
    await cluster.create(configmap("existing"))
    stream = cluster.watch(CONFIGMAP, NS)
    first = await anext(stream)
    assert (first.type, first.body["metadata"]["name"]) == ("ADDED", "existing")

    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    assert not pending.done()  # nothing happened yet: the watcher waits, nobody else does

    await cluster.create(configmap("new"))
    await cluster.patch(ObjectRef(CONFIGMAP, NS, "new"), {"data": {"a": "2"}})
    await cluster.delete(ObjectRef(CONFIGMAP, NS, "existing"))
    events = [await pending, await anext(stream), await anext(stream)]
    assert [(e.type, e.body["metadata"]["name"]) for e in events] == [
        ("ADDED", "new"),
        ("MODIFIED", "new"),
        ("DELETED", "existing"),
    ]
    assert events[1].body["data"] == {"a": "2"}
    await stream.aclose()  # type: ignore[attr-defined]


async def test_each_watcher_has_its_own_queue_and_namespace_filter() -> None:
    cluster = InMemoryCluster()
    everywhere = cluster.watch(CONFIGMAP, None)
    only_other = cluster.watch(CONFIGMAP, "other")
    pending_all = asyncio.ensure_future(anext(everywhere))
    pending_other = asyncio.ensure_future(anext(only_other))
    await asyncio.sleep(0)
    await cluster.create(configmap("in-test"))
    other = configmap("in-other")
    other["metadata"]["namespace"] = "other"
    await cluster.create(other)
    assert (await pending_all).body["metadata"]["name"] == "in-test"
    assert (await anext(everywhere)).body["metadata"]["name"] == "in-other"
    assert (await pending_other).body["metadata"]["name"] == "in-other"


async def test_watch_events_are_copies() -> None:
    cluster = InMemoryCluster()
    await cluster.create(configmap())
    stream = cluster.watch(CONFIGMAP, NS)
    event = await anext(stream)
    event.body["data"]["a"] = "mutated"
    assert (await cluster.get(CM))["data"] == {"a": "1"}  # type: ignore[index]


async def test_simulated_controller_makes_deployments_ready_at_once() -> None:
    cluster = InMemoryCluster(now=lambda: NOW)
    created = await cluster.create(deployment(replicas=3))
    assert "status" not in created  # what the API server answers; the controller comes after
    stored = await cluster.get(dep_ref())
    assert stored is not None
    status = stored["status"]
    assert status["observedGeneration"] == stored["metadata"]["generation"] == 1
    assert status["replicas"] == status["updatedReplicas"] == status["availableReplicas"] == 3
    progressing = {c["type"]: c for c in status["conditions"]}["Progressing"]
    assert progressing["reason"] == "NewReplicaSetAvailable"
    scaled = await cluster.patch(dep_ref(), {"spec": {"replicas": 0}})
    assert scaled["metadata"]["generation"] == 2
    stored = await cluster.get(dep_ref())
    assert stored is not None
    assert stored["status"]["observedGeneration"] == 2 and stored["status"]["readyReplicas"] == 0


async def test_held_readiness_survives_spec_writes_until_released() -> None:
    cluster = InMemoryCluster()
    stuck = {"observedGeneration": 1, "conditions": [{"type": "Progressing", "reason": "X"}]}
    cluster.hold_readiness(dep_ref(), stuck)  # may be placed before the Deployment exists
    await cluster.create(deployment())
    assert cluster.peek(dep_ref())["status"] == stuck  # type: ignore[index]
    await cluster.patch(dep_ref(), {"spec": {"replicas": 5}})
    assert cluster.peek(dep_ref())["status"] == stuck  # type: ignore[index]
    cluster.release(dep_ref())
    status = cluster.peek(dep_ref())["status"]  # type: ignore[index]
    assert status["observedGeneration"] == 2 and status["availableReplicas"] == 5


async def test_events_for_matches_the_involved_object() -> None:
    cluster = InMemoryCluster()
    for name, target in (("e1", "podinfo"), ("e2", "other"), ("e3", "podinfo")):
        await cluster.create(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": NS},
                "involvedObject": {"kind": "Canary", "name": target, "namespace": NS},
                "message": name,
            }
        )
    assert [e["message"] for e in cluster.events_for(NS, "podinfo")] == ["e1", "e3"]
    assert cluster.events_for("elsewhere", "podinfo") == []


async def test_generate_name_gives_unique_names() -> None:
    cluster = InMemoryCluster()
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": "podinfo.", "namespace": NS},
    }
    first = await cluster.create(body)
    second = await cluster.create(body)
    assert first["metadata"]["name"].startswith("podinfo.")
    assert first["metadata"]["name"] != second["metadata"]["name"]
    assert len(await cluster.list(EVENT, NS)) == 2


async def test_calls_count_requests_per_verb_but_not_helpers() -> None:
    cluster = InMemoryCluster()
    cluster.seed(deployment())
    cluster.peek(dep_ref())
    assert sum(cluster.calls.values()) == 0
    await cluster.get(dep_ref())
    await cluster.list(DEPLOYMENT, NS)
    await cluster.patch(dep_ref(), {"spec": {"replicas": 1}})
    await cluster.patch(dep_ref(), {"status": {"replicas": 1}}, status=True)
    await cluster.create(configmap())
    await cluster.delete(CM)
    assert dict(cluster.calls) == {
        "get": 1,
        "list": 1,
        "patch": 1,
        "patch_status": 1,
        "create": 1,
        "delete": 1,
    }


async def test_seed_keeps_a_given_status_and_fills_a_missing_one() -> None:
    cluster = InMemoryCluster()
    given = deployment("given")
    given["status"] = {"observedGeneration": 0}
    cluster.seed(given, deployment("filled"))
    assert cluster.peek(dep_ref("given"))["status"] == {"observedGeneration": 0}  # type: ignore[index]
    assert cluster.peek(dep_ref("filled"))["status"]["availableReplicas"] == 2  # type: ignore[index]
