"""The Clock seam: real time for the controller, virtual time for simulate and tests.

This is the only module allowed to touch ``asyncio.sleep`` and the system clock (ruff TID251).

``VirtualClock`` is a discrete-event clock in the spirit of trio's autojumping MockClock, adapted to
asyncio without patching the loop: each ``sleep`` parks its caller on a heap of deadlines; when all
registered actor is parked, time jumps to the earliest deadline and those sleepers wake in
(deadline, sequence) order. Actors are registered when spawned (``spawn``), before they first run,
so the first task to run cannot jump time before its siblings exist.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds since an arbitrary origin."""
        ...

    def utcnow(self) -> datetime:
        """Aware UTC wall time, derived from now() so virtual and real clocks agree."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Start a concurrent task that sleeps on this clock (an actor, for virtual time)."""
        ...

    async def wait(self, awaitable: Awaitable[T]) -> T:
        """Await something another actor will complete (e.g. a batch result); for virtual time
        the waiting actor counts as parked, so the clock may move on to wake that other actor."""
        ...


class RealClock:
    """Wall-clock time: the event loop's monotonic clock and asyncio.sleep."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def utcnow(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        return asyncio.ensure_future(coro)

    async def wait(self, awaitable: Awaitable[T]) -> T:
        return await awaitable


class VirtualClock:
    """Deterministic virtual time; runs as fast as the code allows.

    Usage: ``clock.spawn(coro)`` for every concurrent actor (or ``await clock.run(coro)`` for one);
    inside actors, ``await clock.sleep(s)`` is the only way to wait. ``advance(s)`` steps time by
    hand in unit tests that do not use actors.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._base = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._now = 0.0
        self._seq = itertools.count()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._actors = 0
        self._waiting = 0  # actors parked in wait() on another actor's result
        self._wake_scheduled = False

    def now(self) -> float:
        return self._now

    def utcnow(self) -> datetime:
        return self._base + timedelta(seconds=self._now)

    def advance(self, seconds: float) -> None:
        """Move time forward by hand, waking every sleeper whose deadline has passed."""
        self._now += max(0.0, seconds)
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + max(0.0, seconds), next(self._seq), fut))
        self._parked_changed()
        try:
            await fut
        finally:
            if not fut.done():  # cancelled while parked: drop it from the heap
                self._sleepers = [s for s in self._sleepers if s[2] is not fut]
                heapq.heapify(self._sleepers)

    async def wait(self, awaitable: Awaitable[T]) -> T:
        self._waiting += 1
        self._parked_changed()
        try:
            return await awaitable
        finally:
            self._waiting -= 1

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Start an actor task, registered before it first runs."""
        self._actors += 1
        task = asyncio.ensure_future(coro)
        task.add_done_callback(self._actor_done)
        return task

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run one actor to completion on virtual time."""
        return await self.spawn(coro)

    def _actor_done(self, _: asyncio.Task[Any]) -> None:
        self._actors -= 1
        self._parked_changed()

    def _parked_changed(self) -> None:
        # Defer the jump to the next loop iteration so actors woken in the same step can run
        # (and park again) before time moves.
        if not self._wake_scheduled:
            self._wake_scheduled = True
            asyncio.get_running_loop().call_soon(self._maybe_jump)

    def _pending(self) -> int:
        return sum(1 for _, _, f in self._sleepers if not f.done())

    def _maybe_jump(self) -> None:
        self._wake_scheduled = False
        # With no actors the clock is stepped by hand (advance); otherwise jump only when every
        # actor is parked in sleep.
        parked = self._pending() + self._waiting
        if not self._actors or not self._sleepers or parked < self._actors:
            return
        deadline = self._sleepers[0][0]
        self._now = max(self._now, deadline)
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)
