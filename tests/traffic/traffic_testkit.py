"""Builders for the traffic tests: Flagger-style Canary manifests and Deployments as JSON bodies."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from config import Canary, parse_canary
from traffic.cluster import DEPLOYMENT, SERVICE, Body, ObjectRef

NS = "test"
NOW = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
UID = "4f1c2a7e-0000-4000-8000-000000000001"


def deployment(
    name: str = "podinfo",
    *,
    replicas: int | None = 2,
    image: str = "ghcr.io/stefanprodan/podinfo:6.0.0",
    selector: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    pod_annotations: dict[str, str] | None = None,
    pod_spec: dict[str, Any] | None = None,
    namespace: str = NS,
) -> Body:
    """A Deployment like podinfo's: ``app: <name>`` selector, one container on port 9898."""
    match = selector if selector is not None else {"app": name}
    spec: Body = {
        "selector": {"matchLabels": dict(match)},
        "strategy": {"type": "RollingUpdate"},
        "template": {
            "metadata": {
                "labels": dict(match),
                "annotations": dict(pod_annotations or {"prometheus.io/scrape": "true"}),
            },
            "spec": pod_spec
            if pod_spec is not None
            else {
                "containers": [
                    {
                        "name": "podinfod",
                        "image": image,
                        "ports": [
                            {"name": "http", "containerPort": 9898},
                            {"name": "http-metrics", "containerPort": 9797},
                        ],
                    }
                ]
            },
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    meta: Body = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}


def canary_body(
    *,
    provider: str = "kubernetes",
    analysis: dict[str, Any] | None = None,
    service: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    **spec: Any,
) -> Body:
    body: Body = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": NS, "uid": UID},
        "spec": {
            "provider": provider,
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": service if service is not None else {"port": 9898},
            "analysis": analysis
            if analysis is not None
            else {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10},
            **spec,
        },
    }
    if status is not None:
        body["status"] = status
    return body


def make_canary(**kwargs: Any) -> Canary:
    """A validated Canary (config's semantic checks included)."""
    return parse_canary(canary_body(**kwargs))


def raw_canary(**kwargs: Any) -> Canary:
    """A Canary that skips config's semantic checks, to test the traffic layer's own guards."""
    return Canary.model_validate(canary_body(**kwargs))


def dep_ref(name: str = "podinfo") -> ObjectRef:
    return ObjectRef(DEPLOYMENT, NS, name)


def svc_ref(name: str = "podinfo") -> ObjectRef:
    return ObjectRef(SERVICE, NS, name)


def deadline_status(name: str, *, generation: int = 1) -> Body:
    """A Deployment status as the controller writes it after ProgressDeadlineExceeded."""
    return {
        "observedGeneration": generation,
        "replicas": 2,
        "updatedReplicas": 2,
        "readyReplicas": 0,
        "availableReplicas": 0,
        "conditions": [
            {
                "type": "Available",
                "status": "False",
                "reason": "MinimumReplicasUnavailable",
                "lastUpdateTime": "2024-01-01T11:00:00Z",
            },
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": f'ReplicaSet "{name}-abc" has timed out progressing.',
                "lastUpdateTime": "2024-01-01T11:10:00Z",
            },
        ],
    }


def copy_body(body: Body) -> Body:
    return copy.deepcopy(body)


def with_route_cookies(canary: Canary, canary_weight: int) -> Canary:
    """``canary`` with the session-affinity status the engine writes after routing
    ``canary_weight`` (``status_cookies``), as the next tick reads it back: the router picks the
    cookie to expire from it, as Flagger's routers read ``canary.Status``."""
    from traffic._session_affinity import status_cookies

    status = dict(canary.status or {})
    return canary.model_copy(update={"status": status_cookies(canary, canary_weight, status)})
