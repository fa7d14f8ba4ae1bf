"""Fault injectors for the soak (benchmarks/soak.py, tests/engine/test_soak.py).

Three stand-ins for the controller's seams, each misbehaving at a configurable rate and counting
what it injected (``FaultLog``), all on the engine's virtual clock so a day of faults runs in
seconds:

* ``FaultyCluster`` wraps an ``InMemoryCluster``: 429 and 500 answers (``ClusterUnavailable``,
  the Cluster protocol's error for both) before any request, a 500 *after* a write went through
  (the answer was lost, the write was not), 409 conflicts made the honest way (another writer
  touches the object just before a write that carries a ``resourceVersion`` precondition, so the
  store itself refuses it), and watches dropped mid-stream (``ClusterUnavailable``, as
  ``KubeCluster.watch`` raises when its cache stops) that the controller has to re-establish.
  Events expire after ``event_ttl`` like the API server's ``--event-ttl`` (1 h), otherwise the
  store -- not the engine -- would grow for ever.
* ``FaultyMetrics`` answers the builtin checks with healthy or bad values depending on the
  release the canary runs, through a Prometheus that flaps (down for minutes at a time: every
  answer a transport failure) and that sometimes answers no data or garbage: +Inf / -Inf (each
  on the side a one-sided bound would wave through), NaN, values a source bug could leak (a
  string, a bool, None) and the failures the Prometheus adapter reports for a body that is not
  a Prometheus answer. It remembers, per canary, what kind of answers it gave last.
* ``FaultyWebhooks`` answers every hook 2xx, except that some calls hang until the hook's timeout
  and some fail with a 500.
"""

from __future__ import annotations

import math
import random
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from analysis import (
    CheckKind,
    FailureKind,
    HookOutcome,
    MetricQuery,
    QueryFailure,
)
from config import Webhook
from engine import Clock
from traffic import (
    EVENT,
    Body,
    ClusterUnavailable,
    InMemoryCluster,
    Kind,
    ObjectRef,
    WatchEvent,
)

#: Annotation another writer bumps to make a write with a resourceVersion precondition conflict.
TOUCH_ANNOTATION = "soak.canary-engine.io/touched"


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultRates:
    """Probabilities per request / answer / call (and the flapping Prometheus' mean periods)."""

    throttled: float = 0.005  # 429 before any API request
    server_error: float = 0.005  # 500 before any API request
    lost_answer: float = 0.002  # 500 after a write was applied
    conflict: float = 0.05  # 409 on a write with a resourceVersion precondition
    watch_drop: float = 0.001  # per watch event delivered
    no_data: float = 0.03  # per metric answer
    garbage: float = 0.03  # per metric answer
    prometheus_up: float = 3600.0  # mean seconds Prometheus stays up ...
    prometheus_down: float = 120.0  # ... and down (every answer a transport failure)
    hook_hang: float = 0.02  # a webhook call hangs until its timeout
    hook_error: float = 0.02  # a webhook call answers 500

    @classmethod
    def none(cls) -> FaultRates:
        return cls(
            throttled=0,
            server_error=0,
            lost_answer=0,
            conflict=0,
            watch_drop=0,
            no_data=0,
            garbage=0,
            prometheus_up=math.inf,
            hook_hang=0,
            hook_error=0,
        )


@dataclass(slots=True)
class FaultLog:
    """How many faults of each kind were injected."""

    counts: Counter[str] = field(default_factory=Counter)

    def add(self, kind: str) -> None:
        self.counts[kind] += 1


# ---------------------------------------------------------------------------------------------
# The Kubernetes API
# ---------------------------------------------------------------------------------------------


class FaultyCluster:
    """The Cluster protocol over an ``InMemoryCluster``, with API faults (module docstring)."""

    def __init__(
        self,
        inner: InMemoryCluster,
        clock: Clock,
        *,
        rates: FaultRates,
        faults: FaultLog,
        rng: random.Random,
        event_ttl: float = 3600.0,
    ) -> None:
        self.inner = inner
        self._clock = clock
        self._rates = rates
        self._faults = faults
        self._rng = rng
        self._event_ttl = event_ttl
        self._events: deque[tuple[float, ObjectRef]] = deque()
        self._touches = 0
        #: Watches opened (the first, and every one opened again after a drop).
        self.watches = 0

    def _maybe_fail(self, verb: str, what: object) -> None:
        roll = self._rng.random()
        if roll < self._rates.throttled:
            self._faults.add("api 429")
            raise ClusterUnavailable(f"{verb} {what}: the server is overloaded (HTTP 429)")
        if roll < self._rates.throttled + self._rates.server_error:
            self._faults.add("api 500")
            raise ClusterUnavailable(f"{verb} {what}: internal error (HTTP 500)")

    def _maybe_lose_answer(self, verb: str, what: object) -> None:
        if self._rng.random() < self._rates.lost_answer:
            self._faults.add("api 500 after the write")
            raise ClusterUnavailable(f"{verb} {what}: the answer was lost (HTTP 500)")

    async def get(self, ref: ObjectRef, *, fresh: bool = False) -> Body | None:
        self._maybe_fail("get", ref)
        return await self.inner.get(ref, fresh=fresh)

    async def list(
        self, kind: Kind, namespace: str | None, *, labels: Mapping[str, str] | None = None
    ) -> list[Body]:
        self._maybe_fail("list", kind.plural)
        return await self.inner.list(kind, namespace, labels=labels)

    async def create(self, body: Body) -> Body:
        self._maybe_fail("create", body.get("kind"))
        created = await self.inner.create(body)
        ref = ObjectRef.of(created)
        if ref.kind == EVENT:
            self._events.append((self._clock.now(), ref))
            await self._expire_events()
        self._maybe_lose_answer("create", ref)
        return created

    async def patch(
        self,
        ref: ObjectRef,
        patch: Body,
        *,
        status: bool = False,
        expect_version: str | None = None,
    ) -> Body:
        self._maybe_fail("patch", ref)
        if expect_version is not None and self._rng.random() < self._rates.conflict:
            # Another writer got there first: the store refuses the stale precondition itself.
            self._faults.add("api 409")
            self._touches += 1
            await self.inner.patch(
                ref, {"metadata": {"annotations": {TOUCH_ANNOTATION: str(self._touches)}}}
            )
        updated = await self.inner.patch(ref, patch, status=status, expect_version=expect_version)
        self._maybe_lose_answer("patch", ref)
        return updated

    async def delete(self, ref: ObjectRef) -> None:
        self._maybe_fail("delete", ref)
        await self.inner.delete(ref)

    async def watch(self, kind: Kind, namespace: str | None) -> AsyncIterator[WatchEvent]:
        self._maybe_fail("watch", kind.plural)
        self.watches += 1
        stream = self.inner.watch(kind, namespace)
        try:
            async for event in stream:
                if self._rng.random() < self._rates.watch_drop:
                    self._faults.add("watch dropped")
                    raise ClusterUnavailable(f"watch {kind.plural}: the connection was reset")
                yield event
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    async def _expire_events(self) -> None:
        horizon = self._clock.now() - self._event_ttl
        while self._events and self._events[0][0] < horizon:
            _, ref = self._events.popleft()
            await self.inner.delete(ref)


# ---------------------------------------------------------------------------------------------
# Prometheus
# ---------------------------------------------------------------------------------------------

Answer = Literal["healthy", "bad", "faulty"]

#: What a healthy and a bad release measure (success rate in percent, duration in ms).
HEALTHY = {CheckKind.SUCCESS_RATE: (99.5, 100.0), CheckKind.DURATION: (80.0, 300.0)}
BAD = {CheckKind.SUCCESS_RATE: (70.0, 97.0), CheckKind.DURATION: (600.0, 3000.0)}


class FaultyMetrics:
    """A MetricSource for the builtin checks, flapping and answering garbage (module docstring).

    ``is_good(canary)`` tells whether the release a canary ("<namespace>/<name>") runs now is a
    healthy one. ``last[canary]`` is the kind of answers its last fetch got: ``healthy`` (every
    value a healthy release's), ``bad`` (a bad release's values, no fault) or ``faulty``."""

    def __init__(
        self,
        clock: Clock,
        is_good: Callable[[str], bool],
        *,
        rates: FaultRates,
        faults: FaultLog,
        rng: random.Random,
    ) -> None:
        self._clock = clock
        self._is_good = is_good
        self._rates = rates
        self._faults = faults
        self._rng = rng
        self._up = True
        self._flip_at = self._next_flip()
        self.last: dict[str, Answer] = {}

    def _next_flip(self) -> float:
        mean = self._rates.prometheus_up if self._up else self._rates.prometheus_down
        return self._clock.now() + (self._rng.expovariate(1 / mean) if mean < math.inf else mean)

    def _available(self) -> bool:
        while self._clock.now() >= self._flip_at:
            self._up = not self._up
            self._flip_at = self._next_flip()
            if not self._up:
                self._faults.add("prometheus down (periods)")
        return self._up

    async def fetch(self, queries: Sequence[MetricQuery]) -> list[float | QueryFailure]:
        up = self._available()
        answers: list[float | QueryFailure] = []
        kinds: dict[str, Answer] = {}
        for query in queries:
            good = self._is_good(query.canary)
            answer, faulty = self._answer(query, good, up)
            answers.append(answer)
            seen: Answer = "faulty" if faulty else ("healthy" if good else "bad")
            if kinds.get(query.canary, "healthy") == "healthy" or seen == "faulty":
                kinds[query.canary] = seen
        self.last.update(kinds)
        return answers  # garbage of other types is deliberate: see _garbage

    def _answer(self, query: MetricQuery, good: bool, up: bool) -> tuple[Any, bool]:
        if not up:
            self._faults.add("prometheus down (answers)")
            return QueryFailure(FailureKind.TRANSPORT, "dial tcp 10.0.0.9:9090: refused"), True
        roll = self._rng.random()
        if roll < self._rates.no_data:
            self._faults.add("metric no data")
            nothing = math.nan if self._rng.random() < 0.5 else None
            if nothing is None:
                return QueryFailure(FailureKind.NO_DATA, "no values found"), True
            return nothing, True
        if roll < self._rates.no_data + self._rates.garbage:
            self._faults.add("metric garbage")
            return self._garbage(query), True
        low, high = (HEALTHY if good else BAD)[query.kind]
        return self._rng.uniform(low, high), False

    def _garbage(self, query: MetricQuery) -> Any:
        # ±Inf on the side its one-sided bound would let through; the rest never parse as data.
        passing_inf = math.inf if query.kind is CheckKind.SUCCESS_RATE else -math.inf
        return self._rng.choice(
            [
                passing_inf,
                float("1e400"),
                -math.inf,
                "abc",
                True,
                None,
                QueryFailure(
                    FailureKind.TRANSPORT,
                    "prometheus answered HTTP 200 with a body that is not a Prometheus API "
                    "answer: '<html>'",
                ),
                QueryFailure(FailureKind.AMBIGUOUS, "query returned 3 series, expected one"),
            ]
        )


# ---------------------------------------------------------------------------------------------
# Webhooks
# ---------------------------------------------------------------------------------------------


class FaultyWebhooks:
    """A WebhookCaller: 2xx, except calls that hang until the hook's timeout or answer 500."""

    def __init__(
        self, clock: Clock, *, rates: FaultRates, faults: FaultLog, rng: random.Random
    ) -> None:
        self._clock = clock
        self._rates = rates
        self._faults = faults
        self._rng = rng

    async def call(self, hook: Webhook, payload: Mapping[str, Any]) -> HookOutcome:
        roll = self._rng.random()
        if roll < self._rates.hook_hang:
            self._faults.add("webhook hung until its timeout")
            await self._clock.sleep(hook.timeout_seconds)
            return HookOutcome(hook, False, f"POST {hook.url} timed out after {hook.timeout}")
        if roll < self._rates.hook_hang + self._rates.hook_error:
            self._faults.add("webhook 500")
            return HookOutcome(hook, False, "500 Internal Server Error")
        return HookOutcome(hook, True)
