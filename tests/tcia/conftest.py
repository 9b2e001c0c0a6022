"""Small loopback aiohttp servers for wire edge cases, and client settings for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from mirror.config.settings import Duration, SourceSettings
from mirror.retry import RetryPolicy
from mirror.tcia import TciaClient

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Tiny backoff so retry tests take milliseconds.
FAST = RetryPolicy(retries=3, base=0.01, cap=0.05, max_retry_after=5.0)


def source(base_url: str, api: str = "nbia-v1", **changes: object) -> SourceSettings:
    values: dict = {"api": api, "base_url": base_url, "connect_timeout": Duration(2.0),
                    "read_timeout": Duration(5.0), "retries": 3}
    values.update(changes)
    return SourceSettings(**values)


def client(base_url: str, api: str = "nbia-v1", policy: RetryPolicy = FAST,
           **changes: object) -> TciaClient:
    return TciaClient(source(base_url, api, **changes), retry_policy=policy)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[dict[str, Handler]], Awaitable[str]]]:
    """``base = await serve({"/api/getSeries": handler})`` -> base URL ending in /api."""
    servers: list[TestServer] = []

    async def start(routes: dict[str, Handler]) -> str:
        app = web.Application()
        for path, handler in routes.items():
            app.router.add_route("*", path, handler)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("/api"))

    yield start
    for server in servers:
        await server.close()
