"""One tick, one time: the status fields a tick writes carry the moment it decided, however long
its webhooks and metric queries take (a tick crossing a second boundary wrote a lastAnalysis.time
one second after the lastTransitionTime it set)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from driver_world import NS, web_driver

from analysis import MetricQuery, QueryFailure
from engine import VirtualClock
from traffic import CANARY, DEPLOYMENT, ObjectRef


class SlowFailing:
    """Every query fails its bound and takes 1.5 s of the clock to answer."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock

    async def fetch(self, queries: Sequence[MetricQuery]) -> list[float | QueryFailure]:
        self.clock.advance(1.5)
        return [50.0 for _ in queries]


async def test_last_analysis_time_is_the_ticks_transition_time() -> None:
    cluster, driver = web_driver(
        metrics=SlowFailing,
        analysis={
            "interval": "1m",
            "threshold": 5,
            "stepWeight": 50,
            "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}],
        },
    )
    await driver.tick()
    await driver.tick()
    await cluster.patch(
        ObjectRef(DEPLOYMENT, NS, "web"),
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:2"}]}}}},
    )
    status: dict[str, Any] = {}
    for _ in range(4):
        await driver.tick()
        body = cluster.peek(ObjectRef(CANARY, NS, "web"))
        assert body is not None
        status = body["status"]
        if status.get("failedChecks"):
            break
    assert status["failedChecks"] == 1
    assert status["lastAnalysis"]["time"] == status["lastTransitionTime"]
