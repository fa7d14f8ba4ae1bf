"""Value types and seams of the traffic layer.

Weights, Routes, Readiness, Revision, Router, Workload.

The traffic layer makes the cluster look like the engine asks ("route 95/5", "promote") and reports
what it sees; it never judges health. Routers and workloads receive a Cluster in their constructor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from config import TOTAL_WEIGHT, Canary


@dataclass(frozen=True, slots=True)
class Weights:
    """Traffic split in percent; primary + canary == 100. ``mirrored``: canary receives a mirror."""

    primary: int
    canary: int
    mirrored: bool = False

    def __post_init__(self) -> None:
        if self.primary < 0 or self.canary < 0 or self.primary + self.canary != TOTAL_WEIGHT:
            raise ValueError(
                f"weights must be non-negative and add up to {TOTAL_WEIGHT}, "
                f"got primary={self.primary} canary={self.canary}"
            )

    @classmethod
    def all_primary(cls) -> Weights:
        return cls(TOTAL_WEIGHT, 0)


@dataclass(frozen=True, slots=True)
class Routes:
    """What a router reports: the weights it was asked for (the source of truth for stepping, as
    Flagger's GetRoutes) and, for routers that can only approximate (the mesh-free replica split),
    the weights really achieved. ``achieved`` is None when routing is exact."""

    weights: Weights
    achieved: Weights | None = None

    @property
    def effective(self) -> Weights:
        return self.achieved or self.weights


@dataclass(frozen=True, slots=True)
class Readiness:
    """Workload readiness.

    ``retriable=False`` means the progress deadline is exceeded: roll back instead of waiting.
    ``message`` is the whole sentence the Warning event carries, naming the workload as Flagger's
    errors do (``<target>-primary.<ns> not ready: ...``, ``canary deployment <target>.<ns> not
    ready: ...``).
    """

    ready: bool
    retriable: bool = True
    message: str = ""


@dataclass(frozen=True, slots=True)
class Revision:
    """What identifies a release: the target pod-template hash and tracked config checksums."""

    spec_hash: str
    configs: dict[str, str] = field(default_factory=dict)


class Router(Protocol):
    """Routes traffic between ``<svc>-primary`` and ``<svc>-canary`` for one provider."""

    async def initialize(self, canary: Canary) -> None:
        """Create/update the ``-canary`` and ``-primary`` ClusterIP services (idempotent).

        The kubernetes router also labels the target's pod template here; call it before the
        workload's ``initialize`` so the primary inherits the label."""
        ...

    async def reconcile(self, canary: Canary) -> None:
        """Create/adopt the apex service and routing objects without disturbing current weights."""
        ...

    async def set_routes(self, canary: Canary, weights: Weights) -> None:
        """Route traffic as asked (idempotent)."""
        ...

    async def get_routes(self, canary: Canary) -> Routes:
        """Read the split back from the cluster (100/0 when routing objects are missing)."""
        ...

    async def finalize(self, canary: Canary) -> None:
        """Revert routing to the primary / the user's original objects (revertOnDeletion)."""
        ...


class ReplicaSplit(Protocol):
    """What a scalable workload offers a router that splits traffic by pod counts (the
    mesh-free ``kubernetes`` provider): the router decides counts and selectors, the workload
    owns the pods."""

    async def label_pods(self, canary: Canary, label: str, value: str) -> None:
        """Add ``label: value`` to the target's and the primary's pod templates."""
        ...

    async def primary_replicas(self, canary: Canary) -> int | None:
        """The primary's replicas (None when it does not exist yet)."""
        ...

    async def scale_canary(self, canary: Canary, replicas: int) -> None: ...

    async def selected_pods(self, canary: Canary, selector: Mapping[str, str]) -> tuple[int, int]:
        """(primary, canary) pods a Service with ``selector`` sends traffic to."""
        ...


class Workload(Protocol):
    """The target workload and its ``-primary`` copy (Deployments for now)."""

    async def revision(self, canary: Canary) -> Revision:
        """Hash of the target pod template (without labels canary-engine adds) and config checksums.
        Raises WorkloadError if the target is missing."""
        ...

    async def initialize(self, canary: Canary) -> None:
        """Create the primary Deployment, ``-primary`` ConfigMap/Secret copies and primary HPA
        when missing (Flagger's primary bootstrap, create-only)."""
        ...

    async def readiness(self, canary: Canary, *, primary: bool, now: datetime) -> Readiness:
        """Readiness of the primary (primary=True) or the target, per flagger-behaviour §2.9."""
        ...

    async def promote(self, canary: Canary) -> None:
        """Copy the target's template (and configs, HPA) to the primary. Idempotent per revision."""
        ...

    async def primary_runs(self, canary: Canary, revision: Revision) -> bool | None:
        """Whether the primary runs ``revision`` (``promote`` or the primary's creation copied
        it there); None when this workload cannot tell."""
        ...

    async def scale_to_zero(self, canary: Canary) -> None: ...

    async def scale_from_zero(self, canary: Canary) -> None: ...

    async def finalize(self, canary: Canary) -> None:
        """Scale the target back up to serve (revertOnDeletion)."""
        ...
