"""The controller's credentials Secrets: one read reused for a few seconds, misses never kept."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from engine import VirtualClock
from engine.shell.credentials import CredentialsReader
from traffic import SECRET, ClusterError, InMemoryCluster, ObjectRef


def secret(token: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "prom-auth", "namespace": "monitoring"},
        "data": {"token": base64.b64encode(token.encode()).decode()},
    }


async def test_a_secret_is_read_once_per_ttl_and_a_rotation_is_seen_after_it() -> None:
    clock = VirtualClock()
    cluster = InMemoryCluster(now=clock.utcnow)
    read = CredentialsReader(cluster, clock, ttl=10)
    assert await read("monitoring/prom-auth") is None  # missing: not remembered
    cluster.seed(secret("one"))
    for _ in range(5):  # five canaries' queries in one tick
        assert await read("monitoring/prom-auth") == {"token": "one"}
    assert cluster.calls["get"] == 2
    await cluster.patch(
        ObjectRef(SECRET, "monitoring", "prom-auth"),
        {"data": {"token": base64.b64encode(b"two").decode()}},
    )
    clock.advance(9)
    assert await read("monitoring/prom-auth") == {"token": "one"}
    clock.advance(1)
    assert await read("monitoring/prom-auth") == {"token": "two"}
    assert cluster.calls["get"] == 3


class SlowCluster(InMemoryCluster):
    """A cluster whose reads take a turn of the event loop, as a real API server's do."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.gets = 0
        self.fail = fail

    async def get(self, ref: ObjectRef, *, fresh: bool = False) -> dict[str, Any] | None:
        self.gets += 1
        await asyncio.sleep(0.01)
        if self.fail:
            raise ClusterError("the API server is unreachable")
        return await super().get(ref)


async def test_queries_asking_at_once_share_one_read() -> None:
    # A batch of canaries sharing one MetricTemplate asks for its Secret all at once.
    cluster = SlowCluster()
    cluster.seed(secret("one"))
    read = CredentialsReader(cluster, VirtualClock(), ttl=10)
    answers = await asyncio.gather(*(read("monitoring/prom-auth") for _ in range(20)))
    assert answers == [{"token": "one"}] * 20
    assert cluster.gets == 1


async def test_a_failed_shared_read_fails_every_asker_and_is_not_remembered() -> None:
    cluster = SlowCluster(fail=True)
    read = CredentialsReader(cluster, VirtualClock(), ttl=10)
    answers = await asyncio.gather(
        *(read("monitoring/prom-auth") for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(a, ClusterError) for a in answers) and cluster.gets == 1
    cluster.fail = False
    cluster.seed(secret("one"))
    assert await read("monitoring/prom-auth") == {"token": "one"} and cluster.gets == 2


async def test_a_cancelled_reader_leaves_the_read_to_the_others() -> None:
    # The first ask's query timed out: the read goes on for the second, whose own deadline it
    # meets, and no second GET goes to an API server already slow (found by a reviewer: the
    # first ask's cancellation cancelled the shared read, and every other ask read again).
    cluster = SlowCluster()
    cluster.seed(secret("one"))
    read = CredentialsReader(cluster, VirtualClock(), ttl=10)
    first = asyncio.ensure_future(read("monitoring/prom-auth"))
    await asyncio.sleep(0)  # the first ask is reading
    second = asyncio.ensure_future(read("monitoring/prom-auth"))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == {"token": "one"}
    assert cluster.gets == 1
    assert await read("monitoring/prom-auth") == {"token": "one"} and cluster.gets == 1  # kept


async def test_an_entry_that_is_not_text_does_not_spoil_the_others() -> None:
    """A keystore kept beside the token (binary, not UTF-8) is left out; the providers read their
    own keys, as Flagger's read theirs from the Secret's bytes."""
    clock = VirtualClock()
    cluster = InMemoryCluster(now=clock.utcnow)
    body = secret("one")
    body["data"] = {  # type: ignore[index]
        **body["data"],  # type: ignore[dict-item]
        "keystore.p12": base64.b64encode(b"\x30\x82\xff\xfe\x00binary").decode(),
    }
    cluster.seed(body)
    read = CredentialsReader(cluster, clock, ttl=10)
    assert await read("monitoring/prom-auth") == {"token": "one"}


class Hanging(InMemoryCluster):
    """An API server that never answers a GET (until released)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def get(self, ref: ObjectRef, *, fresh: bool = False) -> dict[str, Any] | None:
        await self.release.wait()
        return None


async def test_a_read_every_caller_gave_up_on_holds_no_virtual_time() -> None:
    # The read waits on the API server, not on the clock: the other canaries' virtual time goes
    # on (found by a reviewer: as a clock actor, it held time still for as long as the GET hung).
    clock = VirtualClock()
    cluster = Hanging()
    read = CredentialsReader(cluster, clock)

    async def query() -> str:
        try:
            async with asyncio.timeout(0.05):  # the query's own (real-time) timeout
                await read("monitoring/prom-auth")
        except TimeoutError:
            return "gave up"
        return "read"

    async def other_canary() -> str:
        await clock.sleep(1)
        return "woke"

    asker, sleeper = clock.spawn(query()), clock.spawn(other_canary())
    assert await asker == "gave up"
    assert await asyncio.wait_for(asyncio.shield(sleeper), 1.0) == "woke"
    await read.aclose()


async def test_closing_the_reader_ends_the_reads_on_their_way() -> None:
    # The controller stops (run registers aclose on its exit stack): nothing outlives it.
    read = CredentialsReader(Hanging(), VirtualClock())
    asker = asyncio.ensure_future(read("monitoring/prom-auth"))
    await asyncio.sleep(0.01)
    asker.cancel()
    await asyncio.gather(asker, return_exceptions=True)
    await read.aclose()
    assert not [t for t in asyncio.all_tasks() if "_read_once" in repr(t.get_coro())]
