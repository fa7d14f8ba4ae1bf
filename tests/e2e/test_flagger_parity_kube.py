"""Issue 9, item 5 through ``canary-engine run``: what a user sees with kubectl.

The controller runs against the Kubernetes API test server over HTTP (``tests/kubeapi.py``),
with the seed's webhook-server sample, as in ``test_controller_kube.py``: the Canary's events and
status after ``kubectl patch`` / ``kubectl set image``.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from tests.e2e.test_controller_kube import (
    NAME,
    NS,
    V2,
    World,
    alive,
    release,
    start,
    world,
)

__all__ = ["world"]  # the fixture, shared with test_controller_kube

pytestmark = pytest.mark.timeout(60)


async def patch_canary(w: World, name: str, patch: dict[str, Any]) -> None:
    """``kubectl patch canary <name> --type=merge -p <patch>``, over HTTP."""
    url = f"{w.api.url}/apis/flagger.app/v1beta1/namespaces/{NS}/canaries/{name}"
    headers = {"Content-Type": "application/merge-patch+json", "Authorization": "Bearer kubectl"}
    async with (
        aiohttp.ClientSession() as session,
        session.patch(url, data=json.dumps(patch), headers=headers) as response,
    ):
        assert response.status == 200, await response.text()


async def test_skip_analysis_emits_flaggers_copying_event(world: World) -> None:
    w = world
    w.seed()
    run = await start(w)
    try:
        await w.time.run_until(lambda: w.phase() == "Initialized", also=alive(run))
        await patch_canary(w, NAME, {"spec": {"skipAnalysis": True}})
        await w.set_image(NAME, V2)
        await w.time.run_until(lambda: w.phase() == "Succeeded", also=alive(run))
    finally:
        assert await run.shutdown() == 0
    assert w.image(f"{NAME}-primary") == V2
    messages = w.messages()
    assert messages[-2:] == [
        "Copying webhook-server.staging template spec to webhook-server-primary.staging",
        "Promotion completed! Canary analysis was skipped for webhook-server.staging",
    ]


async def test_blue_green_step_weight_promotion_runs_instead_of_being_rejected(
    world: World,
) -> None:
    w = world
    # The seed's Canary as blue/green (kubernetes provider), stepping the primary back by 50.
    w.seed(stepWeight=None, maxWeight=None, iterations=2, stepWeightPromotion=50)
    await release(w, "Succeeded")
    assert "Validated" not in {c["type"] for c in w.status().get("conditions") or []}
    assert w.image(f"{NAME}-primary") == V2
    messages = w.messages()
    assert "Routing all traffic to canary" in messages
    steps = [m for m in messages if "primary weight" in m]
    assert steps == [
        "Advance webhook-server.staging primary weight 50",
        "Advance webhook-server.staging primary weight 100",
    ]
    # Promoting with half the traffic still on the canary, as Flagger's SetStatusWeight writes.
    assert ("Promoting", 50, 0) in w.statuses[NAME]


async def test_a_knative_canary_is_driven(world: World) -> None:
    # Knative Services are driven now (traffic/_knative.py): the controller pins the current
    # revision as the primary and puts all traffic on it, as Flagger's Initialize does.
    w = world
    w.seed()
    knative = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {
            "provider": "knative",
            "targetRef": {
                "apiVersion": "serving.knative.dev/v1",
                "kind": "Service",
                "name": "podinfo",
            },
            "analysis": {"interval": "15s", "threshold": 15, "maxWeight": 50, "stepWeight": 10},
        },
    }
    service = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {"template": {"spec": {"containers": [{"image": "podinfo:6.0.0"}]}}},
        "status": {"latestCreatedRevisionName": "podinfo-00001"},
    }
    revision = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Revision",
        "metadata": {"name": "podinfo-00001", "namespace": NS},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    w.api.store.seed(knative, service, revision)
    run = await start(w)
    try:
        await w.time.run_until(lambda: w.phase("podinfo") == "Initialized", also=alive(run))
    finally:
        assert await run.shutdown() == 0
    stored = w.api.store.get("services.serving.knative.dev", NS, "podinfo")
    assert stored is not None
    assert stored["metadata"]["annotations"]["flagger.app/primary-revision"] == "podinfo-00001"
    assert stored["spec"]["traffic"] == [
        {"latestRevision": True, "percent": 0},
        {"revisionName": "podinfo-00001", "latestRevision": False, "percent": 100},
    ]
    assert not [e for e in w.events("podinfo") if e["type"] == "Warning"]
