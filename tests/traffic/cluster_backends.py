"""The Cluster implementations the contract suite (test_cluster_contract.py) runs against.

* ``memory``: ``InMemoryCluster`` (what ``simulate`` and the unit tests use);
* ``kube``: ``KubeCluster`` over kubernetes-asyncio talking HTTP to ``tests/kubeapi.py``, no
  cache (every read is a request);
* ``kube-cached``: the same with the watch-fed cache of the contract's kinds synced first, as the
  controller runs it (reads answer from memory, writes are absorbed into the cache);
* ``kube-namespaced``: cached and scoped to the two namespaces the tests use, as
  ``run --namespace`` runs it (one cache and one watch stream per namespace).

``Backend.cluster`` is the client under test; ``Backend.other`` is a second client of the same
cluster (another replica, a user's kubectl): the same object for ``memory``, a second
``KubeCluster`` for the others, so watch tests see changes the watcher did not make itself.
``interrupt_watches`` / ``resume_watches`` cut the server's watch streams and hold their
reconnection, then let it through, after an etcd compaction when ``expired`` (the reconnecting
watch is answered 410 Gone); the in-memory cluster has no streams to cut, so they do nothing
there and the same assertions must hold.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.kubeapi import FakeKubeApi, serve_kube_api
from traffic.cluster import (
    CANARY,
    CONFIGMAP,
    EVENT,
    SERVICE,
    Cluster,
    InMemoryCluster,
    Kind,
    WatchEvent,
)
from traffic.cluster._kube import KubeCluster, open_kube_cluster

BACKENDS = ("memory", "kube", "kube-cached", "kube-namespaced")

#: The namespaces the contract tests use (``kube-namespaced`` is scoped to them).
NAMESPACES = ("contract", "elsewhere")

#: The kinds the contract tests use (and the cached backend caches).
CONTRACT_KINDS = (CONFIGMAP, SERVICE, EVENT, CANARY)


@dataclass
class Backend:
    name: str
    cluster: Cluster
    other: Cluster
    api: FakeKubeApi | None = None

    async def interrupt_watches(self) -> None:
        """Cut every open watch stream and hold the reconnections (kube); no-op in memory."""
        if self.api is None:
            return
        api = self.api
        streams = api.open_watches
        api.stall_next(1000, method="GET", path="watch=true")
        api.drop_watches()
        # Every watch has come back and is being held: nothing written now reaches a stream.
        # (polled: the test server counts its streams, it has no event to wait on)
        async with asyncio.timeout(5.0):
            while True:
                if api.open_watches == 0 and api.stalled >= streams:
                    break
                await asyncio.sleep(0.01)

    async def resume_watches(self, *, expired: bool) -> None:
        """Let the held watches reconnect from where they were; with ``expired`` the server has
        compacted its history first, so they are answered 410 Gone and must re-list."""
        if self.api is None:
            return
        if expired:
            self.api.store.compact()
        self.api.clear_faults()
        self.api.release_stalled()


async def take(events: AsyncIterator[WatchEvent], n: int, within: float = 5.0) -> list[WatchEvent]:
    """The next ``n`` watch events (a clear timeout if they do not come)."""
    got: list[WatchEvent] = []
    try:
        async with asyncio.timeout(within):
            while len(got) < n:
                got.append(await anext(events))
    except TimeoutError:
        summary = [(e.type, e.body["metadata"]["name"]) for e in got]
        raise AssertionError(f"expected {n} watch events within {within}s, got {summary}") from None
    return got


async def nothing_more(events: AsyncIterator[WatchEvent], within: float = 0.3) -> None:
    """Assert that no further event arrives within ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            extra = await anext(events)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected watch event {extra.type} {extra.body['metadata']['name']}")


@asynccontextmanager
async def open_backend(name: str, tmp_path: Path) -> AsyncIterator[Backend]:
    if name == "memory":
        memory = InMemoryCluster()
        yield Backend(name, memory, memory)
        return
    async with AsyncExitStack() as stack:
        # toy Canaries: the contract is the API server's generic behaviour, not the CRD's
        api = await stack.enter_async_context(serve_kube_api(crds=False))
        kubeconfig = str(api.write_kubeconfig(tmp_path / "kubeconfig"))

        async def client(cache: Sequence[Kind], scope: Sequence[str]) -> KubeCluster:
            return await stack.enter_async_context(
                open_kube_cluster(
                    kubeconfig,
                    sleep=asyncio.sleep,
                    cache_kinds=cache,
                    namespaces=scope,
                    request_timeout=5.0,
                    backoff=(0.01, 0.05),
                )
            )

        cached = CONTRACT_KINDS if name in ("kube-cached", "kube-namespaced") else ()
        cluster = await client(cached, NAMESPACES if name == "kube-namespaced" else ())
        if cached:
            await cluster.wait_synced()
        other = await client((), ())
        yield Backend(name, cluster, other, api)
