"""Optional requests-per-second limit shared by every request of one client."""

from __future__ import annotations

import time

import anyio


class RateLimiter:
    """Spaces request starts at least ``1 / rate`` seconds apart; rate 0 means unlimited.

    A plain interval (not a bucket with a burst) is enough for a polite client and is
    easy to reason about: N requests take at least (N - 1) / rate seconds.
    """

    def __init__(self, rate: float, *, clock: object = time.monotonic) -> None:
        self.rate = rate
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = anyio.Lock()
        self._clock = clock

    async def acquire(self) -> None:
        if self._interval <= 0:
            return
        async with self._lock:
            now = self._clock()  # type: ignore[operator]
            wait = self._next - now
            if wait > 0:
                await anyio.sleep(wait)
                now += wait
            self._next = now + self._interval
