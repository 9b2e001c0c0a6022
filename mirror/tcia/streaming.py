"""Streamed bodies: image downloads into a sink, and huge JSON listings record by record.

Memory is bounded by the chunk size either way; nothing holds a whole ZIP or listing.
Every body is read through :mod:`mirror.tcia.bodies`: a stalled transfer fails as transient,
and a listing too large or too slow in total ends as an error for its collection.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

from mirror.errors import (
    MirrorError,
    ProtocolError,
    SourceUnreachable,
    StorageError,
    TransientApiError,
)
from mirror.tcia.jsonstream import ArrayScanner, Checkpoint, JsonArrayError, ListingChanged
from mirror.tcia.parsing import looks_like_html
from mirror.tcia.transport import Transport

Progress = Callable[[int], Any]


class Sink(Protocol):
    """Where a download goes. ``write`` may be sync or async (an aiofiles file works).

    An optional ``restart()`` (sync or async) that empties the sink lets a download
    that was cut off mid-body be retried in place; without it the cut-off is raised
    as TransientApiError and the caller retries the whole series later.
    """

    def write(self, data: bytes) -> Any: ...


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _write(sink: Sink, chunk: bytes, label: str) -> None:
    try:
        await _maybe_await(sink.write(chunk))
    except OSError as exc:
        raise StorageError(f"{label}: cannot write the download: {exc.strerror or exc}") from exc


async def _can_restart(sink: Sink) -> bool:
    restart = getattr(sink, "restart", None)
    if restart is None:
        return False
    await _maybe_await(restart())
    return True


async def download(transport: Transport, label: str, url: str, params: Mapping[str, str],
                   sink: Sink, progress: Progress | None = None) -> int:
    """Stream the body of *url* into *sink*; returns the number of bytes written."""
    async for attempt in transport.attempts(label):
        with attempt:
            written = 0
            try:
                async with transport.response(label, "GET", url, params=params) as resp:
                    reader = transport.body(resp, label, listing=False)
                    while chunk := await reader.read():
                        await _write(sink, chunk, label)
                        written += len(chunk)
                        if progress is not None:
                            progress(len(chunk))
                return written
            except (TransientApiError, SourceUnreachable) as exc:
                if written and not await _can_restart(sink):
                    raise TransientApiError(
                        f"{label}: body cut off after {written} bytes: {exc}",
                        endpoint=label, retry_after=exc.retry_after, in_place=False,
                    ) from exc
                raise
    raise AssertionError("unreachable: attempts either returns or raises")


async def iter_records(transport: Transport, label: str, url: str,
                       params: Mapping[str, str]) -> AsyncIterator[dict[str, Any]]:
    """Yield the objects of a JSON array body as they arrive (retries resume in place).

    The server has no paging, so a retry after a cut-off reads the body from its start
    again: its scanner skips the text of the records already yielded, checking that it
    is the same (a digest of the text, constant memory), and yields the rest.
    """
    checkpoint: Checkpoint | None = None
    async for attempt in transport.attempts(label):
        with attempt:
            async with transport.response(label, "GET", url, params=params) as resp:
                status = resp.status
                scanner = ArrayScanner(after=checkpoint)
                first = True
                reader = transport.body(resp, label, listing=True)
                while chunk := await reader.read():
                    if first and looks_like_html(chunk):
                        raise _protocol(label, status, "expected JSON, got an HTML/XML page")
                    first = first and not chunk.strip()
                    for record in _feed(scanner, chunk, label, status):
                        yield record
                    checkpoint = scanner.checkpoint()
                for record in _feed(scanner, None, label, status):
                    yield record
            return


def _feed(scanner: ArrayScanner, chunk: bytes | None, label: str,
          status: int) -> list[Any]:
    try:
        records = scanner.feed(chunk) if chunk is not None else scanner.close()
    except ListingChanged as exc:
        what = "got shorter" if exc.shorter else "changed"
        raise TransientApiError(f"{label}: the listing {what} while it was re-read after "
                                f"a broken connection", endpoint=label) from exc
    except JsonArrayError as exc:
        raise _protocol(label, status, f"malformed JSON body: {exc}") from exc
    for record in records:
        if not isinstance(record, dict):
            raise _protocol(label, status, "expected a JSON array of objects")
    return records


def _protocol(label: str, status: int, what: str) -> MirrorError:
    return ProtocolError(f"{label}: HTTP {status}: {what}", endpoint=label, status=status)
