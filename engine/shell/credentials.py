"""Metric providers' credentials Secrets, read by name and reused for a few seconds.

Secrets are never cached by the watch-fed cache (config/deploy/README.md, RBAC): each is a GET
of the named Secret. Every query of every canary whose MetricTemplate has a ``secretRef`` asks
for its Secret, so a batch of N canaries sharing one template would send N identical GETs per
interval. ``CredentialsReader`` reuses a Secret it read for ``ttl`` seconds of clock time, so a
rotated Secret is used at most that much later. A missing Secret or a failed read is not
remembered: the next ask reads again.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.shell.clock import Clock
from traffic import SECRET, Cluster, ObjectRef, decode_secret_data

#: Seconds a Secret read is reused (shorter than any analysis interval Flagger users set).
CREDENTIALS_TTL = 10.0


class CredentialsReader:
    def __init__(self, cluster: Cluster, clock: Clock, *, ttl: float = CREDENTIALS_TTL) -> None:
        self._cluster = cluster
        self._clock = clock
        self._ttl = ttl
        self._read: dict[str, tuple[float, Mapping[str, str]]] = {}

    async def __call__(self, secret_ref: str) -> Mapping[str, str] | None:
        """The decoded data of the Secret "<namespace>/<name>", None when it does not exist."""
        kept = self._read.get(secret_ref)
        if kept is not None and self._clock.now() < kept[0]:
            return kept[1]
        data = await self._fetch(secret_ref)
        if data is not None:
            self._read[secret_ref] = (self._clock.now() + self._ttl, data)
        return data

    async def _fetch(self, secret_ref: str) -> Mapping[str, str] | None:
        namespace, _, name = secret_ref.partition("/")
        body = await self._cluster.get(ObjectRef(SECRET, namespace, name))
        if body is None:
            return None
        return decode_secret_data(body.get("data") or {})
