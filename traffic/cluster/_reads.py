"""What a piece of work read from a cache-backed cluster, to tell later whether any of it changed.

A controller tick of a Canary at rest (Initialized, Succeeded, Failed) reads some twenty cached
objects and, when none of them has changed since its last tick, decides exactly the same again:
nothing to write, nothing to say. ``KubeCluster.track_reads()`` records, for the work running
in the current task (a context variable, so concurrent ticks do not mix), which cached object it
read and which version of it the cache held (the stored body's identity: the cache replaces a
body on every change and never mutates one), and which cached collections it listed (a change
counter per cache). ``ReadLog.unchanged()`` then answers in a few microseconds, without copying
anything, whether the next tick may be skipped.

It is conservative by construction: a read the cache could not answer (an uncached kind such as
a Secret, or a cache that had not synced), any write, or a cache that stops being in sync makes
the log answer "changed", so the work runs again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import Protocol, runtime_checkable

#: A check that the cache still holds what was read: True while nothing changed.
Probe = Callable[[], bool]

_CURRENT: ContextVar[ReadLog | None] = ContextVar("canary_engine_read_log", default=None)


class ReadLog:
    """The cached reads and the writes of one piece of work (see the module docstring)."""

    __slots__ = ("_probes", "complete", "wrote")

    def __init__(self) -> None:
        self._probes: list[Probe] = []
        #: False when something was read from the API server rather than from the cache.
        self.complete = True
        #: True when the work wrote to the cluster.
        self.wrote = False

    def note(self, probe: Probe) -> None:
        self._probes.append(probe)

    def unchanged(self) -> bool:
        """True when every read came from the cache, nothing was written, and the cache still
        holds exactly what was read."""
        return self.complete and not self.wrote and all(probe() for probe in self._probes)


def current_read_log() -> ReadLog | None:
    """The log of the work running in this task, if it is being tracked."""
    return _CURRENT.get()


@contextmanager
def tracking_reads() -> Iterator[ReadLog]:
    """Record the reads and writes of the work run inside the block (in this task and the
    tasks it starts)."""
    log = ReadLog()
    token = _CURRENT.set(log)
    try:
        yield log
    finally:
        _CURRENT.reset(token)


@runtime_checkable
class TracksReads(Protocol):
    """A cluster that can say whether what some work read has changed since (``KubeCluster``)."""

    def track_reads(self) -> AbstractContextManager[ReadLog]: ...
