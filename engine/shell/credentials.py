"""Metric providers' credentials Secrets, read by name and reused for a few seconds.

Secrets are never cached by the watch-fed cache (config/deploy/README.md, RBAC): each is a GET
of the named Secret. Every query of every canary whose MetricTemplate has a ``secretRef`` asks
for its Secret, so a batch of N canaries sharing one template would send N identical GETs per
interval, all at once. ``CredentialsReader`` reads a Secret once for every query that asks while
that read is on its way, and reuses it for ``ttl`` seconds of clock time, so a rotated Secret is
used at most that much later. A missing Secret or a failed read is not remembered: the next ask
reads again (the asks that shared the read share its outcome).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping

from engine.shell.clock import Clock
from traffic import SECRET, Cluster, ObjectRef, decode_secret_data

#: Seconds a Secret read is reused (shorter than any analysis interval Flagger users set).
CREDENTIALS_TTL = 10.0

_Data = Mapping[str, str] | None


class CredentialsReader:
    def __init__(self, cluster: Cluster, clock: Clock, *, ttl: float = CREDENTIALS_TTL) -> None:
        self._cluster = cluster
        self._clock = clock
        self._ttl = ttl
        self._read: dict[str, tuple[float, Mapping[str, str]]] = {}
        #: The reads on their way, each a task of its own: a caller that gives up (its query's
        #: timeout) leaves the read to the others, who wait within their own deadlines. (The
        #: first caller used to run the read itself, and its timeout cancelled it for everyone:
        #: each of the others then sent a GET of its own to an API server already slow.)
        self._reading: dict[str, asyncio.Task[_Data]] = {}

    async def __call__(self, secret_ref: str) -> _Data:
        """The decoded data of the Secret "<namespace>/<name>", None when it does not exist."""
        kept = self._read.get(secret_ref)
        if kept is not None and self._clock.now() < kept[0]:
            return kept[1]
        reading = self._reading.get(secret_ref)
        if reading is None:
            # A plain task, not a clock actor: it waits on the API server, never on the clock, so
            # an actor would hold virtual time still once every caller had given up on it.
            reading = asyncio.ensure_future(self._read_once(secret_ref))
            self._reading[secret_ref] = reading
            reading.add_done_callback(functools.partial(self._done, secret_ref))
        # shield: a caller's own cancellation must not cancel the read the others share
        return await self._clock.wait(asyncio.shield(reading))

    async def aclose(self) -> None:
        """Cancel the reads still on their way (the controller stops: nothing outlives it)."""
        reading = list(self._reading.values())
        for task in reading:
            task.cancel()
        await asyncio.gather(*reading, return_exceptions=True)

    def _done(self, secret_ref: str, task: asyncio.Task[_Data]) -> None:
        if self._reading.get(secret_ref) is task:
            del self._reading[secret_ref]
        if not task.cancelled():
            task.exception()  # retrieved: a read every caller gave up on is not "never retrieved"

    async def _read_once(self, secret_ref: str) -> _Data:
        """One read for every caller; kept ``ttl`` seconds when found (a missing Secret or a
        failed read is not remembered: the next ask reads again)."""
        data = await self._fetch(secret_ref)
        if data is not None:
            self._read[secret_ref] = (self._clock.now() + self._ttl, data)
        return data

    async def _fetch(self, secret_ref: str) -> Mapping[str, str] | None:
        namespace, _, name = secret_ref.partition("/")
        body = await self._cluster.get(ObjectRef(SECRET, namespace, name))
        if body is None:
            return None
        # Every text entry: each provider reads its own keys (as Flagger hands its providers the
        # Secret's data). An entry that is not text, such as a keystore kept beside the token, is
        # left out rather than failing every check of every template that uses the Secret.
        return decode_secret_data(body.get("data") or {}, text_only=True)
