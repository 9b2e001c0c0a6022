"""Put a reply on the wire, applying body faults on the fly (never to the cached files).

ZIPs go out chunked without Content-Length, read from the on-disk cache in large chunks,
like the server's StreamingOutput; small replies go out with a Content-Length.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import zipfile
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from aiohttp import web

from mirror.simulator.faults import Fault
from mirror.simulator.replies import FileReply, Reply, ZipReply

CHUNK = 1 << 20


@dataclass
class BodyPlan:
    """How to damage one body: positions to flip, a clean early end, a reset, a rate."""

    flips: set[int] = field(default_factory=set)
    cut_at: int | None = None
    reset_at: int | None = None
    rate: float | None = None

    @property
    def damaged(self) -> bool:
        return (bool(self.flips) or self.cut_at is not None or self.reset_at is not None
                or self.rate is not None)


def plan_body(faults: list[Fault], size: int) -> BodyPlan:
    plan = BodyPlan()
    for f in faults:
        p = f.params
        if f.kind == "corrupt" and size > 0:
            lo, hi = size // 4, max(size // 4 + 1, 3 * size // 4)
            plan.flips |= {f.rng.randrange(lo, hi) for _ in range(int(p.get("bytes", 1)))}
        elif f.kind == "reset":
            plan.reset_at = int(p.get("after_bytes", size // 2))
        elif f.kind == "truncate":
            frac = p.get("fraction")
            plan.cut_at = int(size * frac) if frac is not None else int(
                p.get("after_bytes", size // 2))
        elif f.kind == "slow":
            plan.rate = float(p.get("bytes_per_second", 65536))
    return plan


async def _file_chunks(path: Path, chunk: int) -> AsyncGenerator[bytes, None]:
    loop = asyncio.get_running_loop()
    with path.open("rb") as f:
        while data := await loop.run_in_executor(None, f.read, chunk):
            yield data


async def _bytes_chunks(data: bytes, chunk: int) -> AsyncGenerator[bytes, None]:
    for k in range(0, len(data), chunk):
        yield data[k: k + chunk]


async def pump(request: web.Request, resp: web.StreamResponse,
               chunks: AsyncGenerator[bytes, None],
               plan: BodyPlan, count: Callable[[int], None]) -> None:
    """Write *chunks* to *resp* through *plan*; abort the connection for a reset.

    A reset, or a client that went away (killed, or gave up), ends the reply quietly:
    both are part of the show here, not server errors worth a logged traceback.
    """
    try:
        async with contextlib.aclosing(chunks):  # close the file even when we reset
            if await _pump(request, resp, chunks, plan, count):
                return
        await resp.write_eof()
    except ConnectionError:
        return


async def _pump(request: web.Request, resp: web.StreamResponse, chunks: AsyncIterator[bytes],
                plan: BodyPlan, count: Callable[[int], None]) -> bool:
    """True when the connection was reset on purpose."""
    sent = 0
    async for data in chunks:
        if plan.flips:
            data = _flip(data, sent, plan.flips)
        stop = min(x for x in (plan.cut_at, plan.reset_at, sent + len(data)) if x is not None)
        piece = data[: max(0, stop - sent)]
        if piece:
            await resp.write(piece)
            count(len(piece))
            sent += len(piece)
        if plan.rate:
            await asyncio.sleep(len(piece) / plan.rate)
        if plan.reset_at is not None and sent >= plan.reset_at:
            if request.transport is not None:
                request.transport.abort()
            return True
        if plan.cut_at is not None and sent >= plan.cut_at:
            break
    return False


async def _prepared(request: web.Request, resp: web.StreamResponse) -> bool:
    """Send the headers; False when the client has gone already (nothing more to do)."""
    try:
        await resp.prepare(request)
    except ConnectionError:
        return False
    return True


def _flip(data: bytes, offset: int, flips: set[int]) -> bytes:
    hits = [p - offset for p in flips if offset <= p < offset + len(data)]
    if not hits:
        return data
    buf = bytearray(data)
    for h in hits:
        buf[h] ^= 0xFF
    return bytes(buf)


def _chunk_size(plan: BodyPlan) -> int:
    # Slow bodies trickle in small pieces so the rate holds within a fraction of a second.
    return max(512, min(CHUNK, int(plan.rate / 10))) if plan.rate else CHUNK


async def send_bytes(request: web.Request, reply: Reply, faults: list[Fault],
                     count: Callable[[int], None]) -> web.StreamResponse:
    plan = plan_body(faults, len(reply.body))
    if not plan.damaged or not reply.body:
        resp = web.Response(status=reply.status, body=reply.body or None,
                            headers=_headers(reply.content_type, reply.headers))
        count(len(reply.body))
        return resp
    resp = web.StreamResponse(status=reply.status,
                              headers=_headers(reply.content_type, reply.headers))
    if plan.cut_at is None:
        resp.content_length = len(reply.body)
    else:
        resp.enable_chunked_encoding()
    if await _prepared(request, resp):
        await pump(request, resp, _bytes_chunks(reply.body, _chunk_size(plan)), plan, count)
    return resp


async def send_file(request: web.Request, reply: FileReply, path: Path, faults: list[Fault],
                    count: Callable[[int], None]) -> web.StreamResponse:
    size = await _size(path)
    plan = plan_body(faults, size)
    resp = web.StreamResponse(headers=_headers(reply.content_type, reply.headers))
    if plan.cut_at is None:
        resp.content_length = size
    else:
        resp.enable_chunked_encoding()
    if await _prepared(request, resp):
        await pump(request, resp, _file_chunks(path, _chunk_size(plan)), plan, count)
    return resp


async def send_zip(request: web.Request, reply: ZipReply, path: Path, faults: list[Fault],
                   count: Callable[[int], None]) -> web.StreamResponse:
    plan = plan_body(faults, await _size(path))
    headers = (("Content-Disposition", f'attachment; filename="{reply.filename}"'),
               *reply.headers)
    resp = web.StreamResponse(headers=_headers("application/octet-stream", headers))
    resp.enable_chunked_encoding()
    if await _prepared(request, resp):
        await pump(request, resp, _file_chunks(path, _chunk_size(plan)), plan, count)
    return resp


def early_close_limit(full_zip: Path, fault: Fault, entries: int) -> int:
    """How many DICOM entries an early-closed ZIP keeps, from a fraction or a byte budget."""
    frac = fault.params.get("fraction")
    if frac is not None:
        return max(0, min(entries - 1, int(entries * float(frac))))
    budget = int(fault.params.get("after_bytes", 0))
    with zipfile.ZipFile(full_zip) as zf:
        infos = [i for i in zf.infolist() if i.filename.endswith(".dcm")]
    ends = [i.header_offset + 30 + len(i.filename) + i.compress_size + 16 for i in infos]
    return max(0, min(entries - 1, sum(1 for e in ends if e <= budget)))


def truncated(reply: ZipReply, limit: int) -> ZipReply:
    return replace(reply, variant=replace(reply.variant, limit=limit))


async def _size(path: Path) -> int:
    return await asyncio.get_running_loop().run_in_executor(None, os.path.getsize, path)


def _headers(content_type: str | None,
             extra: tuple[tuple[str, str], ...]) -> dict[str, str]:
    out = dict(extra)
    if content_type:
        out["Content-Type"] = content_type
    return out
