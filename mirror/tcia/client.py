"""The async TCIA client: one method per endpoint, the same typed answers in every dialect.

``async with TciaClient(settings.source) as client:`` opens one aiohttp session; the
dialect layer picks endpoint and parameter names, the parsing layer normalises records.
The endpoints live by kind: :mod:`~mirror.tcia.listings`, :mod:`~mirror.tcia.checksums`
and :mod:`~mirror.tcia.downloads`, over the plumbing of :mod:`~mirror.tcia.calls`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from types import TracebackType

from mirror.config.settings import SourceSettings
from mirror.retry import RetryPolicy
from mirror.tcia import dialects
from mirror.tcia.checksums import Checksums
from mirror.tcia.dialects import Dialect
from mirror.tcia.downloads import Downloads
from mirror.tcia.listings import Listings
from mirror.tcia.transport import Transport


class TciaClient(Listings, Checksums, Downloads):
    """Async client for one configured TCIA source (see DESIGN.md ``[source]``).

    *retry_policy* defaults to ``RetryPolicy(retries=source.retries)``; tests pass a
    tiny backoff. Streaming methods never hold a whole body in memory.
    """

    def __init__(self, source: SourceSettings, *, retry_policy: RetryPolicy | None = None,
                 rng: random.Random | None = None,
                 on_response: Callable[[str, int | str], None] | None = None) -> None:
        self.source = source
        self.dialect: Dialect = dialects.get_dialect(source.api)
        self._transport = Transport(source, policy=retry_policy or
                                    RetryPolicy(retries=source.retries), rng=rng,
                                    on_response=on_response)

    def __repr__(self) -> str:
        return f"TciaClient(api={self.api!r}, base_url={self.source.base_url!r})"

    async def __aenter__(self) -> TciaClient:
        await self._transport.open()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._transport.close()
