"""Leader election on a ``coordination.k8s.io/v1`` Lease, so several replicas can run safely.

Only the holder acts. The algorithm is client-go's: a candidate takes the Lease when it does not
exist or when its record has not changed for ``lease_duration`` *by the candidate's own clock*
(robust to clock skew between nodes); the holder renews every ``retry_period`` and gives up if it
could not renew within ``renew_deadline``. Every write carries the resourceVersion it read, so two
candidates can never both win. Losing leadership cancels the work (Flagger exits the process; the
caller decides).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import anyio
import structlog

from config import CanaryEngineError
from engine.shell.clock import Clock, micro_stamp
from traffic import LEASE, Cluster, Conflict, ObjectRef

#: The Lease the replicas of one controller (or of one shard, suffixed) compete for.
DEFAULT_LEASE_NAME = "canary-engine-leader-election"
#: Longest a stopping leader spends handing its Lease back (real seconds; best effort).
RELEASE_TIMEOUT = 5.0

log = structlog.get_logger("canary-engine")


class LostLeadership(CanaryEngineError):
    """The lease could not be renewed in time; the work was stopped."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseConfig:
    namespace: str
    name: str = DEFAULT_LEASE_NAME
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    #: Give the Lease up when the work is cancelled (a graceful stop, after the work has
    #: stopped), so a standby takes over at its next retry instead of after a lease duration
    #: (client-go's ReleaseOnCancel). Off: a cancelled elector behaves like a crashed process.
    release_on_cancel: bool = False

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > 1.2 * self.retry_period:
            raise ValueError(
                "leader election needs lease_duration > renew_deadline > 1.2 × retry_period"
            )


class LeaderElector:
    def __init__(self, cluster: Cluster, clock: Clock, config: LeaseConfig) -> None:
        self._cluster = cluster
        self._clock = clock
        self._config = config
        self._ref = ObjectRef(LEASE, config.namespace, config.name)
        self._observed: tuple[str, float] | None = None  # (record fingerprint, when first seen)
        self.is_leader = False

    async def run(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Wait until elected, then run ``work`` while renewing; raise LostLeadership on loss."""
        while True:
            # A renewal counts from when it was sent, not when its answer came back: the standby
            # counts the lease from the record it saw, so a slow answer must not push this
            # replica's deadline past the standby's takeover (both would act at once).
            attempt_at = self._clock.now()
            if await self.try_acquire_or_renew():
                break
            await self._clock.sleep(self._config.retry_period)
        log.info("leader_elected", identity=self._config.identity, lease=str(self._ref))
        self.is_leader = True
        # The work is not a clock actor: it waits on watches; its own tasks register themselves.
        work_task: asyncio.Task[None] = asyncio.ensure_future(work())
        release = False
        try:
            last_renew = attempt_at
            while not work_task.done():
                # Sleep on the clock (not asyncio.wait with a timeout) so virtual time works;
                # a finished work task is noticed within one retry period.
                await self._clock.sleep(self._config.retry_period)
                if work_task.done():
                    break
                attempt_at = self._clock.now()
                left = self._config.renew_deadline - (attempt_at - last_renew)
                if left > 0 and await self._renew_within(left):
                    last_renew = attempt_at
                elif self._clock.now() - last_renew >= self._config.renew_deadline:
                    raise LostLeadership(f"could not renew lease {self._ref} in time")
            await work_task
        except asyncio.CancelledError:
            release = self._config.release_on_cancel
            raise
        finally:
            self.is_leader = False
            # Shielded: when the process's task group is cancelled (SIGTERM), these awaits must
            # still run (anyio's cancellation would otherwise cancel every await here too).
            with anyio.CancelScope(shield=True):
                if not work_task.done():
                    work_task.cancel()
                    await asyncio.gather(work_task, return_exceptions=True)
                if release:
                    with anyio.move_on_after(RELEASE_TIMEOUT):
                        await self._release()

    async def _renew_within(self, seconds: float) -> bool:
        """``try_acquire_or_renew`` given up after ``seconds`` of clock time: a request that
        hangs must not keep this replica acting past its renew deadline, when a standby may
        already have taken the Lease over (client-go bounds renewals the same way)."""
        attempt = asyncio.ensure_future(self.try_acquire_or_renew())
        timer = asyncio.ensure_future(self._clock.sleep(seconds))
        try:
            await asyncio.wait({attempt, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (attempt, timer):
                task.cancel()
            await asyncio.gather(attempt, timer, return_exceptions=True)
        return not attempt.cancelled() and attempt.result()

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True when we hold the lease afterwards."""
        cfg = self._config
        now_text = micro_stamp(self._clock)
        try:
            lease = await self._cluster.get(self._ref)
            if lease is None:
                await self._cluster.create(self._new_lease(now_text))
                return True
            spec: dict[str, Any] = lease.get("spec") or {}
            holder = spec.get("holderIdentity")
            version = (lease.get("metadata") or {}).get("resourceVersion")
            if holder != cfg.identity and not self._expired(spec):
                return False
            patch: dict[str, Any] = {
                "spec": {"renewTime": now_text, "holderIdentity": cfg.identity}
            }
            if holder != cfg.identity:
                patch["spec"].update(
                    acquireTime=now_text,
                    leaseDurationSeconds=int(cfg.lease_duration),
                    leaseTransitions=int(spec.get("leaseTransitions") or 0) + 1,
                )
            await self._cluster.patch(self._ref, patch, expect_version=version)
            return True
        except Conflict:
            return False  # someone else wrote first; look again next period
        except CanaryEngineError as exc:
            log.warning("lease_unavailable", error=str(exc))
            return False

    async def _release(self) -> None:
        """Hand the Lease back (holder ``""``, duration 1 s) if we still hold it; best effort."""
        now_text = micro_stamp(self._clock)
        try:
            lease = await self._cluster.get(self._ref)
            spec: dict[str, Any] = (lease or {}).get("spec") or {}
            if lease is None or spec.get("holderIdentity") != self._config.identity:
                return
            patch = {
                "spec": {
                    "holderIdentity": "",
                    "leaseDurationSeconds": 1,
                    "acquireTime": now_text,
                    "renewTime": now_text,
                }
            }
            version = (lease.get("metadata") or {}).get("resourceVersion")
            await self._cluster.patch(self._ref, patch, expect_version=version)
            log.info("leader_released", identity=self._config.identity, lease=str(self._ref))
        except CanaryEngineError as exc:
            log.warning("lease_not_released", error=str(exc))

    def _expired(self, spec: dict[str, Any]) -> bool:
        fingerprint = (
            f"{spec.get('holderIdentity')}|{spec.get('renewTime')}|{spec.get('leaseTransitions')}"
        )
        now = self._clock.now()
        if self._observed is None or self._observed[0] != fingerprint:
            self._observed = (fingerprint, now)
            return not spec.get("holderIdentity")
        duration = float(spec.get("leaseDurationSeconds") or self._config.lease_duration)
        return now - self._observed[1] > duration

    def _new_lease(self, now_text: str) -> dict[str, Any]:
        cfg = self._config
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": cfg.name, "namespace": cfg.namespace},
            "spec": {
                "holderIdentity": cfg.identity,
                "leaseDurationSeconds": int(cfg.lease_duration),
                "acquireTime": now_text,
                "renewTime": now_text,
                "leaseTransitions": 0,
            },
        }
