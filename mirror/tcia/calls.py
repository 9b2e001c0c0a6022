"""How the client calls one endpoint: canonical name -> wire name, method, params and URL
in the configured dialect, then records (fetched whole or streamed) from the transport.

:class:`Calls` is the base the client's endpoint groups (listings, checksums, downloads)
share; it owns the source, its dialect and the transport.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from mirror.config.settings import SourceSettings
from mirror.tcia import dialects, parsing, streaming
from mirror.tcia.dialects import Dialect
from mirror.tcia.transport import Transport

Params = Mapping[str, str | None]


class Calls:
    """One TCIA source's dialect and transport, and the plumbing every endpoint uses."""

    source: SourceSettings
    dialect: Dialect
    _transport: Transport

    @property
    def api(self) -> str:
        return self.dialect.name

    @property
    def has_md5(self) -> bool:
        """True when the dialect has getImageWithMD5Hash (NBIA v1 and v4)."""
        return self.dialect.has_md5

    def _request(self, canonical: str, params: Params) -> tuple[str, str, dict[str, str]]:
        """(wire name, HTTP method, wire params) for a canonical endpoint."""
        wire = dialects.wire_name(self.dialect, canonical)
        method = "POST" if canonical in self.dialect.post else "GET"
        return wire, method, dialects.wire_params(self.dialect, canonical, params)

    def _url(self, canonical: str | None, wire: str) -> str:
        if canonical is None:
            return self._transport.url(wire)
        return dialects.endpoint_url(self.dialect, self._transport.base_url, canonical, wire)

    async def _records(self, canonical: str, params: Params) -> list[dict[str, Any]]:
        wire, method, wire_params = self._request(canonical, params)
        return await self._fetch_records(wire, method, wire_params,
                                         self._url(canonical, wire))

    async def _fetch_records(self, wire: str, method: str, params: Mapping[str, str],
                             url: str) -> list[dict[str, Any]]:
        if method == "POST":
            status, ctype, body = await self._transport.fetch(wire, method, url, data=params)
        else:
            status, ctype, body = await self._transport.fetch(wire, method, url, params=params)
        return parsing.decode_records(wire, status, ctype, body)

    async def _iter_records(self, canonical: str,
                            params: Params) -> AsyncIterator[dict[str, Any]]:
        wire, _, wire_params = self._request(canonical, params)
        url = self._url(canonical, wire)
        async for record in streaming.iter_records(self._transport, wire, url, wire_params):
            yield record
