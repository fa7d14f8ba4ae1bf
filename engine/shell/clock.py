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


def stamp(clock: Clock) -> str:
    """The clock's UTC wall time as the Kubernetes API writes it ("2026-01-01T00:00:00Z")."""
    return stamp_of(clock.utcnow())


def stamp_of(when: datetime) -> str:
    """A UTC time as the Kubernetes API writes it ("2026-01-01T00:00:00Z")."""
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_stamp(clock: Clock) -> str:
    """The clock's UTC wall time as a MicroTime ("2026-01-01T00:00:00.000000Z"): a Lease's
    renewTime needs the microseconds, as two renewals may fall within one second."""
    return clock.utcnow().strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
    inside actors, ``await clock.sleep(s)`` is the way to wait (``await clock.wait(fut)`` to wait
    for another actor's result). Time jumps to the next deadline only when every actor is parked
    in one of those; an actor awaiting anything else (a network reply, a queue) holds time still.
    Non-actor tasks may sleep on the clock too: they are woken when time passes their deadline but
    never hold time back nor push it forward. ``advance(s)`` steps time by hand (no actors).
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._base = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._now = 0.0
        self._seq = itertools.count()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._actor_tasks: set[asyncio.Task[Any]] = set()
        self._parked: set[asyncio.Future[Any]] = set()  # what parked actors are waiting on
        self._wake_scheduled = False

    def now(self) -> float:
        return self._now

    def utcnow(self) -> datetime:
        return self._base + timedelta(seconds=self._now)

    def advance(self, seconds: float) -> None:
        """Move time forward by hand, waking every sleeper whose deadline has passed."""
        self._now += max(0.0, seconds)
        self._wake_due()

    def next_deadline(self) -> float | None:
        """When the earliest sleeper wakes (None: nobody sleeps); lets a test step time one
        wake-up at a time."""
        return self._sleepers[0][0] if self._sleepers else None

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + max(0.0, seconds), next(self._seq), fut))
        try:
            await self._park(fut)
        finally:
            if not fut.done():  # cancelled while parked: drop it from the heap
                self._sleepers = [s for s in self._sleepers if s[2] is not fut]
                heapq.heapify(self._sleepers)

    async def wait(self, awaitable: Awaitable[T]) -> T:
        return await self._park(asyncio.ensure_future(awaitable))

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Start an actor task, registered before it first runs."""
        task = asyncio.ensure_future(coro)
        self._actor_tasks.add(task)
        task.add_done_callback(self._actor_done)
        return task

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run one actor to completion on virtual time."""
        return await self.spawn(coro)

    async def _park(self, fut: asyncio.Future[T]) -> T:
        is_actor = asyncio.current_task() in self._actor_tasks
        if is_actor:
            self._parked.add(fut)
            self._schedule_jump()
        try:
            return await fut
        finally:
            self._parked.discard(fut)

    def _actor_done(self, task: asyncio.Task[Any]) -> None:
        self._actor_tasks.discard(task)
        self._schedule_jump()

    def _schedule_jump(self) -> None:
        # Defer the jump to the next loop iteration so actors woken in the same step can run
        # (and park again) before time moves.
        if not self._wake_scheduled:
            self._wake_scheduled = True
            asyncio.get_running_loop().call_soon(self._maybe_jump)

    def _maybe_jump(self) -> None:
        self._wake_scheduled = False
        if not self._actor_tasks or not self._sleepers:
            return  # no actors: the clock is stepped by hand
        parked = sum(1 for f in self._parked if not f.done())
        if parked < len(self._actor_tasks):
            return
        self._now = max(self._now, self._sleepers[0][0])
        self._wake_due()
        # If only non-actor sleepers woke, no actor will park again to trigger the next jump.
        self._schedule_jump()

    def _wake_due(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)
