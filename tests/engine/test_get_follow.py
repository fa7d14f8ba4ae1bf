"""``get --watch`` follows one Canary: Events about other objects print nothing."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from engine.cli.canary_view import View
from engine.cli.get import _follow
from traffic import CANARY, InMemoryCluster, ObjectRef

NS = "staging"


def canary() -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}},
        "status": {"phase": "Progressing", "canaryWeight": 10},
    }


def event(name: str, about: str, message: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": NS},
        "involvedObject": {"kind": "Canary", "name": about, "namespace": NS},
        "type": "Normal",
        "reason": "Synced",
        "message": message,
        "lastTimestamp": "2026-01-01T00:00:00Z",
    }


class Shown:
    """A printer that keeps every view it was asked to show."""

    def __init__(self) -> None:
        self.views: list[View] = []

    def show(self, view: View) -> None:
        self.views.append(view)


async def test_events_of_other_canaries_print_nothing_and_its_own_print_once() -> None:
    cluster = InMemoryCluster()
    body = await cluster.create(canary())
    printer = Shown()
    ref = ObjectRef(CANARY, NS, "web")
    printing: Any = printer  # stands in for get's own printer: only show() is called
    followed = asyncio.create_task(_follow(cluster, ref, printing, io.StringIO(), body, []))
    await asyncio.sleep(0.05)  # the watches' replay of the Canary
    replayed = len(printer.views)
    for n in range(200):
        await cluster.create(event(f"other.{n}", "api", f"api event {n}"))
    await asyncio.sleep(0.05)
    assert len(printer.views) == replayed  # 200 Events about another Canary: nothing shown
    await cluster.create(event("web.1", "web", "Advance web.staging canary weight 10"))
    await asyncio.sleep(0.05)
    assert len(printer.views) == replayed + 1
    assert "Advance web.staging canary weight 10" in repr(printer.views[-1])
    await cluster.delete(ObjectRef(CANARY, NS, "web"))
    assert await asyncio.wait_for(followed, 5) == 0
