"""Where router tests run: the in-memory cluster, and the fake API server over real HTTP.

``world`` (a fixture of ``tests/traffic/conftest.py``) runs each router test twice: against
``InMemoryCluster`` (what simulate uses) and against ``KubeCluster`` talking to
``tests/kubeapi.py`` over HTTP (what the controller uses: kubernetes-asyncio builds the URLs of
the custom resources, sends the merge patches, and the server enforces resourceVersions).
``World.calls`` is every request the router sent to the API server, as RBAC sees it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.kubeapi import FakeKubeApi, serve_kube_api
from traffic import Body, Cluster, InMemoryCluster, ObjectRef, open_kube_cluster


@dataclass(frozen=True, slots=True)
class ApiCall:
    verb: str
    group: str
    resource: str
    namespace: str | None
    name: str | None


@dataclass
class World:
    cluster: Cluster
    api: FakeKubeApi | None = None

    @property
    def name(self) -> str:
        return "memory" if self.api is None else "kube"

    def seed(self, *bodies: Body) -> None:
        if self.api is None:
            assert isinstance(self.cluster, InMemoryCluster)
            self.cluster.seed(*bodies)
        else:
            self.api.store.seed(*bodies)

    async def read(self, ref: ObjectRef) -> Body | None:
        """The stored object (through the cluster, as a router reads it)."""
        return await self.cluster.get(ref)

    async def must_read(self, ref: ObjectRef) -> Body:
        body = await self.read(ref)
        assert body is not None, f"{ref} not found"
        return body

    def calls(self) -> list[ApiCall]:
        assert self.api is not None, "only the API server records requests"
        return [
            ApiCall(r.verb, r.group, r.resource, r.namespace, r.name)
            for r in self.api.log
            if r.path.startswith(("/api/", "/apis/"))
        ]


@asynccontextmanager
async def open_world(kind: str, tmp_path: Path) -> AsyncIterator[World]:
    if kind == "memory":
        yield World(InMemoryCluster())
        return
    async with serve_kube_api() as api:
        kubeconfig = str(api.write_kubeconfig(tmp_path / "kubeconfig"))
        async with open_kube_cluster(
            kubeconfig,
            sleep=asyncio.sleep,
            cache_kinds=(),
            request_timeout=5.0,
            backoff=(0.01, 0.05),
        ) as cluster:
            yield World(cluster, api)
