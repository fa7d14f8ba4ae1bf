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
from collections.abc import Hashable


class PerServerLimit:
    """A semaphore of ``concurrency`` slots for each server key, made on first use."""

    def __init__(self, concurrency: int) -> None:
        self._concurrency = max(1, concurrency)
        self._slots: dict[Hashable, asyncio.Semaphore] = {}

    def __call__(self, server: Hashable) -> asyncio.Semaphore:
        slots = self._slots.get(server)
        if slots is None:
            slots = self._slots[server] = asyncio.Semaphore(self._concurrency)
        return slots
