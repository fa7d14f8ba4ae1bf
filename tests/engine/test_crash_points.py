"""A controller killed between two writes of a tick loses no progress: the next one, started on
the same cluster with nothing of the old one's memory, ends the run as an uninterrupted one
would, or where Flagger (whose state also lives only in the Canary status) would end it.

``crash_world`` runs a rollout on an InMemoryCluster and kills the controller right after a
chosen write: the write is applied, nothing after it in that process happens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from crash_world import (
    TARGET,
    Scenario,
    World,
    Write,
    release,
    run,
)

METRICS = [{"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}]
HOOKS = [
    {"name": "pre", "type": "pre-rollout", "url": "http://hooks/pre"},
    {"name": "post", "type": "post-rollout", "url": "http://hooks/post"},
]


def analysis(**fields: Any) -> dict[str, Any]:
    return {"interval": "1m", "threshold": 2, "metrics": METRICS, "webhooks": HOOKS, **fields}


def status_write(phase: str) -> Any:
    """The write that stores ``phase``."""

    def picks(write: Write) -> bool:
        status = (write.body or {}).get("status") if write.verb == "patch_status" else None
        return isinstance(status, Mapping) and status.get("phase") == phase

    return picks


def bad_release(version: str) -> Any:
    """While the controller is down, the user pushes ``web:<version>``, whose metrics fail."""

    async def push(w: World) -> None:
        w.metrics.value = 50.0
        containers = [{"name": "web", "image": f"web:{version}"}]
        await w.cluster.patch(TARGET, {"spec": {"template": {"spec": {"containers": containers}}}})

    return push


@pytest.mark.parametrize("provider", ["kubernetes", "istio"])
async def test_a_release_pushed_while_the_promotion_was_never_copied_gets_its_own_run(
    provider: str,
) -> None:
    """Killed after the Promoting status and before the copy (the copy comes once the status
    is written), and web:3 pushed before the next controller starts: web:2 can no longer reach
    the primary. It used to finish the promotion anyway: Succeeded, "Promotion completed!",
    lastPromotedSpec web:2's, the primary still on web:1 (and a later revert of the target to
    web:2 started no run). Now the run restarts for web:3, as Flagger's (which copies before it
    writes Promoting) would after a stop before its copy; web:3 fails and the primary, web:1,
    is the promoted revision."""
    scenario = Scenario(
        "promoting-lost",
        {"provider": provider, "analysis": analysis(stepWeight=50)},
        (release("2"),),
    )
    out = await run(scenario, status_write("Promoting"), while_down=bad_release("3"))
    assert out.crashed_at is not None
    assert out.status["phase"] == "Failed"
    assert out.workloads["web-primary"] == (3, "web:1")
    assert out.images[out.status["lastPromotedSpec"]] == "web:1"
    assert out.images[out.status["lastAppliedSpec"]] == "web:3"
    assert out.routes == (100, 0, False) and out.workloads["web"] == (0, "web:3")
    assert not any(m.startswith("Promotion completed!") for m in out.events)
    assert ("post", "Succeeded") not in out.hooks and out.outcomes == {"failure": 1}
    assert (
        out.events[
            "Promotion of web.staging not made: web-primary.staging never received the promoted "
            "revision, and web.staging no longer runs it"
        ]
        == 1
    )
    assert out.events["New revision detected! Restarting analysis for web.staging"] == 1
