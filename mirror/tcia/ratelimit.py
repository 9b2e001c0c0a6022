"""Optional requests-per-second limit shared by every request of one client (or one host).

The pacing is aiolimiter's leaky bucket with room for one request, so request starts are
at least ``1 / rate`` seconds apart (no burst): N requests take at least (N - 1) / rate
seconds. Rate 0 means unlimited, which aiolimiter has no spelling for.
"""

from __future__ import annotations

from aiolimiter import AsyncLimiter


class RateLimiter:
    """``await limiter.acquire()`` before each request; one limiter per event loop."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._bucket = AsyncLimiter(1, 1.0 / rate) if rate > 0 else None

    async def acquire(self) -> None:
        if self._bucket is not None:
            await self._bucket.acquire()
