"""The controller's credentials Secrets: one read reused for a few seconds, misses never kept."""

from __future__ import annotations

import base64

from engine import VirtualClock
from engine.shell.credentials import CredentialsReader
from traffic import SECRET, InMemoryCluster, ObjectRef


def secret(token: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "prom-auth", "namespace": "monitoring"},
        "data": {"token": base64.b64encode(token.encode()).decode()},
    }


async def test_a_secret_is_read_once_per_ttl_and_a_rotation_is_seen_after_it() -> None:
    clock = VirtualClock()
    cluster = InMemoryCluster(now=clock.utcnow)
    read = CredentialsReader(cluster, clock, ttl=10)
    assert await read("monitoring/prom-auth") is None  # missing: not remembered
    cluster.seed(secret("one"))
    for _ in range(5):  # five canaries' queries in one tick
        assert await read("monitoring/prom-auth") == {"token": "one"}
    assert cluster.calls["get"] == 2
    await cluster.patch(
        ObjectRef(SECRET, "monitoring", "prom-auth"),
        {"data": {"token": base64.b64encode(b"two").decode()}},
    )
    clock.advance(9)
    assert await read("monitoring/prom-auth") == {"token": "one"}
    clock.advance(1)
    assert await read("monitoring/prom-auth") == {"token": "two"}
    assert cluster.calls["get"] == 3
