"""A controller that stops in the middle of a promotion loses no progress.

The promotion copies the target to the primary and writes the phase Promoting. Copied first, a
controller that died between the two came back to Progressing with the primary already running
the new revision; a failing check then rolled back a release the primary served (Failed, new
version serving, the runbook's revert a no-op). Now the status is written first and Promoting
copies again: stopped at either point, the run ends Succeeded with the new revision promoted.
Against the test API server, with the controller's writes cut at the chosen point.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_controller_kube import (
    NAME,
    NS,
    V1,
    V2,
    World,
    alive,
    images,
    open_world,
    start,
)
from traffic import open_kube_cluster

Stop = Callable[[Any, Any, dict[str, Any]], bool]
V3 = "ghcr.io/example/webhook-server:1.2.0"


class StopsAfter:
    """The controller's cluster, whose writing task never comes back (a killed process) after
    the first write ``stop`` picks; every later write of that process is dropped too."""

    def __init__(self, inner: Any, world: World, stop: Stop) -> None:
        self._inner, self._world, self._stop = inner, world, stop
        self.stopped = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def patch(self, ref: Any, patch: Any, **kwargs: Any) -> Any:
        if self.stopped:
            await self._world.clock.wait(asyncio.get_running_loop().create_future())
        answer = await self._inner.patch(ref, patch, **kwargs)
        if self._stop(ref, patch, kwargs):
            self.stopped = True
            await self._world.clock.wait(asyncio.get_running_loop().create_future())
        return answer


def primary_copy(ref: Any, patch: Any, kwargs: dict[str, Any]) -> bool:
    return bool(ref.name == f"{NAME}-primary" and V2 in str(patch))


def promoting_written(ref: Any, patch: Any, kwargs: dict[str, Any]) -> bool:
    return bool(kwargs.get("status") and patch["status"].get("phase") == "Promoting")


def first_controller_stops(monkeypatch: pytest.MonkeyPatch, w: Any, stop: Stop) -> list[StopsAfter]:
    """The first controller started in ``w`` stops after the write ``stop`` picks; later ones
    run on. The list holds the first one's cluster once it has opened."""
    opened: list[StopsAfter] = []

    @asynccontextmanager
    async def first_one_stops(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        async with open_kube_cluster(*args, **kwargs) as inner:
            if opened:
                yield inner
                return
            opened.append(StopsAfter(inner, w, stop))
            yield opened[0]

    monkeypatch.setattr("engine.shell.run.open_kube_cluster", first_one_stops)
    return opened


@pytest.mark.parametrize("stop", [promoting_written, primary_copy])
async def test_a_controller_stopped_mid_promotion_finishes_it_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: Stop
) -> None:
    async with open_world(tmp_path) as w:
        opened = first_controller_stops(monkeypatch, w, stop)
        w.seed()
        run = await start(w)
        try:
            await w.time.run_until(lambda: w.phase() == "Initialized", also=alive(run))
            await w.set_image(NAME, V2)
            await w.time.run_until(lambda: opened[0].stopped, also=alive(run))
        finally:
            assert await run.shutdown() == 0
        # Back, the new revision's metrics are bad: the promotion was decided, so it finishes.
        w.prom.health = lambda namespace, target: False
        run = await start(w)
        try:
            await w.time.run_until(lambda: w.phase() in ("Succeeded", "Failed"), also=alive(run))
        finally:
            assert await run.shutdown() == 0
        status = w.status()
        assert status["phase"] == "Succeeded", w.messages()
        assert w.image(f"{NAME}-primary") == V2
        assert images(w, f"{NAME}-primary") == [V1, V2]
        assert status["lastPromotedSpec"] == status["lastAppliedSpec"]
        assert not any(m.startswith("Canary failed!") for m in w.messages())


async def test_a_release_pushed_while_a_stopped_promotion_was_uncopied_gets_its_own_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped after the Promoting status, before the copy, and a bad release pushed before the
    restart: the promoted revision is no longer in the target to be copied. The run restarts for
    the new one (as Flagger's would after a stop before its copy, which comes first there), which
    fails; the primary, still V1, is the promoted revision, and V2 is never announced promoted."""
    async with open_world(tmp_path) as w:
        opened = first_controller_stops(monkeypatch, w, promoting_written)
        w.seed()
        run = await start(w)
        try:
            await w.time.run_until(lambda: w.phase() == "Initialized", also=alive(run))
            await w.set_image(NAME, V2)
            await w.time.run_until(lambda: opened[0].stopped, also=alive(run))
        finally:
            assert await run.shutdown() == 0
        v2_hash = w.status()["lastAppliedSpec"]
        await w.set_image(NAME, V3)
        w.prom.health = lambda namespace, target: False
        run = await start(w)
        try:
            await w.time.run_until(lambda: w.phase() in ("Succeeded", "Failed"), also=alive(run))
        finally:
            assert await run.shutdown() == 0
        status = w.status()
        assert status["phase"] == "Failed", w.messages()
        assert images(w, f"{NAME}-primary") == [V1]
        assert status["lastPromotedSpec"] != v2_hash
        assert status["lastAppliedSpec"] not in (v2_hash, status["lastPromotedSpec"])
        assert not any(m.startswith("Promotion completed!") for m in w.messages())
        assert f"New revision detected! Restarting analysis for {NAME}.{NS}" in w.messages()
