"""Errors of the Cluster seam: NotFound, Forbidden, Conflict, ClusterUnavailable (all
ClusterError)."""

from __future__ import annotations

from config import CanaryEngineError


class ClusterError(CanaryEngineError):
    """Root of the Cluster seam's errors; third-party client errors are translated into these."""


class NotFound(ClusterError):
    """The object does not exist."""


class Forbidden(ClusterError):
    """The API server refused the request to this user (403: RBAC)."""


class Conflict(ClusterError):
    """Stale resourceVersion on write, or the object already exists on create.

    Retry after re-reading the object.
    """


class ClusterUnavailable(ClusterError):
    """Transport error, 5xx or 429: transient, retried next tick, never a failed check."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        #: Seconds the server asked to wait before trying again (its Retry-After), if any.
        self.retry_after = retry_after
