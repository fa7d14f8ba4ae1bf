"""``canary-engine run`` with a non-Prometheus MetricTemplate: the controller reads the registry.

The world of ``test_controller_kube.py`` (the Kubernetes API test server over HTTP, the fake
Prometheus for the builtin checks and webhooks, a virtual clock) runs the seed setup's
webhook-server Canary with one more metric: a ``keptn`` template reading a KeptnMetric through
the controller's own Kubernetes client (``engine.shell.run`` wires the Cluster seam into
``open_metric_sources``). A KeptnMetric under the bound promotes; one above it fails its check
every interval, with the Halt event naming the metric and value, and rolls back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_controller_kube import NAME, NS, V2, World, open_world, release

pytestmark = pytest.mark.slow

TEMPLATE: dict[str, Any] = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "MetricTemplate",
    "metadata": {"name": "keptn-latency", "namespace": NS},
    "spec": {"provider": {"type": "keptn"}, "query": f"keptnmetric/{NS}/latency"},
}


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(tmp_path) as w:
        yield w


def seed(w: World, latency: str) -> None:
    w.seed()
    canary = w.canary()
    canary["spec"]["analysis"]["metrics"].append(
        {
            "name": "keptn-latency",
            "interval": "1m",
            "templateRef": {"name": "keptn-latency"},
            "thresholdRange": {"max": 500},
        }
    )
    w.api.store.put(canary)
    w.api.store.seed(TEMPLATE)
    w.api.store.put(
        {
            "apiVersion": "metrics.keptn.sh/v1beta1",
            "kind": "KeptnMetric",
            "metadata": {"name": "latency", "namespace": NS},
            "spec": {"provider": {"name": "prometheus"}, "query": "x", "fetchIntervalSeconds": 10},
            "status": {"value": latency},
        },
        plural="keptnmetrics",
    )


async def test_a_keptn_metric_under_its_bound_promotes(world: World) -> None:
    w = world
    seed(w, "212.5")
    await release(w, "Succeeded")
    assert w.image(f"{NAME}-primary") == V2
    assert not [m for m in w.messages() if m.startswith("Halt")]
    reads = [r for r in w.api.log if r.resource == "keptnmetrics"]
    assert reads and all(r.verb == "get" and r.name == "latency" for r in reads)


async def test_a_keptn_metric_over_its_bound_rolls_back(world: World) -> None:
    w = world
    seed(w, "900")
    await release(w, "Failed")
    halts = [m for m in w.messages() if m.startswith("Halt")]
    assert halts and all("keptn-latency 900" in m for m in halts), halts
    assert w.image(f"{NAME}-primary") != V2
