"""A damaging reverse proxy on 127.0.0.1: the simulator's real answers, broken mid-stream.

The simulator's own faults cut at byte counts it chooses; the classes here need the
answer's structure (where a ZIP entry's local header ends, where md5hashes.csv lies, the
central directory), so the proxy reads the real answer whole, damages it, and sends the
result. A damage is registered per endpoint and per key (the request's
SeriesInstanceUID, else its Collection) and fires on every matching request until cleared.
"""

from __future__ import annotations

import asyncio
import struct
import threading
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import aiohttp
from aiohttp import web

HTML_ERROR = (b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>"
              b"<h1>Bad Gateway</h1><p>The proxy server received an invalid response."
              b"</p></body></html>\n")


@dataclass(frozen=True)
class Damage:
    """How to answer instead: a new body (from the real one), status, type, or a reset."""

    body: Callable[[bytes], bytes] | None = None
    status: int | None = None
    content_type: str | None = None
    reset_at: Callable[[bytes], int] | None = None  #: abort the connection after N bytes
    times: int | None = None  #: fire on the next N matching requests only (None: always)


class MidstreamProxy:
    """Forwards everything to *upstream*; damages what is registered. Thread-safe."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.url = ""
        self._damages: dict[tuple[str, str], Damage] = {}
        self._lock = threading.Lock()
        self.fired: Counter[tuple[str, str]] = Counter()
        self.session: aiohttp.ClientSession | None = None

    def damage(self, endpoint: str, key: str, damage: Damage) -> None:
        with self._lock:
            self._damages[endpoint, key] = damage

    def clear(self) -> None:
        with self._lock:
            self._damages.clear()
            self.fired.clear()

    def _find(self, request: web.Request) -> tuple[tuple[str, str], Damage | None]:
        endpoint = request.path.rstrip("/").rsplit("/", 1)[-1]
        key = request.query.get("SeriesInstanceUID") or request.query.get("Collection") or ""
        with self._lock:
            found = self._damages.get((endpoint, key))
            if found and found.times is not None and self.fired[endpoint, key] >= found.times:
                found = None
            if found:
                self.fired[endpoint, key] += 1
        return (endpoint, key), found

    async def handle(self, request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("host", "accept-encoding", "content-length")}
        assert self.session is not None
        async with self.session.request(request.method, self.upstream + request.path_qs,
                                   headers=headers, data=await request.read(),
                                   allow_redirects=False) as up:
            body = await up.read()
            status, ctype = up.status, up.headers.get("Content-Type", "application/octet-stream")
        _, damage = self._find(request)
        if damage is None:
            return web.Response(body=body, status=status, headers={"Content-Type": ctype})
        if damage.body is not None:
            body = damage.body(body)
        status = damage.status or status
        ctype = damage.content_type or ctype
        if damage.reset_at is None:  # a clean end: Content-Length matches what is sent
            return web.Response(body=body, status=status, headers={"Content-Type": ctype})
        resp = web.StreamResponse(status=status, headers={"Content-Type": ctype})
        resp.content_length = len(body)
        await resp.prepare(request)
        await resp.write(body[: damage.reset_at(body)])
        await asyncio.sleep(0)  # let the bytes reach the socket before the reset
        if request.transport is not None:
            request.transport.abort()
        return resp


@contextmanager
def start_proxy(upstream: str) -> Iterator[MidstreamProxy]:
    """Serve the proxy on a free 127.0.0.1 port in its own thread until the block ends."""
    proxy = MidstreamProxy(upstream)
    loop = asyncio.new_event_loop()
    state: dict[str, Any] = {}

    async def up() -> None:
        app = web.Application()
        proxy.session = aiohttp.ClientSession()
        app.router.add_route("*", "/{tail:.*}", proxy.handle)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        state["runner"], state["port"] = runner, runner.addresses[0][1]

    async def down() -> None:
        assert proxy.session is not None
        await proxy.session.close()
        await state["runner"].cleanup()

    loop.run_until_complete(up())
    thread = threading.Thread(target=loop.run_forever, name="midstream-proxy", daemon=True)
    thread.start()
    proxy.url = f"http://127.0.0.1:{state['port']}"
    try:
        yield proxy
    finally:
        asyncio.run_coroutine_threadsafe(down(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


# --- where to break a ZIP ---------------------------------------------------------------

def entry_data_start(data: bytes, index: int) -> int:
    """Offset of the first data byte of entry *index* (just past its local header)."""
    info = zipfile.ZipFile(BytesIO(data)).infolist()[index]
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
    return info.header_offset + 30 + name_len + extra_len


def entry_index(data: bytes, name: str) -> int:
    names = [i.filename for i in zipfile.ZipFile(BytesIO(data)).infolist()]
    return names.index(name)


def lie_about_sizes(data: bytes, index: int = 0) -> bytes:
    """The central directory record of entry *index* claims half its real sizes."""
    out = bytearray(data)
    info = zipfile.ZipFile(BytesIO(data)).infolist()[index]
    (pos,) = struct.unpack_from("<I", data, data.rfind(b"PK\x05\x06") + 16)  # CD start
    for _ in range(index):
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        pos += 46 + name_len + extra_len + comment_len
    assert data[pos:pos + 4] == b"PK\x01\x02"
    struct.pack_into("<II", out, pos + 20, info.compress_size // 2, info.file_size // 2)
    return bytes(out)
