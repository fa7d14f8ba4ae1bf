"""``run --shards N --shard-index I``: each Canary is driven by exactly one shard, the same one in
every replica and release, and each shard's replicas compete for their own Lease."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter

import pytest

from config import SpecError
from engine.cli import main
from engine.shell.controller import Controller, ControllerOptions
from engine.shell.leader import DEFAULT_LEASE_NAME
from engine.shell.shards import Shard, shard_of
from tests.engine.test_controller import NS, Harness, canary_body, deployment
from traffic import CANARY, ObjectRef


def test_every_canary_belongs_to_exactly_one_shard_and_shards_are_balanced() -> None:
    names = [("ns-" + str(i % 7), f"app-{i}") for i in range(4000)]
    shards = [Shard(4, i) for i in range(4)]
    owners = [sum(s.owns(ns, name) for s in shards) for ns, name in names]
    assert set(owners) == {1}
    sizes = Counter(shard_of(ns, name, 4) for ns, name in names)
    assert min(sizes.values()) > 0.8 * 1000 and max(sizes.values()) < 1.2 * 1000


def test_the_assignment_is_stable_across_processes_and_versions() -> None:
    # SHA-256 of "namespace/name", not Python's per-process randomised hash(): replicas started
    # at different times, or running different releases, agree on who drives a Canary.
    assert [shard_of("staging", "webhook-server", 2), shard_of("staging", "claude-runner", 2)] == [
        0,
        1,
    ]
    assert Shard(1, 0).owns("any", "canary")


def test_each_shard_has_its_own_lease() -> None:
    assert Shard().lease_name(DEFAULT_LEASE_NAME) == DEFAULT_LEASE_NAME  # one process: unchanged
    assert Shard(3, 1).lease_name(DEFAULT_LEASE_NAME) == f"{DEFAULT_LEASE_NAME}-shard-1-of-3"


@pytest.mark.parametrize(
    ("count", "index", "text"),
    [
        (0, 0, "--shards: must be at least 1, got 0"),
        (2, 2, "--shard-index: must be 0..1 with --shards 2, got 2"),
        (2, -1, "--shard-index: must be 0..1 with --shards 2, got -1"),
    ],
)
def test_bad_shard_options_name_the_flag(count: int, index: int, text: str) -> None:
    with pytest.raises(SpecError, match=text):
        Shard(count, index)


def test_run_refuses_bad_shard_options_before_connecting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["run", "--shards", "2", "--shard-index", "5", "--kubeconfig", "/nonexistent"])
    assert code == 2
    assert "--shard-index: must be 0..1 with --shards 2, got 5" in capsys.readouterr().err


async def test_two_shards_over_one_cluster_drive_each_canary_once() -> None:
    h = Harness()
    names = [f"app-{i}" for i in range(12)]
    for name in names:
        h.cluster.seed(deployment(name), canary_body(name))
    shards = [
        Controller(h.deps, ControllerOptions(jitter=0.0, shard=Shard(2, i)), metrics=h.metrics)
        for i in range(2)
    ]
    runners = [asyncio.ensure_future(c.run()) for c in shards]
    try:

        async def until_initialized() -> None:
            while any(h.phase(n) != "Initialized" for n in names):
                await h.clock.sleep(1)

        await h.clock.spawn(until_initialized())
        driven = [{ref.name for ref in c.running} for c in shards]
    finally:
        for runner in runners:
            runner.cancel()
        await asyncio.gather(*runners, return_exceptions=True)
    assert driven[0] | driven[1] == set(names)
    assert not driven[0] & driven[1]
    assert all(driven)  # both shards got some
    for i, owned in enumerate(driven):
        assert owned == {n for n in names if shard_of(NS, n, 2) == i}
    assert h.cluster.peek(ObjectRef(CANARY, NS, names[0])) is not None


async def first_tick_times(spread: float, names: list[str]) -> list[float]:
    """Start a controller over Canaries already Initialized and return when each first ticked."""
    h = Harness()
    for name in names:
        h.cluster.seed(deployment(name), canary_body(name))
    await h.run_until(lambda: all(h.phase(n) == "Initialized" for n in names))
    ticked: dict[str, float] = {}
    original = h.deps.on_tick

    def on_tick(canary: object, report: object) -> None:
        name = canary.metadata.name
        ticked.setdefault(name, h.clock.now())
        if original is not None:
            original(canary, report)  # type: ignore[arg-type]

    deps = dataclasses.replace(h.deps, on_tick=on_tick)
    h.controller = Controller(
        deps, ControllerOptions(jitter=0.0, startup_spread=spread), metrics=h.metrics
    )
    start = h.clock.now()
    await h.run_until(lambda: len(ticked) == len(names), limit=600)
    return sorted(t - start for t in ticked.values())


async def test_a_restarted_controller_spreads_its_first_ticks_over_the_startup_spread() -> None:
    names = [f"app-{i}" for i in range(30)]
    at_once = await first_tick_times(0.0, names)
    assert at_once[-1] <= 1  # Flagger's behaviour: every canary ticks as soon as it is seen
    spread = await first_tick_times(60.0, names)
    assert spread[-1] <= 61
    assert len({round(t) for t in spread}) > 10  # not one burst, but over the minute
    assert sum(1 for t in spread if t >= 30) >= 5
