"""Ports of Flagger's pkg/canary/config_tracker_test.go cases no other test pins: a ConfigMap or
Secret annotated ``flagger.app/config-tracking: disable...`` gets no ``-primary`` copy and the
primary keeps mounting the original, only that annotation key opts out, and a copy carries the
source's ``binaryData``; for Deployment and DaemonSet targets alike."""

from __future__ import annotations

from typing import Any

import pytest
from traffic_testkit import NS, canary_body, deployment

from config import parse_canary
from traffic import DAEMONSET, DEPLOYMENT, TargetWorkload
from traffic.cluster import CONFIGMAP, SECRET, Body, InMemoryCluster, ObjectRef


def _config(kind: str, name: str, annotations: dict[str, str]) -> Body:
    body: Body = {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": NS, "annotations": annotations},
        "data": {"color": "Ymx1ZQ==" if kind == "Secret" else "blue"},
    }
    if kind == "Secret":
        body["type"] = "Opaque"
    else:
        body["binaryData"] = {"color_binary": "Ymx1ZQ=="}
    return body


def _pod_spec() -> dict[str, Any]:
    return {
        "containers": [{"name": "podinfod", "image": "podinfo:1"}],
        "volumes": [
            {"name": "a", "configMap": {"name": "cm-tracker-enabled"}},
            {"name": "b", "configMap": {"name": "cm-tracker-disabled"}},
            {"name": "c", "configMap": {"name": "cm-other-annotation"}},
            {"name": "d", "secret": {"secretName": "secret-tracker-enabled"}},
            {"name": "e", "secret": {"secretName": "secret-tracker-disabled"}},
        ],
    }


@pytest.mark.parametrize("kind", ["Deployment", "DaemonSet"])
async def test_configs_opted_out_of_tracking_are_mounted_as_they_are(kind: str) -> None:
    # TestConfigTracker_ConfigMaps / _Secrets ("deployment" and "daemonset") and
    # TestConfigIsDisabled: the value "disable" (a prefix of "disabled") opts out, the same
    # value under another key does not
    target = deployment(replicas=None if kind == "DaemonSet" else 2, pod_spec=_pod_spec())
    if kind == "DaemonSet":
        target["kind"] = "DaemonSet"
        target["spec"].pop("strategy")
    off = {"flagger.app/config-tracking": "disable"}
    cluster = InMemoryCluster()
    cluster.seed(
        target,
        _config("ConfigMap", "cm-tracker-enabled", {}),
        _config("ConfigMap", "cm-tracker-disabled", off),
        _config("ConfigMap", "cm-other-annotation", {"app": "disable"}),
        _config("Secret", "secret-tracker-enabled", {}),
        _config("Secret", "secret-tracker-disabled", off),
    )
    body = canary_body(analysis={"interval": "1m", "threshold": 5, "iterations": 2})
    body["spec"]["targetRef"]["kind"] = kind
    await TargetWorkload(cluster).initialize(parse_canary(body))

    def copy_of(ref_kind: Any, name: str) -> Body | None:
        return cluster.peek(ObjectRef(ref_kind, NS, f"{name}-primary"))

    tracked = copy_of(CONFIGMAP, "cm-tracker-enabled")
    assert tracked is not None
    assert tracked["data"] == {"color": "blue"}
    assert tracked["binaryData"] == {"color_binary": "Ymx1ZQ=="}
    assert copy_of(CONFIGMAP, "cm-other-annotation") is not None
    assert copy_of(SECRET, "secret-tracker-enabled") is not None
    assert copy_of(CONFIGMAP, "cm-tracker-disabled") is None
    assert copy_of(SECRET, "secret-tracker-disabled") is None
    primary = cluster.peek(
        ObjectRef(DAEMONSET if kind == "DaemonSet" else DEPLOYMENT, NS, "podinfo-primary")
    )
    assert primary is not None
    volumes = primary["spec"]["template"]["spec"]["volumes"]
    assert [v.get("configMap", v.get("secret")) for v in volumes] == [
        {"name": "cm-tracker-enabled-primary"},
        {"name": "cm-tracker-disabled"},
        {"name": "cm-other-annotation-primary"},
        {"secretName": "secret-tracker-enabled-primary"},
        {"secretName": "secret-tracker-disabled"},
    ]
