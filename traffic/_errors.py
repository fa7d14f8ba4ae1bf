"""Errors of the traffic layer.

Tree (all derive from ``config.CanaryEngineError``)::

    CanaryEngineError
    ├── RoutingError     routing objects missing, malformed, or not accepted by their controller
    ├── WorkloadError    target/primary workload missing or unusable (selector, configs, HPA)
    └── ClusterError     (traffic.cluster) NotFound, Conflict, ClusterUnavailable

Unsupported-but-valid Flagger input (a provider no router serves, a target kind) raises
``config.NotSupportedError`` instead. The engine treats RoutingError and WorkloadError as "warn
and retry next tick": they are never failed checks.
"""

from __future__ import annotations

from config import CanaryEngineError


class RoutingError(CanaryEngineError):
    """Routing could not be read or made as asked; the message names the object and namespace."""


class WorkloadError(CanaryEngineError):
    """The target or primary workload (or a config it references) is missing or unusable."""
