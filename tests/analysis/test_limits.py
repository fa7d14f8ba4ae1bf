"""Queries in flight are counted per server (analysis._limits): a server that never answers
queues only its own queries (found by a reviewer: with one limit for all, the queries of canaries
asking another server waited 4 s per wave of 64 hanging ones, outside their own timeout)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import respx

from analysis import Endpoint, FailureKind, QueryFailure, open_prometheus
from tests.analysis.conftest import Sleeps, raw

pytestmark = pytest.mark.timeout(20)

HANGING = "http://hanging.test:9090"
HEALTHY = "http://healthy.test:9090"


def _one(value: float) -> dict[str, object]:
    return {"status": "success", "data": {"resultType": "scalar", "result": [1, str(value)]}}


async def test_a_hanging_prometheus_holds_no_query_to_another_one(sleeps: Sleeps) -> None:
    release = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200, json=_one(1))

    with respx.mock:
        respx.get(f"{HANGING}/api/v1/query").mock(side_effect=hang)
        respx.get(f"{HEALTHY}/api/v1/query").mock(return_value=httpx.Response(200, json=_one(7)))
        async with open_prometheus(sleep=sleeps, concurrency=2, timeout_seconds=30) as source:
            stuck = [
                asyncio.ensure_future(
                    source.fetch([raw(f"q{n}", endpoint=Endpoint(server=HANGING))])
                )
                for n in range(4)  # twice the concurrency: every slot of that server is taken
            ]
            await asyncio.sleep(0.05)
            answer = await asyncio.wait_for(
                source.fetch([raw("up", endpoint=Endpoint(server=HEALTHY))]), 2
            )
            assert answer == [7.0]
            assert not any(task.done() for task in stuck)
            release.set()
            assert [await task for task in stuck] == [[1.0]] * 4


async def test_a_server_is_forgotten_once_no_query_holds_or_awaits_its_slots() -> None:
    # A controller that asked thousands of addresses over weeks keeps no semaphore for them.
    from analysis._limits import PerServerLimit

    limit = PerServerLimit(1)
    release = asyncio.Event()

    async def query(server: str) -> None:
        async with limit(server):
            await release.wait()

    waiting = [asyncio.ensure_future(query("a")) for _ in range(3)]
    waiting.append(asyncio.ensure_future(query("b")))
    await asyncio.sleep(0.01)
    assert limit.servers == 2
    release.set()
    await asyncio.gather(*waiting)
    assert limit.servers == 0
    for n in range(1000):
        async with limit(f"http://prometheus-{n}:9090"):
            pass
    assert limit.servers == 0
    release.clear()  # a query cancelled while it holds, or awaits, a slot lets go of both
    held, queued = asyncio.ensure_future(query("c")), asyncio.ensure_future(query("c"))
    await asyncio.sleep(0.01)
    assert limit.servers == 1
    queued.cancel()
    held.cancel()
    await asyncio.gather(held, queued, return_exceptions=True)
    assert limit.servers == 0


async def test_the_wait_for_a_slot_counts_against_the_query_budget(sleeps: Sleeps) -> None:
    # A slow Secret read, then the server's only slot taken by another canary's query: the query
    # fails at its budget, saying no request was sent and why, rather than at twice the budget
    # blaming the server for not answering (found by a reviewer).
    release = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200, json=_one(1))

    async def credentials(ref: str) -> dict[str, str]:
        await asyncio.sleep(0.35)
        return {"token": "t0k3n"}

    loop = asyncio.get_running_loop()
    with respx.mock:
        respx.get(f"{HANGING}/api/v1/query").mock(side_effect=hang)
        async with open_prometheus(
            sleep=sleeps, credentials=credentials, concurrency=1, timeout_seconds=0.4
        ) as source:
            started = loop.time()
            with_secret = Endpoint(server=HANGING, secret="test/prom-auth")
            mine = asyncio.ensure_future(source.fetch([raw("a", endpoint=with_secret)]))
            await asyncio.sleep(0.3)  # another canary's query takes the only slot
            other = asyncio.ensure_future(
                source.fetch([raw("b", endpoint=Endpoint(server=HANGING))])
            )
            [answer] = await mine
            waited = loop.time() - started
            release.set()
            await other
    assert isinstance(answer, QueryFailure) and answer.kind is FailureKind.TIMEOUT
    assert (
        "no request sent within 400ms: its other queries held all 1 slots of this server"
        in answer.message
    )
    assert waited < 0.5
