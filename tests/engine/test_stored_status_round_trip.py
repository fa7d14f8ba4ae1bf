"""A stored status the CRD admits is written back in a form the CRD admits (found by fuzzing the
controller with statuses generated from config/deploy/crd's schema).

The CRD types a condition's ``lastUpdateTime`` / ``lastTransitionTime`` and a handled command's
``handledAt`` as date-time and requires none of them. One stored without them (another writer's
condition, a null the API server dropped) was read as "" and written back as "", which the API
server refuses (422): every status write carrying the conditions failed, so the Canary never
left the phase it was in and got a Warning on every tick.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.crd_schema import invalid_fields
from tests.engine.driver_world import NS, web_driver
from traffic import CANARY, ClusterError, InMemoryCluster, ObjectRef


@pytest.fixture
def crd_validated_status(monkeypatch: pytest.MonkeyPatch) -> None:
    """Status writes are refused as the API server refuses them against the CRD (422)."""
    patch = InMemoryCluster.patch

    async def validating(self: InMemoryCluster, ref: ObjectRef, body: Any, **kwargs: Any) -> Any:
        if kwargs.get("status") and ref.kind == CANARY:
            current = self.peek(ref) or {}
            merged = {**current, "status": {**(current.get("status") or {}), **body["status"]}}
            refused = invalid_fields("canaries", merged, ("status",))
            if refused:
                raise ClusterError(f"422 Invalid: {refused}")
        return await patch(self, ref, body, **kwargs)

    monkeypatch.setattr(InMemoryCluster, "patch", validating)


@pytest.mark.parametrize(
    "stored",
    [
        {"conditions": [{"type": "Ready", "status": "True", "reason": "Synced"}]},
        {"lastCommand": {"id": "c-1", "command": "pause"}},
    ],
    ids=["condition without times", "command without handledAt"],
)
async def test_a_stored_status_without_optional_times_is_written_back_valid(
    crd_validated_status: None, stored: dict[str, Any]
) -> None:
    cluster, driver = web_driver()
    ref = ObjectRef(CANARY, NS, "web")
    body = cluster.peek(ref)
    assert body is not None
    assert invalid_fields("canaries", {**body, "status": stored}, ("status",)) == []
    cluster.seed({**body, "status": stored})

    report = await driver.tick()

    assert report.error is None, report.error
    status = (cluster.peek(ref) or {})["status"]
    assert status["phase"] == "Initialized"
    assert invalid_fields("canaries", {"status": status}, ("status",)) == []
    if "conditions" in stored:  # the other writer's condition is kept, as it was stored
        assert {"type": "Ready", "status": "True", "reason": "Synced", "message": ""} in status[
            "conditions"
        ]
