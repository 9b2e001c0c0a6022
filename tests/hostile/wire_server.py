"""Misbehaving HTTP servers on 127.0.0.1 for the wire-trust tests (redirects, Retry-After, stalls).

:func:`serve` runs an aiohttp handler in its own thread and records every request it
sees; :func:`proxy` puts such a server in front of the simulator, answering through
*rules* (endpoint name -> handler returning a response, or None to forward) so a test
can make one endpoint misbehave while the rest stays a faithful TCIA.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from tests.e2e.harness import Mirror

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Rule = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class WireServer:
    url: str
    port: int
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def requests(self, endpoint: str | None = None) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if endpoint is None or s.path.endswith("/" + endpoint)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(handler: Handler) -> Iterator[WireServer]:
    """Serve *handler* on a free 127.0.0.1 port until the ``with`` block ends."""
    loop = asyncio.new_event_loop()
    port = free_port()
    server = WireServer(f"http://127.0.0.1:{port}", port)

    async def recording(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        with server.lock:
            server.seen.append(Seen(request.method, request.path, dict(request.query),
                                    dict(request.headers), body))
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recording)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="wire-server", daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


def forward_to(upstream: str) -> Handler:
    """A handler that passes every request on to *upstream* (the simulator) unchanged."""
    async def forward(request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("host", "content-length", "transfer-encoding")}
        async with aiohttp.ClientSession() as session, session.request(
                request.method, upstream + request.path_qs, headers=headers,
                data=await request.read(), allow_redirects=False) as resp:
            body = await resp.read()
            keep = {k: v for k, v in resp.headers.items()
                    if k.lower() in ("content-type", "retry-after", "location")}
            return web.Response(status=resp.status, body=body, headers=keep)
    return forward


@contextmanager
def proxy(upstream: str, rules: dict[str, Rule]) -> Iterator[WireServer]:
    """A server in front of *upstream*; ``rules[endpoint](request)`` answers first."""
    forward = forward_to(upstream)

    async def handler(request: web.Request) -> web.StreamResponse:
        rule = rules.get(request.path.rsplit("/", 1)[-1])
        if rule is not None and (answer := await rule(request)) is not None:
            return answer
        return await forward(request)

    with serve(handler) as server:
        yield server


async def trickle(request: web.Request, body: bytes, *, every: float = 0.05,
                  content_type: str = "application/octet-stream") -> web.StreamResponse:
    """Send *body* one byte per *every* seconds (a stall no read timeout catches)."""
    resp = web.StreamResponse(headers={"Content-Type": content_type})
    await resp.prepare(request)
    try:
        for i in range(len(body)):
            await resp.write(body[i:i + 1])
            await asyncio.sleep(every)
    except (ConnectionError, asyncio.CancelledError):
        pass  # the client gave up: that is what the test wants
    return resp


def write_config(tmp: Path, *, base_url: str, api: str, collections: list[str],
                 source: str = "", sync: str = "", tail: str = "",
                 root: Path | None = None) -> Mirror:
    """Like tests.e2e.harness.write_mirror, with room for extra [source] and [sync] keys."""
    root = root or tmp / "archive"
    config = tmp / "tcia-mirror.toml"
    catalog_url = f"sqlite+aiosqlite:///{tmp}/catalog.db"
    config.write_text(f"""
[source]
api = "{api}"
base_url = "{base_url}"
retries = 1
connect_timeout = "5s"
read_timeout = "30s"
{source}

[archive]
root = "{root}"

[catalog]
url = "{catalog_url}"

[sync]
collections = {json.dumps(collections)}
workers = 2
max_attempts = 3
retry_backoff = "200ms"
retry_backoff_cap = "1s"
lease = "30s"
{sync}
{tail}
""")
    return Mirror(config, root, catalog_url)


def no_traceback(stderr: str) -> bool:
    return "Traceback" not in stderr and "ExceptionGroup" not in stderr
