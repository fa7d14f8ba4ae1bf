"""Kubernetes Events written as client-go's EventRecorder writes them (Flagger records its events
through it): correlated, so a Canary with a lasting problem does not write a new Event object
every tick.

``EventCorrelator`` mirrors client-go's ``tools/record/events_cache.go`` (``NewEventCorrelator``,
the defaults Flagger's ``record.NewBroadcaster()`` uses):

* exact duplicates (same source, involved object, type, reason and message) update the Event
  first written for them: a PATCH of ``count`` (+1), ``lastTimestamp`` and ``message`` on the same
  name, ``firstTimestamp`` kept. As in client-go there is no time limit on this: the state lives
  until the LRU (4096 entries) drops it or the process restarts;
* similar events (same type and reason, different messages) are not combined into one
  "(combined from similar events)" Event, as client-go's ``EventAggregate`` would: every Canary's
  Reason is "Synced", so the Normal events of any rollout of ten steps or more would be written
  combined, and tools reading the messages back (``kubectl canary get``, ``report
  --from-cluster``) would see the prefix. The spam filter below already bounds a Canary whose
  message changes every tick;
* a spam filter per source + object: a token bucket of ``defaultSpamBurst`` = 25 that refills
  ``defaultSpamQPS`` = one token every 300 s. A filtered event is not written, but is counted in
  the count of its Event (client-go counts before filtering), so the next write carries it;
* a PATCH answered 404 (the Event was deleted, or expired after the API server's event TTL)
  creates the Event again under the same name, with the count and firstTimestamp it had.

Only the Event objects are correlated: the engine's own record of what happened (a tick's
``report.events``, simulate's timeline and JSON, event webhooks, logs) keeps every event.

The state is per controller process and per cluster (``correlator_for``), in memory, bounded;
times are the engine clock's (``Clock.now()``), so simulate's virtual clock drives it.
"""

from __future__ import annotations

import uuid
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog

from config import CanaryEngineError
from traffic import Cluster, NotFound, ObjectRef
from traffic.cluster import ReadBody

log = structlog.get_logger("canary-engine")

Body = dict[str, Any]

#: client-go ``maxLruCacheEntries``: entries of each of the three caches.
LRU_CACHE_ENTRIES = 4096
#: client-go ``defaultSpamBurst``: Event writes a source may burst about one object.
SPAM_BURST = 25
#: client-go ``defaultSpamQPS``: the refill rate of that budget (one write every 5 minutes).
SPAM_QPS = 1.0 / 300.0
K = TypeVar("K")
V = TypeVar("V")


class _Lru(Generic[K, V]):
    """groupcache's ``lru.Cache``: get and add make an entry the newest; the oldest is dropped."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def add(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


@dataclass(slots=True)
class _Bucket:
    """A token bucket (golang.org/x/time/rate, as flowcontrol's): starts full."""

    tokens: float
    at: float


@dataclass(slots=True)
class _Seen:
    """client-go's ``eventLog``: the Event written for a key."""

    count: int
    first_timestamp: str
    name: str


@dataclass(frozen=True, slots=True)
class EventWrite:
    """What to write for one event: the Event (``body``, for a create) and, when an Event for it
    exists already, the ``patch`` that updates it."""

    body: Body
    patch: Body | None


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def _spam_key(event: ReadBody) -> tuple[str, ...]:
    about, source = event.get("involvedObject") or {}, event.get("source") or {}
    return (
        _s(source.get("component")),
        _s(source.get("host")),
        _s(about.get("kind")),
        _s(about.get("namespace")),
        _s(about.get("name")),
        _s(about.get("uid")),
        _s(about.get("apiVersion")),
    )


def _seen_of(event: ReadBody, count: int) -> _Seen:
    """What is remembered of the Event written (or stored) for a key."""
    name = _s((event.get("metadata") or {}).get("name"))
    return _Seen(count=count, first_timestamp=_s(event.get("firstTimestamp")), name=name)


def _event_key(event: ReadBody) -> tuple[str, ...]:
    # getEventKey: source, object, type, reason, fieldPath and message.
    about = event.get("involvedObject") or {}
    return (
        *_spam_key(event),
        _s(event.get("type")),
        _s(event.get("reason")),
        _s(about.get("fieldPath")),
        _s(event.get("message")),
    )


def event_name(involved: str) -> str:
    """A new Event's name, "<involved object>.<16 hex>" as client-go's; random, so an event
    re-recorded within the same second cannot collide with (and lose) an earlier one."""
    return f"{involved}.{uuid.uuid4().hex[:16]}"


class EventCorrelator:
    """client-go's ``EventCorrelator`` with its defaults (see the module docstring)."""

    def __init__(
        self,
        *,
        cache_size: int = LRU_CACHE_ENTRIES,
        burst: int = SPAM_BURST,
        qps: float = SPAM_QPS,
    ) -> None:
        self._burst, self._qps = burst, qps
        self._spam: _Lru[tuple[str, ...], _Bucket] = _Lru(cache_size)
        self._seen: _Lru[tuple[str, ...], _Seen] = _Lru(cache_size)

    def correlate(self, event: Body, now: float) -> EventWrite | None:
        """What to write for ``event`` (a complete new Event, count 1) at clock time ``now``;
        None when the spam filter drops it. ``EventCorrelate``: observe, filter (no aggregation:
        see the module docstring)."""
        write = self._observe(event, _event_key(event))
        return None if self._filtered(event, now) else write

    def update_state(self, stored: ReadBody) -> None:
        """Learn the Event as the API server stored it (``UpdateState``)."""
        key = _event_key(stored)
        count = stored.get("count")
        self._seen.add(key, _seen_of(stored, count if isinstance(count, int) and count > 0 else 1))

    def _observe(self, event: Body, key: tuple[str, ...]) -> EventWrite:
        """``eventObserve``: a create for a first occurrence, else the patch of the Event written
        for it (same name, firstTimestamp kept, count + 1)."""
        seen = self._seen.get(key)
        patch: Body | None = None
        if seen is not None:
            event = {
                **event,
                "metadata": {**(event.get("metadata") or {}), "name": seen.name},
                "firstTimestamp": seen.first_timestamp or event.get("firstTimestamp"),
                "count": seen.count + 1,
            }
            # client-go's two-way patch from (count 0, lastTimestamp 0, message "") to the event
            patch = {
                "count": event["count"],
                "lastTimestamp": event.get("lastTimestamp"),
                "message": event.get("message"),
            }
        self._seen.add(key, _seen_of(event, int(event.get("count") or 1)))
        return EventWrite(body=event, patch=patch)

    def _filtered(self, event: Body, now: float) -> bool:
        """``EventSourceObjectSpamFilter.Filter``: True when the source + object is over its
        budget."""
        key = _spam_key(event)
        bucket = self._spam.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=float(self._burst), at=now)
        bucket.tokens = min(float(self._burst), bucket.tokens + (now - bucket.at) * self._qps)
        bucket.at = max(bucket.at, now)
        accepted = bucket.tokens >= 1.0
        if accepted:
            bucket.tokens -= 1.0
        self._spam.add(key, bucket)
        return not accepted


#: One correlator per cluster the process writes Events to (client-go: one per broadcaster).
_CORRELATORS: weakref.WeakKeyDictionary[Any, EventCorrelator] = weakref.WeakKeyDictionary()


def correlator_for(cluster: Cluster) -> EventCorrelator:
    """The correlator of the Events written to ``cluster`` (created on first use, and gone with
    the cluster)."""
    found = _CORRELATORS.get(cluster)
    if found is None:
        found = _CORRELATORS[cluster] = EventCorrelator()
    return found


async def write_event(cluster: Cluster, event: Body, now: float) -> None:
    """Write ``event`` (a complete new Event, count 1) as client-go's recorder would: correlated
    (see the module docstring). Errors are logged, never raised (an Event is best effort)."""
    correlator = correlator_for(cluster)
    write = correlator.correlate(event, now)
    if write is None:
        log.debug("event_throttled", message=event.get("message"))
        return
    body = write.body
    try:
        stored: ReadBody | None = None
        if write.patch is not None:
            ref = ObjectRef.of(body)
            try:
                stored = await cluster.patch(ref, write.patch)
            except NotFound:
                stored = None  # deleted (or expired): written again below, as client-go does
        if stored is None:
            stored = await cluster.create(body)
        correlator.update_state(stored)
    except CanaryEngineError as exc:
        log.warning("event_not_recorded", error=str(exc))
