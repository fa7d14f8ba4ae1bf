"""How many queries may be in flight at once, counted per server.

One limit for every server let a server that never answers hold every slot: the queries of
canaries asking another server waited for a slot, outside their own timeout, for as long as the
hanging queries took (found by a reviewer: 4 s per wave of 64 on a hanging Prometheus). Counted
per server, a hanging server queues only its own queries; the others still get ``concurrency``
each. (The HTTP clients' connection pools are therefore not capped: a shared cap would be the
same single limit again, one level down.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager


class PerServerLimit:
    """``concurrency`` slots for each server key: ``async with limit(server): ...``.

    A server's semaphore lives while a query holds or awaits one of its slots and is dropped
    after, so a controller that has asked thousands of addresses over weeks keeps none of them."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = max(1, concurrency)
        #: server -> (its semaphore, how many queries hold or await a slot)
        self._slots: dict[Hashable, tuple[asyncio.Semaphore, int]] = {}

    @asynccontextmanager
    async def __call__(self, server: Hashable) -> AsyncIterator[None]:
        slots, users = self._slots.get(server) or (asyncio.Semaphore(self.concurrency), 0)
        self._slots[server] = (slots, users + 1)
        try:
            async with slots:
                yield
        finally:
            slots, users = self._slots[server]
            if users == 1:
                del self._slots[server]
            else:
                self._slots[server] = (slots, users - 1)

    @property
    def servers(self) -> int:
        """Servers with a query in flight or waiting (for tests)."""
        return len(self._slots)
