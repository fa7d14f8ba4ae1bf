"""The soak at test size (benchmarks/soak.py runs it at 1,000 canaries): 100 canaries released
six times each under every injected fault, on virtual time; ~15 s of CPU.

What a user would notice is asserted: every rollout ends Succeeded or Failed; a bad release is
never promoted, nor any release on a tick with a failing, missing or garbage metric answer or
before the analyses its steps need; the primary runs what the outcome says; the controller's
memory does not grow at steady state. The faults are checked to have happened, so the run
cannot pass by not injecting them.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from _soak import SoakConfig, SoakResult, run_soak
from _soak_faults import FaultRates

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

#: Every kind of fault the injectors know.
FAULT_KINDS = {
    "api 429",
    "api 500",
    "api 500 after the write",
    "api 409",
    "watch dropped",
    "prometheus down (periods)",
    "prometheus down (answers)",
    "metric no data",
    "metric garbage",
    "webhook hung until its timeout",
    "webhook 500",
}


@pytest.fixture(scope="module")
def soak() -> SoakResult:
    config = SoakConfig(
        canaries=100,
        releases=6,
        stagger=10,
        sample_every=3,
        # Prometheus goes down every ~15 minutes, so a short run sees it flap a few times
        rates=FaultRates(prometheus_up=900.0),
        seed=7,
    )
    return asyncio.run(run_soak(config))


def test_every_rollout_is_decided(soak: SoakResult) -> None:
    assert soak.undecided == []
    assert sum(soak.releases.values()) == 600
    assert soak.decided == 600
    # the faults slow rollouts down, none stalls one
    assert soak.decision_ticks_max < 50


def test_no_release_is_promoted_without_its_passing_analyses(soak: SoakResult) -> None:
    assert soak.violations == []
    assert soak.decisions["bad promoted"] == 0
    assert soak.decisions["bad rolled back"] == soak.releases["bad"]
    # the faults cost some good releases (5 failed checks), not most of them
    assert soak.decisions["good promoted"] >= 0.9 * soak.releases["good"]
    assert soak.promotions >= soak.decisions["good promoted"]


def test_every_kind_of_fault_was_injected(soak: SoakResult) -> None:
    assert set(soak.faults) == FAULT_KINDS, soak.faults
    # the controller opened the Canary watch again after it dropped
    assert soak.watches > soak.faults["watch dropped"] > 0
    assert soak.tick_errors > 0


def test_memory_is_flat_at_steady_state(soak: SoakResult) -> None:
    growth = soak.memory_growth()
    assert growth.samples >= 8, soak.memory
    assert growth.ticks >= 3000
    assert growth.blocks < 0.02, growth
    assert growth.rss < 0.05, growth
