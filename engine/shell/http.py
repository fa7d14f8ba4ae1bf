"""The controller's HTTP endpoints: ``/healthz``, ``/readyz`` and ``/metrics`` (port 8080).

aiohttp is already a dependency (kubernetes-asyncio's transport), so it serves these too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST


@asynccontextmanager
async def serve_endpoints(
    *,
    host: str,
    port: int,
    metrics: Callable[[], bytes],
    is_ready: Callable[[], bool],
) -> AsyncIterator[web.AppRunner]:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def readyz(_: web.Request) -> web.Response:
        if is_ready():
            return web.Response(text="OK")
        return web.Response(status=503, text="not ready: caches are not synced yet")

    async def metrics_handler(_: web.Request) -> web.Response:
        response = web.Response(body=metrics())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        yield runner
    finally:
        await runner.cleanup()
