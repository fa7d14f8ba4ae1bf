"""A cluster that still has Flagger's own Canary CRD: the API server prunes canary-engine's status
fields without a word to the client, so the controller says so, once, where an operator looks.

Flagger's CRD declares only its own status fields (phase, weights, counters, revisions, cookies,
conditions) and does not preserve unknown ones, so ``inconclusiveChecks``, ``lastAnalysis`` or
``lastCommand`` written over it are dropped and their state is lost between ticks. The test API
server prunes against a copy of ``config/deploy/crd`` cut down to Flagger's status fields.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tests.kubeapi
from tests.crd_schema import schema_for
from tests.e2e.test_controller_kube import open_world, release

pytestmark = pytest.mark.timeout(60)

#: The status fields Flagger's Canary CRD declares.
FLAGGER_STATUS_FIELDS = frozenset(
    {
        "phase",
        "failedChecks",
        "canaryWeight",
        "iterations",
        "trackedConfigs",
        "lastAppliedSpec",
        "lastPromotedSpec",
        "lastTrackedRevision",
        "lastTransitionTime",
        "sessionAffinityCookie",
        "primarySessionAffinityCookie",
        "previousSessionAffinityCookie",
        "conditions",
    }
)


@pytest.fixture
def flaggers_crd(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The test API server holds Canaries to Flagger's status schema."""
    ours = schema_for("flagger.app", "canaries")
    assert ours is not None
    flaggers = copy.deepcopy(ours)
    status = flaggers["properties"]["status"]["properties"]
    for name in set(status) - FLAGGER_STATUS_FIELDS:
        del status[name]

    def schema(group: str, plural: str) -> dict[str, Any] | None:
        if (group, plural) == ("flagger.app", "canaries"):
            return flaggers
        return schema_for(group, plural)

    monkeypatch.setattr(tests.kubeapi, "schema_for", schema)
    yield


async def test_status_fields_pruned_by_flaggers_crd_are_reported_once(
    flaggers_crd: None, tmp_path: Path
) -> None:
    async with open_world(tmp_path) as w:
        w.seed()
        await release(w, "Succeeded")

        warnings = [
            e["message"] for e in w.events() if e["type"] == "Warning" and "dropped" in e["message"]
        ]
        assert len(warnings) == 1, warnings
        assert "inconclusiveChecks" in warnings[0]
        assert "config/deploy/crd" in warnings[0]
        assert "inconclusiveChecks" not in w.status()  # pruned indeed: the rollout still ends
        assert w.api.pruned, "the test API server pruned nothing: the test proves nothing"
        w.api.pruned.clear()  # expected here (open_world fails a test that pruned anything)
