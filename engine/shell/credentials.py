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
from collections.abc import Mapping

from engine.shell.clock import Clock
from traffic import SECRET, Cluster, ObjectRef, decode_secret_data

#: Seconds a Secret read is reused (shorter than any analysis interval Flagger users set).
CREDENTIALS_TTL = 10.0

_Data = Mapping[str, str] | None
#: What a shared read ends with: the data, or the error; None when its reader was cancelled
#: (the others then read for themselves rather than fail with it).
_Outcome = tuple[_Data, Exception | None] | None


class CredentialsReader:
    def __init__(self, cluster: Cluster, clock: Clock, *, ttl: float = CREDENTIALS_TTL) -> None:
        self._cluster = cluster
        self._clock = clock
        self._ttl = ttl
        self._read: dict[str, tuple[float, Mapping[str, str]]] = {}
        self._reading: dict[str, asyncio.Future[_Outcome]] = {}

    async def __call__(self, secret_ref: str) -> _Data:
        """The decoded data of the Secret "<namespace>/<name>", None when it does not exist."""
        while True:
            kept = self._read.get(secret_ref)
            if kept is not None and self._clock.now() < kept[0]:
                return kept[1]
            reading = self._reading.get(secret_ref)
            if reading is None:
                return await self._read_for_all(secret_ref)
            # shield: a waiter's own cancellation must not cancel the read the others share
            outcome = await asyncio.shield(reading)
            if outcome is not None:
                data, error = outcome
                if error is not None:
                    raise error
                return data

    async def _read_for_all(self, secret_ref: str) -> _Data:
        shared: asyncio.Future[_Outcome] = asyncio.get_running_loop().create_future()
        self._reading[secret_ref] = shared
        try:
            data = await self._fetch(secret_ref)
        except Exception as exc:
            shared.set_result((None, exc))
            raise
        except BaseException:
            shared.set_result(None)
            raise
        finally:
            del self._reading[secret_ref]
        if data is not None:
            self._read[secret_ref] = (self._clock.now() + self._ttl, data)
        shared.set_result((data, None))
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
