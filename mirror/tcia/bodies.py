"""Bounded body reads: every byte a server sends comes through :class:`BodyReader`.

A server that trickles (one byte a second never trips a socket read timeout), goes
silent, or sends an endless listing must not hold a sync: a read fails as a transient
*stall* when fewer than ``stall_min_rate * stall_timeout`` bytes arrive within
``stall_timeout`` seconds of waiting, and record bodies (listings) also have a size and
a total time bound (``max_listing_bytes``, ``listing_timeout``).

Only time spent waiting for the server counts towards a stall: a consumer that is slow
to take the next chunk (catalog writes, a slow disk) is not the server's fault.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import anyio

from mirror.config.settings import SourceSettings
from mirror.errors import MirrorError, ProtocolError, TransientApiError


class Readable(Protocol):
    async def read(self, n: int = -1) -> bytes: ...


@dataclass(frozen=True)
class BodyLimits:
    """Bounds for one body; None disables the size or total time bound (ZIP downloads)."""

    stall_timeout: float
    stall_min_rate: float
    max_bytes: int | None = None
    max_seconds: float | None = None

    @classmethod
    def for_listing(cls, source: SourceSettings) -> BodyLimits:
        return cls(source.stall_timeout, source.stall_min_rate, source.max_listing_bytes,
                   source.listing_timeout)

    @classmethod
    def for_download(cls, source: SourceSettings) -> BodyLimits:
        return cls(source.stall_timeout, source.stall_min_rate)


class BodyReader:
    """``while chunk := await reader.read(): ...`` with the bounds of *limits* enforced."""

    def __init__(self, content: Readable, label: str, limits: BodyLimits, *, chunk: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._content = content
        self._label = label
        self._limits = limits
        self._chunk = chunk
        self._clock = clock
        self._started = clock()
        #: bytes that must arrive per stall window (at least one: silence is a stall)
        self._need = max(1, int(limits.stall_min_rate * limits.stall_timeout))
        self._window_bytes = 0
        self._window_wait = 0.0
        self.total = 0

    async def read(self) -> bytes:
        """The next chunk, or b"" at the end of the body."""
        limits = self._limits
        budget = limits.stall_timeout - self._window_wait
        overall = None
        if limits.max_seconds is not None:
            overall = self._started + limits.max_seconds - self._clock()
            if overall <= 0:
                raise self._too_slow()
            budget = min(budget, overall)
        waited_from = self._clock()
        with anyio.move_on_after(max(budget, 0.0)) as scope:
            data = await self._content.read(self._chunk)
        self._window_wait += self._clock() - waited_from
        if scope.cancelled_caught:
            if overall is not None and overall <= budget:
                raise self._too_slow()
            raise self._stalled()
        self._count(data)
        return data

    def _count(self, data: bytes) -> None:
        self.total += len(data)
        if self._limits.max_bytes is not None and self.total > self._limits.max_bytes:
            raise ProtocolError(
                f"{self._label}: the body exceeds source.max_listing_bytes "
                f"({self._limits.max_bytes} bytes); refusing to read more",
                endpoint=self._label, in_place=False)
        self._window_bytes += len(data)
        if self._window_bytes >= self._need:
            self._window_bytes, self._window_wait = 0, 0.0
        elif data and self._window_wait >= self._limits.stall_timeout:
            raise self._stalled()

    def _stalled(self) -> MirrorError:
        return TransientApiError(
            f"{self._label}: transfer stalled: fewer than {self._need} bytes in "
            f"{self._limits.stall_timeout:g}s (source.stall_timeout, source.stall_min_rate) "
            f"after {self.total} bytes", endpoint=self._label)

    def _too_slow(self) -> MirrorError:
        # not worth retrying in place: the same endless body would come again
        return TransientApiError(
            f"{self._label}: the body took longer than source.listing_timeout "
            f"({self._limits.max_seconds:g}s) after {self.total} bytes", endpoint=self._label,
            in_place=False)
