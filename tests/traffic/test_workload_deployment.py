"""DeploymentWorkload: primary bootstrap, promotion, config tracking, scaling and readiness."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from traffic_testkit import (
    NOW,
    NS,
    UID,
    canary_body,
    deadline_status,
    dep_ref,
    deployment,
    make_canary,
)

from config import parse_canary
from traffic import (
    APEX_LABEL,
    DeploymentWorkload,
    Workload,
    WorkloadError,
    config_checksum,
)
from traffic.cluster import CONFIGMAP, HPA, SECRET, Body, InMemoryCluster, ObjectRef

PRIMARY = dep_ref("podinfo-primary")


def configmap(name: str, data: dict[str, str], **annotations: str) -> Body:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NS, "annotations": annotations},
        "data": data,
    }


def secret(name: str, data: dict[str, str], type_: str = "Opaque") -> Body:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "type": type_,
        "data": data,
    }


def configured_pod_spec(image: str = "podinfo:1") -> dict[str, Any]:
    """A pod spec referencing configs every way Flagger tracks them."""
    return {
        "initContainers": [
            {
                "name": "init",
                "image": "busybox",
                "envFrom": [{"configMapRef": {"name": "init-env"}}],
            }
        ],
        "containers": [
            {
                "name": "podinfod",
                "image": image,
                "env": [
                    {
                        "name": "TOKEN",
                        "valueFrom": {"secretKeyRef": {"name": "token", "key": "t"}},
                    },
                    {
                        "name": "MAYBE",
                        "valueFrom": {
                            "configMapKeyRef": {"name": "absent", "key": "k", "optional": True}
                        },
                    },
                ],
            }
        ],
        "volumes": [
            {"name": "config", "configMap": {"name": "app-config"}},
            {
                "name": "bundle",
                "projected": {"sources": [{"secret": {"name": "tls-bundle"}}]},
            },
        ],
    }


def seeded(*extra: Body, **dep: Any) -> InMemoryCluster:
    cluster = InMemoryCluster(now=lambda: NOW)
    cluster.seed(deployment(**dep), *extra)
    return cluster


def configured_cluster(image: str = "podinfo:1") -> InMemoryCluster:
    return seeded(
        configmap("app-config", {"color": "blue"}),
        configmap("init-env", {"MODE": "x"}),
        secret("token", {"t": "c2VjcmV0"}),
        secret("tls-bundle", {"tls.crt": "Y2VydA=="}, "kubernetes.io/tls"),
        pod_spec=configured_pod_spec(image),
    )


def writes(cluster: InMemoryCluster) -> int:
    return sum(cluster.calls[v] for v in ("create", "patch", "patch_status", "delete"))


def test_deployment_workload_satisfies_the_workload_protocol() -> None:
    workload: Workload = DeploymentWorkload(InMemoryCluster())
    assert isinstance(workload, DeploymentWorkload)


# --------------------------------------------------------------------------- selector label


async def test_selector_label_is_the_first_candidate_in_match_labels() -> None:
    cluster = seeded(selector={"name": "podinfo", "app.kubernetes.io/name": "pi"})
    assert await DeploymentWorkload(cluster).selector_label(make_canary()) == ("name", "podinfo")


async def test_selector_without_a_candidate_label_gives_flaggers_message() -> None:
    cluster = seeded(selector={"component": "podinfo"})
    with pytest.raises(WorkloadError) as err:
        await DeploymentWorkload(cluster).selector_label(make_canary())
    assert str(err.value) == (
        "deployment podinfo.test spec.selector.matchLabels must contain one of "
        "[app name app.kubernetes.io/name]"
    )


async def test_a_selector_label_value_too_long_for_the_primary_is_refused_before_writing() -> None:
    # The primary selects "<value>-primary": a 56-character value makes a 64-character label
    # value, which the API server refuses on every write of the primary and its Service.
    cluster = seeded(selector={"app": "p" * 56})
    workload = DeploymentWorkload(cluster)
    with pytest.raises(WorkloadError) as err:
        await workload.initialize(make_canary())
    assert str(err.value) == (
        f"deployment podinfo.test spec.selector.matchLabels app is 56 characters: the primary's "
        f"app={'p' * 56}-primary would be 64, and a Kubernetes label value has at most 63; "
        "shorten it to at most 55 characters"
    )
    assert writes(cluster) == 0
    fits = seeded(selector={"app": "p" * 55})
    assert await DeploymentWorkload(fits).selector_label(make_canary()) == ("app", "p" * 55)


async def test_a_missing_target_names_the_deployment_and_namespace() -> None:
    workload = DeploymentWorkload(InMemoryCluster())
    for call in (workload.revision, workload.initialize, workload.promote):
        with pytest.raises(WorkloadError, match=r"deployment podinfo\.test not found"):
            await call(make_canary())


# --------------------------------------------------------------------------- bootstrap


async def test_initialize_creates_the_primary_from_the_target() -> None:
    cluster = seeded(
        labels={"team": "web", "kustomize.toolkit.fluxcd.io/name": "apps"},
        annotations={"owner": "me", "kustomize.toolkit.fluxcd.io/checksum": "x"},
        pod_annotations={"prometheus.io/scrape": "true", "helm.toolkit.fluxcd.io/rev": "3"},
        replicas=3,
    )
    workload = DeploymentWorkload(cluster, include_label_prefixes=("team",))
    await workload.initialize(make_canary())
    primary = cluster.peek(PRIMARY)
    assert primary is not None
    meta, spec = primary["metadata"], primary["spec"]
    assert meta["labels"] == {"team": "web", "app": "podinfo-primary"}
    assert meta["annotations"] == {"owner": "me"}
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "name": "podinfo",
            "uid": UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert spec["replicas"] == 3
    assert spec["selector"] == {"matchLabels": {"app": "podinfo-primary"}}
    assert spec["strategy"] == {"type": "RollingUpdate"}
    template = spec["template"]
    assert template["metadata"]["labels"] == {"app": "podinfo-primary"}
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert "helm.toolkit.fluxcd.io/rev" not in annotations
    assert "flagger-id" in annotations
    assert template["spec"]["containers"][0]["image"] == "ghcr.io/stefanprodan/podinfo:6.0.0"


async def test_the_primary_pods_carry_no_flux_label() -> None:
    """Flagger's makePrimaryLabels leaves Flux's ``*.toolkit.fluxcd.io`` labels out of the
    primary's pod template as well (Flux would take the primary's pods for its own)."""
    target = deployment()
    target["spec"]["template"]["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] = "apps"
    cluster = InMemoryCluster(now=lambda: NOW)
    cluster.seed(target)
    workload = DeploymentWorkload(cluster)
    await workload.initialize(make_canary())
    primary = cluster.peek(PRIMARY)
    assert primary is not None
    assert primary["spec"]["template"]["metadata"]["labels"] == {"app": "podinfo-primary"}
    await workload.promote(make_canary())
    primary = cluster.peek(PRIMARY)
    assert primary is not None
    assert primary["spec"]["template"]["metadata"]["labels"] == {"app": "podinfo-primary"}


async def test_initialize_is_create_only() -> None:
    cluster = seeded()
    workload = DeploymentWorkload(cluster)
    await workload.initialize(make_canary())
    first = cluster.peek(PRIMARY)
    await cluster.patch(
        dep_ref(),
        {"spec": {"template": {"spec": {"containers": [{"name": "podinfod", "image": "v2"}]}}}},
    )
    await workload.initialize(make_canary())
    assert cluster.peek(PRIMARY) == first


async def test_a_target_at_zero_replicas_bootstraps_a_primary_with_one() -> None:
    cluster = seeded(replicas=0)
    await DeploymentWorkload(cluster).initialize(make_canary())
    assert cluster.peek(PRIMARY)["spec"]["replicas"] == 1  # type: ignore[index]


async def test_initialize_copies_configs_and_points_the_primary_at_the_copies() -> None:
    cluster = configured_cluster()
    await DeploymentWorkload(cluster).initialize(make_canary())
    copy_ = cluster.peek(ObjectRef(CONFIGMAP, NS, "app-config-primary"))
    assert copy_ is not None and copy_["data"] == {"color": "blue"}
    assert copy_["metadata"]["ownerReferences"][0]["kind"] == "Canary"
    tls = cluster.peek(ObjectRef(SECRET, NS, "tls-bundle-primary"))
    assert tls is not None and tls["type"] == "kubernetes.io/tls"
    pod = cluster.peek(PRIMARY)["spec"]["template"]["spec"]  # type: ignore[index]
    assert pod["volumes"][0]["configMap"]["name"] == "app-config-primary"
    assert pod["volumes"][1]["projected"]["sources"][0]["secret"]["name"] == "tls-bundle-primary"
    env = pod["containers"][0]["env"]
    assert env[0]["valueFrom"]["secretKeyRef"]["name"] == "token-primary"
    assert env[1]["valueFrom"]["configMapKeyRef"]["name"] == "absent"  # untracked: left alone
    assert pod["initContainers"][0]["envFrom"][0]["configMapRef"]["name"] == "init-env-primary"


async def test_a_config_copy_shared_by_two_canaries_is_owned_by_both() -> None:
    # Flagger's TestConfigTracker_ConfigOwnerMultiDeployment: with one owner, deleting either
    # Canary would let the garbage collector delete a copy the other primary still mounts.
    cluster = configured_cluster()
    cluster.seed(deployment("podinfo2", pod_spec=configured_pod_spec()))
    first = make_canary()
    second_body = canary_body()
    second_body["metadata"].update(name="podinfo2", uid="uid-podinfo2")
    second_body["spec"]["targetRef"]["name"] = "podinfo2"
    second = parse_canary(second_body)
    workload = DeploymentWorkload(cluster)
    await workload.initialize(first)
    await workload.initialize(second)
    await workload.promote(second)  # a sync of an existing copy keeps both too
    for ref in (
        ObjectRef(CONFIGMAP, NS, "app-config-primary"),
        ObjectRef(SECRET, NS, "token-primary"),
    ):
        body = cluster.peek(ref)
        assert body is not None
        owners = [(o["name"], o["controller"]) for o in body["metadata"]["ownerReferences"]]
        assert owners == [("podinfo", True), ("podinfo2", False)]  # one controller at most


async def test_initialize_creates_the_primary_hpa_against_the_primary() -> None:
    hpa: Body = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "podinfo", "namespace": NS, "labels": {"app": "podinfo"}},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "minReplicas": 2,
            "maxReplicas": 4,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu"}}],
        },
    }
    cluster = seeded(hpa)
    canary = make_canary(
        autoscalerRef={
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "name": "podinfo",
            "primaryScalerReplicas": {"minReplicas": 3},
        }
    )
    await DeploymentWorkload(cluster).initialize(canary)
    primary_hpa = cluster.peek(ObjectRef(HPA, NS, "podinfo-primary"))
    assert primary_hpa is not None
    assert primary_hpa["spec"]["scaleTargetRef"]["name"] == "podinfo-primary"
    assert (primary_hpa["spec"]["minReplicas"], primary_hpa["spec"]["maxReplicas"]) == (3, 4)
    assert primary_hpa["spec"]["metrics"] == hpa["spec"]["metrics"]


# --------------------------------------------------------------------------- revision


async def test_revision_changes_with_the_template_but_not_with_the_apex_label() -> None:
    cluster = seeded()
    workload = DeploymentWorkload(cluster)
    before = await workload.revision(make_canary())
    await cluster.patch(
        dep_ref(), {"spec": {"template": {"metadata": {"labels": {APEX_LABEL: "podinfo"}}}}}
    )
    assert await workload.revision(make_canary()) == before
    await cluster.patch(dep_ref(), {"spec": {"replicas": 7}})
    assert await workload.revision(make_canary()) == before  # scaling is not a release
    await cluster.patch(
        dep_ref(), {"spec": {"template": {"metadata": {"annotations": {"restart": "1"}}}}}
    )
    assert (await workload.revision(make_canary())).spec_hash != before.spec_hash


async def test_config_checksums_are_flaggers() -> None:
    cluster = configured_cluster()
    revision = await DeploymentWorkload(cluster).revision(make_canary())
    expected = hashlib.sha256(b'{"color":"blue"}').digest()[:8].hex()
    assert revision.configs == {
        "configmap/app-config": expected,
        "configmap/init-env": config_checksum({"MODE": "x"}),
        "secret/token": config_checksum({"t": "c2VjcmV0"}),
        "secret/tls-bundle": config_checksum({"tls.crt": "Y2VydA=="}),
    }


def test_config_checksum_escapes_like_go_json() -> None:
    go_json = '{"a":"\\u003cb\\u003e \\u0026 é","z":"1"}'.encode()
    assert config_checksum({"z": "1", "a": "<b> & é"}) == hashlib.sha256(go_json).digest()[:8].hex()
    assert len(config_checksum(None)) == 16


async def test_a_config_change_is_a_new_revision() -> None:
    cluster = configured_cluster()
    workload = DeploymentWorkload(cluster)
    before = await workload.revision(make_canary())
    await cluster.patch(ObjectRef(CONFIGMAP, NS, "app-config"), {"data": {"color": "green"}})
    after = await workload.revision(make_canary())
    assert after.spec_hash == before.spec_hash
    assert after.configs["configmap/app-config"] != before.configs["configmap/app-config"]


async def test_untracked_configs_are_skipped() -> None:
    pod_spec = {
        "containers": [
            {
                "name": "c",
                "image": "x",
                "envFrom": [
                    {"configMapRef": {"name": "opted-out"}},
                    {"secretRef": {"name": "registry"}},
                    {"configMapRef": {"name": "not-there", "optional": True}},
                ],
            }
        ]
    }
    cluster = seeded(
        configmap("opted-out", {"a": "1"}, **{"flagger.app/config-tracking": "disabled"}),
        secret("registry", {".dockerconfigjson": "e30="}, "kubernetes.io/dockerconfigjson"),
        pod_spec=pod_spec,
    )
    assert (await DeploymentWorkload(cluster).revision(make_canary())).configs == {}


async def test_a_missing_required_config_names_it() -> None:
    pod_spec = {
        "containers": [{"name": "c", "image": "x", "envFrom": [{"configMapRef": {"name": "gone"}}]}]
    }
    cluster = seeded(pod_spec=pod_spec)
    with pytest.raises(WorkloadError, match=r"configmap gone\.test not found"):
        await DeploymentWorkload(cluster).revision(make_canary())


async def test_config_tracking_can_be_switched_off() -> None:
    cluster = configured_cluster()
    workload = DeploymentWorkload(cluster, config_tracking=False)
    assert (await workload.revision(make_canary())).configs == {}
    await workload.initialize(make_canary())
    assert cluster.peek(ObjectRef(CONFIGMAP, NS, "app-config-primary")) is None
    pod = cluster.peek(PRIMARY)["spec"]["template"]["spec"]  # type: ignore[index]
    assert pod["volumes"][0]["configMap"]["name"] == "app-config"


# --------------------------------------------------------------------------- promotion


async def test_promote_copies_the_new_image_and_config_to_the_primary() -> None:
    cluster = configured_cluster("podinfo:1")
    workload = DeploymentWorkload(cluster)
    canary = make_canary()
    await workload.initialize(canary)
    old = cluster.peek(PRIMARY)
    assert old is not None
    old_id = old["spec"]["template"]["metadata"]["annotations"]["flagger-id"]
    containers = configured_pod_spec("podinfo:2")["containers"]
    await cluster.patch(dep_ref(), {"spec": {"template": {"spec": {"containers": containers}}}})
    await cluster.patch(ObjectRef(CONFIGMAP, NS, "app-config"), {"data": {"color": "green"}})
    await workload.promote(canary)
    primary = cluster.peek(PRIMARY)
    assert primary is not None
    pod = primary["spec"]["template"]
    assert pod["spec"]["containers"][0]["image"] == "podinfo:2"
    assert pod["spec"]["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"]["name"] == (
        "token-primary"
    )
    assert pod["metadata"]["labels"]["app"] == "podinfo-primary"
    assert pod["metadata"]["annotations"]["flagger-id"] != old_id
    assert primary["spec"]["selector"] == {"matchLabels": {"app": "podinfo-primary"}}
    copy_ = cluster.peek(ObjectRef(CONFIGMAP, NS, "app-config-primary"))
    assert copy_ is not None and copy_["data"] == {"color": "green"}


async def test_primary_runs_tells_the_revision_the_primary_was_given() -> None:
    # the Promoting phase asks it: a promotion whose copy was never made (engine.core.machine)
    cluster = configured_cluster("podinfo:1")
    workload = DeploymentWorkload(cluster)
    canary = make_canary()
    assert await workload.primary_runs(canary, await workload.revision(canary)) is None
    await workload.initialize(canary)
    first = await workload.revision(canary)
    assert await workload.primary_runs(canary, first) is True
    await cluster.patch(ObjectRef(CONFIGMAP, NS, "app-config"), {"data": {"color": "green"}})
    second = await workload.revision(canary)  # a config-only release
    assert await workload.primary_runs(canary, second) is False
    await workload.promote(canary)
    assert await workload.primary_runs(canary, second) is True
    assert await workload.primary_runs(canary, first) is False


async def test_promote_makes_the_primarys_labels_and_annotations_the_targets() -> None:
    # Flagger's Promote replaces the primary's metadata labels and annotations with the target's
    # (filtered by -include-label-prefix), so a label dropped from the target leaves the primary
    # too; the annotations the Deployment controller writes stay.
    cluster = seeded(labels={"team": "web", "tier": "1"}, annotations={"team/owner": "me"})
    workload = DeploymentWorkload(cluster, include_label_prefixes=("team",))
    canary = make_canary()
    await workload.initialize(canary)
    await cluster.patch(
        PRIMARY, {"metadata": {"annotations": {"deployment.kubernetes.io/revision": "4"}}}
    )
    await cluster.patch(
        dep_ref(),
        {
            "metadata": {
                "labels": {"team": None, "team-b": "api"},
                "annotations": {"team/owner": "you", "other": "x"},
            },
            "spec": {"template": {"metadata": {"labels": {"v": "2"}}}},
        },
    )
    await workload.promote(canary)
    meta = cluster.peek(PRIMARY)["metadata"]  # type: ignore[index]
    assert meta["labels"] == {"team-b": "api", "app": "podinfo-primary"}
    assert meta["annotations"] == {
        "team/owner": "you",
        "deployment.kubernetes.io/revision": "4",
    }


async def test_promote_without_include_prefixes_keeps_only_the_selector_label() -> None:
    # Flagger's default -include-label-prefix copies nothing at promotion: the annotations copied
    # when the primary was created are dropped, and the selector label is all that remains.
    cluster = seeded(labels={"team": "web"}, annotations={"owner": "me"})
    workload = DeploymentWorkload(cluster)
    canary = make_canary()
    await workload.initialize(canary)
    assert cluster.peek(PRIMARY)["metadata"]["annotations"] == {"owner": "me"}  # type: ignore[index]
    await cluster.patch(dep_ref(), {"spec": {"template": {"metadata": {"labels": {"v": "2"}}}}})
    await workload.promote(canary)
    meta = cluster.peek(PRIMARY)["metadata"]  # type: ignore[index]
    assert meta["labels"] == {"app": "podinfo-primary"}
    assert "annotations" not in meta or not meta["annotations"]


async def test_promoting_the_same_revision_twice_writes_nothing() -> None:
    cluster = configured_cluster()
    workload = DeploymentWorkload(cluster)
    canary = make_canary()
    await workload.initialize(canary)
    await cluster.patch(dep_ref(), {"spec": {"template": {"metadata": {"labels": {"v": "2"}}}}})
    await workload.promote(canary)
    generation = cluster.peek(PRIMARY)["metadata"]["generation"]  # type: ignore[index]
    before = writes(cluster)
    await workload.promote(canary)
    assert writes(cluster) == before
    assert cluster.peek(PRIMARY)["metadata"]["generation"] == generation  # type: ignore[index]


async def test_promoting_the_bootstrapped_revision_is_a_no_op() -> None:
    cluster = configured_cluster()
    workload = DeploymentWorkload(cluster)
    await workload.initialize(make_canary())
    before = writes(cluster)
    await workload.promote(make_canary())
    assert writes(cluster) == before


async def test_a_config_only_release_still_rolls_the_primary() -> None:
    cluster = configured_cluster()
    workload = DeploymentWorkload(cluster)
    await workload.initialize(make_canary())
    template = cluster.peek(PRIMARY)["spec"]["template"]  # type: ignore[index]
    await cluster.patch(ObjectRef(CONFIGMAP, NS, "app-config"), {"data": {"color": "red"}})
    await workload.promote(make_canary())
    after = cluster.peek(PRIMARY)["spec"]["template"]  # type: ignore[index]
    assert after["spec"] == template["spec"]
    assert (
        after["metadata"]["annotations"]["flagger-id"]
        != (template["metadata"]["annotations"]["flagger-id"])
    )


async def test_promote_copies_replicas_only_without_an_autoscaler() -> None:
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {"scaleTargetRef": {"name": "podinfo"}, "minReplicas": 2, "maxReplicas": 4},
    }
    for autoscaled in (False, True):
        cluster = seeded(hpa, replicas=2)
        spec: dict[str, Any] = {}
        if autoscaled:
            spec["autoscalerRef"] = {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "name": "podinfo",
            }
        canary = make_canary(**spec)
        workload = DeploymentWorkload(cluster)
        await workload.initialize(canary)
        await cluster.patch(dep_ref(), {"spec": {"replicas": 5}})
        await cluster.patch(ObjectRef(HPA, NS, "podinfo"), {"spec": {"maxReplicas": 9}})
        await workload.promote(canary)
        replicas = cluster.peek(PRIMARY)["spec"]["replicas"]  # type: ignore[index]
        assert replicas == (2 if autoscaled else 5)
        if autoscaled:
            primary_hpa = cluster.peek(ObjectRef(HPA, NS, "podinfo-primary"))
            assert primary_hpa is not None and primary_hpa["spec"]["maxReplicas"] == 9


async def test_promote_without_a_primary_asks_for_initialization() -> None:
    cluster = seeded()
    with pytest.raises(WorkloadError, match=r"podinfo-primary\.test not found"):
        await DeploymentWorkload(cluster).promote(make_canary())


async def test_anti_affinity_on_the_target_name_points_at_the_primary() -> None:
    pod_spec = {
        "containers": [{"name": "c", "image": "x"}],
        "topologySpreadConstraints": [
            {"maxSkew": 1, "labelSelector": {"matchLabels": {"app": "podinfo"}}}
        ],
        "affinity": {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {
                            "matchExpressions": [
                                {"key": "app", "operator": "In", "values": ["podinfo"]}
                            ]
                        }
                    }
                ]
            }
        },
    }
    cluster = seeded(pod_spec=pod_spec)
    await DeploymentWorkload(cluster).initialize(make_canary())
    spec = cluster.peek(PRIMARY)["spec"]["template"]["spec"]  # type: ignore[index]
    assert spec["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"] == {
        "app": "podinfo-primary"
    }
    term = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term[0]["labelSelector"]["matchExpressions"][0]["values"] == ["podinfo-primary"]


# --------------------------------------------------------------------------- scaling


async def test_scale_to_zero_and_back_to_the_declared_replicas() -> None:
    cluster = seeded(replicas=3)
    workload = DeploymentWorkload(cluster)
    canary = make_canary()
    await workload.initialize(canary)
    await workload.scale_to_zero(canary)
    assert cluster.peek(dep_ref())["spec"]["replicas"] == 0  # type: ignore[index]
    await workload.scale_from_zero(canary)  # the target says 0: take the primary's
    assert cluster.peek(dep_ref())["spec"]["replicas"] == 3  # type: ignore[index]
    await cluster.patch(dep_ref(), {"spec": {"replicas": 5}})  # the user applied a new count
    await workload.scale_from_zero(canary)
    assert cluster.peek(dep_ref())["spec"]["replicas"] == 5  # type: ignore[index]


async def test_scale_from_zero_with_an_hpa_uses_its_minimum() -> None:
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {"scaleTargetRef": {"name": "podinfo"}, "minReplicas": 4, "maxReplicas": 8},
    }
    cluster = seeded(hpa, replicas=0)
    canary = make_canary(
        autoscalerRef={
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "name": "podinfo",
        }
    )
    await DeploymentWorkload(cluster).scale_from_zero(canary)
    assert cluster.peek(dep_ref())["spec"]["replicas"] == 4  # type: ignore[index]


async def test_finalize_gives_the_target_the_primarys_replicas() -> None:
    cluster = seeded(replicas=3)
    workload = DeploymentWorkload(cluster)
    await workload.initialize(make_canary())
    await workload.scale_to_zero(make_canary())
    await cluster.patch(PRIMARY, {"spec": {"replicas": 6}})
    await workload.finalize(make_canary())
    assert cluster.peek(dep_ref())["spec"]["replicas"] == 6  # type: ignore[index]


# --------------------------------------------------------------------------- readiness


async def test_ready_workloads_report_ready() -> None:
    cluster = seeded()
    workload = DeploymentWorkload(cluster)
    await workload.initialize(make_canary())
    for primary in (True, False):
        readiness = await workload.readiness(make_canary(), primary=primary, now=NOW)
        assert readiness.ready and readiness.retriable and readiness.message == ""


async def test_progress_deadline_exceeded_is_not_retriable() -> None:
    cluster = seeded()
    cluster.hold_readiness(PRIMARY, deadline_status("podinfo-primary"))
    workload = DeploymentWorkload(cluster)
    await workload.initialize(make_canary())
    readiness = await workload.readiness(make_canary(), primary=True, now=NOW)
    assert not readiness.ready and not readiness.retriable
    assert readiness.message == (
        'podinfo-primary.test not ready: deployment "podinfo-primary" exceeded its progress '
        "deadline"
    )


async def test_a_rollout_in_progress_is_retriable_with_flaggers_messages() -> None:
    cluster = seeded()
    workload = DeploymentWorkload(cluster)
    cluster.hold_readiness(dep_ref(), {"observedGeneration": 0})
    readiness = await workload.readiness(make_canary(), primary=False, now=NOW)
    assert (readiness.ready, readiness.retriable) == (False, True)
    assert readiness.message == (
        "canary deployment podinfo.test not ready: waiting for rollout to finish: observed "
        "deployment generation less than desired generation"
    )
    cluster.hold_readiness(dep_ref(), {"observedGeneration": 1, "updatedReplicas": 1})
    readiness = await workload.readiness(make_canary(), primary=False, now=NOW)
    assert readiness.message.endswith("1 out of 2 new replicas have been updated")
    cluster.hold_readiness(
        dep_ref(), {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 2}
    )
    readiness = await workload.readiness(make_canary(), primary=False, now=NOW)
    assert readiness.message.endswith("1 old replicas are pending termination")


def stuck_status(available: int, updated: int, since: str) -> Body:
    return {
        "observedGeneration": 1,
        "replicas": updated,
        "updatedReplicas": updated,
        "availableReplicas": available,
        "conditions": [
            {
                "type": "Available",
                "status": "False",
                "reason": "MinimumReplicasUnavailable",
                "lastUpdateTime": since,
            },
            {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"},
        ],
    }


async def test_unavailable_past_the_progress_deadline_is_not_retriable() -> None:
    cluster = seeded()
    workload = DeploymentWorkload(cluster)
    canary = make_canary(progressDeadlineSeconds=60)
    cluster.hold_readiness(dep_ref(), stuck_status(0, 2, "2024-01-01T11:59:30Z"))
    early = await workload.readiness(canary, primary=False, now=NOW)
    assert (early.ready, early.retriable) == (False, True)
    late = await workload.readiness(canary, primary=False, now=NOW + timedelta(minutes=5))
    assert (late.ready, late.retriable) == (False, False)
    assert late.message.endswith("0 of 2 (readyThreshold 100%) updated replicas are available")


@pytest.mark.parametrize(
    ("threshold", "available", "ready"),
    [(None, 3, False), (None, 4, True), (50, 2, True), (50, 1, False), (75, 3, True)],
)
async def test_ready_threshold_is_a_percentage_of_updated_replicas(
    threshold: int | None, available: int, ready: bool
) -> None:
    cluster = seeded(replicas=4)
    analysis: dict[str, Any] = {"interval": "1m", "threshold": 5, "stepWeight": 10}
    if threshold is not None:
        analysis["canaryReadyThreshold"] = threshold
    status = {
        "observedGeneration": 1,
        "replicas": 4,
        "updatedReplicas": 4,
        "availableReplicas": available,
    }
    cluster.hold_readiness(dep_ref(), status)
    readiness = await DeploymentWorkload(cluster).readiness(
        make_canary(analysis=analysis), primary=False, now=NOW
    )
    assert readiness.ready is ready


async def test_the_ready_threshold_counts_replicas_in_float32_as_flagger() -> None:
    # Flagger's isDeploymentReady computes int32(float32(updated) * float32(threshold)/100): the
    # float32 product for 53 % of 100 updated replicas is 52.99..., so it asks 52 available, not
    # 53 (and says so in its message). Not TestDeploymentController_isDeploymentReady's case
    # (threshold 100 there), the same function.
    cluster = seeded(replicas=100)
    analysis: dict[str, Any] = {
        "interval": "1m",
        "threshold": 5,
        "stepWeight": 10,
        "canaryReadyThreshold": 53,
    }
    canary = make_canary(analysis=analysis)
    workload = DeploymentWorkload(cluster)
    status = {"observedGeneration": 1, "replicas": 100, "updatedReplicas": 100}
    cluster.hold_readiness(dep_ref(), {**status, "availableReplicas": 52})
    assert (await workload.readiness(canary, primary=False, now=NOW)).ready
    cluster.hold_readiness(dep_ref(), {**status, "availableReplicas": 51})
    readiness = await workload.readiness(canary, primary=False, now=NOW)
    assert readiness.message == (
        "canary deployment podinfo.test not ready: waiting for rollout to finish: 51 of 52 "
        "(readyThreshold 53%) updated replicas are available"
    )


async def test_a_primary_scaled_to_zero_is_not_ready_q12() -> None:
    cluster = seeded()
    workload = DeploymentWorkload(cluster)
    await workload.initialize(make_canary())
    await cluster.patch(PRIMARY, {"spec": {"replicas": 0}})
    readiness = await workload.readiness(make_canary(), primary=True, now=NOW)
    assert (readiness.ready, readiness.retriable) == (False, True)
    assert (
        readiness.message == "halt podinfo.test advancement: primary deployment is scaled to zero"
    )
    await workload.scale_to_zero(make_canary())  # an idle canary at zero is fine
    assert (await workload.readiness(make_canary(), primary=False, now=NOW)).ready


async def test_readiness_of_a_missing_primary_is_a_retriable_wait() -> None:
    readiness = await DeploymentWorkload(seeded()).readiness(make_canary(), primary=True, now=NOW)
    assert (readiness.ready, readiness.retriable) == (False, True)
    assert "podinfo-primary.test not found" in readiness.message
