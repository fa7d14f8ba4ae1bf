"""Spread a fleet of Canaries over several controller processes: ``run --shards N --shard-index I``.

Each Canary belongs to exactly one shard, by a stable hash of ``namespace/name`` (SHA-256, so every
replica and every version agrees, unlike Python's randomised ``hash``); a controller drives only
the Canaries of its shard, so no analysis ever runs in two shards. With ``--leader-elect`` each
shard has its own Lease (``canary-engine-leader-election-shard-I-of-N``): run two replicas per
shard index and the standby takes a dead replica's shard over within the lease duration.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from config import Problem, SpecError


@dataclass(frozen=True, slots=True)
class Shard:
    """This process's share of the fleet: shard ``index`` of ``count`` (0-based)."""

    count: int = 1
    index: int = 0

    def __post_init__(self) -> None:
        if self.count < 1:
            raise SpecError(Problem("--shards", f"must be at least 1, got {self.count}"))
        if not 0 <= self.index < self.count:
            raise SpecError(
                Problem(
                    "--shard-index",
                    f"must be 0..{self.count - 1} with --shards {self.count}, got {self.index}",
                )
            )

    def owns(self, namespace: str, name: str) -> bool:
        """Whether the Canary ``namespace/name`` is driven by this shard."""
        if self.count == 1:
            return True
        return shard_of(namespace, name, self.count) == self.index

    def lease_name(self, base: str) -> str:
        """The Lease this shard's replicas compete for (the base name with one shard)."""
        return base if self.count == 1 else f"{base}-shard-{self.index}-of-{self.count}"


def shard_of(namespace: str, name: str, count: int) -> int:
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count
