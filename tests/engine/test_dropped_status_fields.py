"""A status write that comes back without fields it set is reported once per Canary and process,
however many drivers the controller makes for it (a new one after every error)."""

from __future__ import annotations

from typing import Any

import pytest

from engine import CanaryDriver
from tests.engine.driver_world import NS, web_driver
from traffic import CANARY, DEPLOYMENT, InMemoryCluster, ObjectRef


@pytest.fixture
def flaggers_status_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    """Status writes answer as over Flagger's CRD: without canary-engine's inconclusiveChecks."""
    patch = InMemoryCluster.patch

    async def pruning(self: InMemoryCluster, ref: ObjectRef, body: Any, **kwargs: Any) -> Any:
        stored = await patch(self, ref, body, **kwargs)
        if kwargs.get("status"):
            status = dict(stored.get("status") or {})
            status.pop("inconclusiveChecks", None)
            stored = {**stored, "status": status}
        return stored

    monkeypatch.setattr(InMemoryCluster, "patch", pruning)


async def _release_warnings(cluster: InMemoryCluster, driver: CanaryDriver) -> list[str]:
    """Five ticks through a release, each by a new driver for the Canary (as the controller makes
    one after a ClusterUnavailable or a crash), sharing one reported set: the dropped-fields
    warnings they recorded."""
    reported: set[ObjectRef] = set()
    clock = driver._deps.clock
    warnings: list[str] = []
    for tick in range(5):
        driver = CanaryDriver(driver._deps, NS, "web", dropped_reported=reported)
        report = await driver.tick()
        warnings += [e.message for e in report.events if "dropped the status fields" in e.message]
        if tick == 0:
            await cluster.patch(
                ObjectRef(DEPLOYMENT, NS, "web"),
                {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "w:2"}]}}}},
            )
        clock.advance(60)
    return warnings


async def test_a_new_driver_for_the_same_canary_does_not_report_it_again(
    flaggers_status_schema: None,
) -> None:
    warnings = await _release_warnings(*web_driver())

    assert len(warnings) == 1, warnings
    assert "inconclusiveChecks" in warnings[0] and "config/deploy/crd" in warnings[0]


async def test_nothing_is_reported_when_the_server_keeps_every_field() -> None:
    cluster, driver = web_driver()

    assert await _release_warnings(cluster, driver) == []
    stored = await cluster.get(ObjectRef(CANARY, NS, "web"))
    assert stored is not None and "inconclusiveChecks" in stored["status"]
    assert stored["status"]["phase"] not in ("", "Initializing", "Initialized")  # a release ran
