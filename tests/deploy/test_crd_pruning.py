"""Everything the controller keeps in a Canary's status is declared by the CRD it installs, so a
real API server keeps it; and the test API server drops and refuses as a real one does.

A status field the CRD does not declare is pruned by the API server without a word to the client
(kubernetes-asyncio ignores the ``Warning`` header). The controller keeps all its state in the
status, so a missing declaration is lost progress on a real cluster, e.g. ``lastCommand``
pruned would have an operator's ``retry`` taken again at every tick.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from config import (
    AchievedWeights,
    CanaryStatus,
    CheckRecord,
    Condition,
    HandledCommand,
    LastAnalysis,
    Phase,
    WebhookRecord,
)
from tests.crd_schema import invalid_fields, prune, schema_for
from tests.kubeapi import FakeKubeApi, serve_kube_api
from traffic._session_affinity import (
    CANARY_COOKIE_FIELD,
    PREVIOUS_COOKIE_FIELD,
    PRIMARY_COOKIE_FIELD,
)

pytestmark = pytest.mark.timeout(30)

CANARIES = "/apis/flagger.app/v1beta1/namespaces/staging/canaries"
NOW = "2026-12-02T10:00:00Z"


def full_status() -> CanaryStatus:
    """A status with every field the controller writes set to something other than its default."""
    return CanaryStatus(
        phase=Phase.PROGRESSING,
        canary_weight=15,
        failed_checks=1,
        inconclusive_checks=2,
        iterations=3,
        last_applied_spec="5d8f7c",
        last_promoted_spec="7b9d4f",
        tracked_configs={"configmap/app-config": "abc123", "secret/app-secret": "def456"},
        last_transition_time=NOW,
        conditions=(
            Condition(
                status="Unknown",
                reason="Progressing",
                message="New revision detected, progressing canary analysis.",
                last_update_time=NOW,
                last_transition_time=NOW,
            ),
        ),
        paused_at=NOW,
        resumed_at=NOW,
        last_command=HandledCommand(id="c-1", command="pause", handled_at=NOW, outcome="paused"),
        last_analysis=LastAnalysis(
            time=NOW,
            checks=(
                CheckRecord(
                    metric="request-duration",
                    target="primary",
                    value=412.0,
                    min=1.0,
                    max=500.0,
                    verdict="fail",
                    explanation=(
                        "request-duration: canary 412 above the primary's 24h before the analysis"
                    ),
                    dry_run=True,
                ),
            ),
            webhooks=(WebhookRecord(name="load-test", type="rollout", ok=True, time=NOW),),
        ),
        achieved_weights=AchievedWeights(canary=17, primary=83),
        analysis_start_time=NOW,
        extra={
            CANARY_COOKIE_FIELD: "flagger-cookie=abc",
            PRIMARY_COOKIE_FIELD: "flagger-primary-cookie=def",
            PREVIOUS_COOKIE_FIELD: "flagger-cookie=old",
        },
    )


def test_the_sample_sets_every_status_field() -> None:
    """A field added to CanaryStatus must be added above, and so checked against the CRD."""
    status, default = full_status(), CanaryStatus()
    unset = [
        f.name
        for f in dataclasses.fields(CanaryStatus)
        if getattr(status, f.name) == getattr(default, f.name)
    ]
    assert unset == []
    nested = {
        "lastCommand": HandledCommand,
        "lastAnalysis.checks[]": CheckRecord,
        "lastAnalysis.webhooks[]": WebhookRecord,
    }
    samples: dict[str, Any] = {
        "lastCommand": status.last_command,
        "lastAnalysis.checks[]": status.last_analysis.checks[0],  # type: ignore[union-attr]
        "lastAnalysis.webhooks[]": status.last_analysis.webhooks[0],  # type: ignore[union-attr]
    }
    for where, cls in nested.items():
        blank = [
            f.name
            for f in dataclasses.fields(cls)
            if f.default is not dataclasses.MISSING and getattr(samples[where], f.name) == f.default
        ]
        assert blank == [], where


def test_every_status_field_the_controller_writes_is_kept_by_the_crd() -> None:
    schema = schema_for("flagger.app", "canaries")
    assert schema is not None
    body = full_status().to_body()
    kept = copy.deepcopy(body)
    assert list(prune(schema["properties"]["status"], kept, "status")) == []
    assert kept == body
    assert invalid_fields("canaries", {"status": body}, ("status",)) == []


# ---------------------------------------------------------------------------------------------
# The test API server holds flagger.app writes to the CRD, as a real one does
# ---------------------------------------------------------------------------------------------


def canary() -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "staging"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 80},
            "analysis": {"interval": "1m", "threshold": 2, "stepWeight": 10, "maxWeight": 50},
        },
    }


@pytest.fixture
async def api() -> AsyncIterator[FakeKubeApi]:
    async with serve_kube_api() as server:
        yield server


async def call(api: FakeKubeApi, method: str, path: str, body: Any) -> tuple[int, Any]:
    headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}
    async with (
        aiohttp.ClientSession(api.url) as http,
        http.request(method, path, data=json.dumps(body), headers=headers) as answer,
    ):
        return answer.status, await answer.json()


async def test_a_status_field_the_crd_does_not_declare_is_dropped(api: FakeKubeApi) -> None:
    assert (await call(api, "POST", CANARIES, canary()))[0] == 201
    status = {"status": {"phase": "Progressing", "canaryWeight": 10, "madeUp": {"a": 1}}}
    code, answer = await call(api, "PATCH", f"{CANARIES}/podinfo/status", status)
    assert code == 200
    assert answer["status"] == {"phase": "Progressing", "canaryWeight": 10}
    assert api.pruned == ["canaries/staging/podinfo: status.madeUp"]


async def test_a_spec_field_the_crd_does_not_declare_is_dropped(api: FakeKubeApi) -> None:
    body = canary()
    body["spec"]["analysis"]["stepweight"] = 5  # a typo kubectl apply would send
    code, answer = await call(api, "POST", CANARIES, body)
    assert code == 201
    assert "stepweight" not in answer["spec"]["analysis"]
    assert api.pruned == ["canaries/staging/?: spec.analysis.stepweight"]


async def test_unknown_top_level_and_metadata_fields_are_dropped(api: FakeKubeApi) -> None:
    body = canary()
    body["spc"] = {"x": 1}
    body["metadata"]["labelz"] = {"a": "b"}
    code, answer = await call(api, "POST", CANARIES, body)
    assert code == 201
    assert "spc" not in answer and "labelz" not in answer["metadata"]
    assert sorted(api.pruned) == [
        "canaries/staging/?: metadata.labelz",
        "canaries/staging/?: spc",
    ]


async def test_a_value_the_crd_refuses_is_422_naming_the_field(api: FakeKubeApi) -> None:
    assert (await call(api, "POST", CANARIES, canary()))[0] == 201
    status = {"status": {"phase": "Bogus"}}
    code, answer = await call(api, "PATCH", f"{CANARIES}/podinfo/status", status)
    assert code == 422
    assert answer["reason"] == "Invalid"
    assert "status.phase" in answer["message"] and "Bogus" in answer["message"]


async def test_a_time_that_is_not_rfc3339_is_422_as_the_api_server_checks_formats(
    api: FakeKubeApi,
) -> None:
    assert (await call(api, "POST", CANARIES, canary()))[0] == 201
    for bad in ("", "2026-01-01 10:00:00Z", "2026-01-01T10:00", "yesterday"):
        status = {"status": {"phase": "Progressing", "lastTransitionTime": bad}}
        code, answer = await call(api, "PATCH", f"{CANARIES}/podinfo/status", status)
        assert code == 422 and "status.lastTransitionTime" in answer["message"], bad
    good = {"status": {"phase": "Progressing", "lastTransitionTime": NOW}}
    assert (await call(api, "PATCH", f"{CANARIES}/podinfo/status", good))[0] == 200


async def test_without_crds_the_server_keeps_what_it_is_given() -> None:
    async with serve_kube_api(crds=False) as api:
        body = canary()
        body["spec"]["madeUp"] = 1
        code, answer = await call(api, "POST", CANARIES, body)
        assert code == 201 and answer["spec"]["madeUp"] == 1
        assert api.pruned == []
