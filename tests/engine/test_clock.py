"""The virtual clock: deterministic, instant, and only jumps when every actor is parked."""

from __future__ import annotations

import asyncio

from engine import VirtualClock


async def test_concurrent_loops_interleave_in_deadline_order_without_real_waiting() -> None:
    clock = VirtualClock()
    seen: list[tuple[float, str]] = []

    async def loop(name: str, period: float, ticks: int) -> None:
        for _ in range(ticks):
            seen.append((clock.now(), name))
            await clock.sleep(period)

    loop_started = asyncio.get_running_loop().time()
    await asyncio.gather(clock.spawn(loop("a", 30, 5)), clock.spawn(loop("b", 45, 4)))
    assert asyncio.get_running_loop().time() - loop_started < 1.0
    times = [t for t, _ in seen]
    assert times == sorted(times)
    assert seen[:4] == [(0, "a"), (0, "b"), (30, "a"), (45, "b")]
    assert clock.now() == 180  # b's last sleep ends at 4 * 45


async def test_time_does_not_jump_while_an_actor_is_busy() -> None:
    clock = VirtualClock()
    gate = asyncio.Event()
    woke_at: list[float] = []

    async def sleeper() -> None:
        await clock.sleep(60)
        woke_at.append(clock.now())

    async def busy() -> None:
        await gate.wait()  # not parked on the clock: time must stand still

    s, b = clock.spawn(sleeper()), clock.spawn(busy())
    for _ in range(5):
        await asyncio.sleep(0)
    assert clock.now() == 0 and not woke_at
    gate.set()
    await asyncio.gather(s, b)
    assert woke_at == [60]


async def test_manual_advance_wakes_due_sleepers() -> None:
    clock = VirtualClock()
    task = asyncio.ensure_future(clock.sleep(10))
    await asyncio.sleep(0)
    clock.advance(5)
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(5)
    await asyncio.sleep(0)
    assert task.done()
    assert clock.utcnow().isoformat().startswith("2026-01-01T00:00:10")
