"""Helpers for simulator tests: raw HTTP through aiohttp against the running simulator."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp


@dataclass
class Raw:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


async def fetch(url: str, *, method: str = "GET", headers: dict[str, str] | None = None,
                data: dict[str, str] | None = None, **params: str) -> Raw:
    """One request, body read fully; header names as the server sent them."""
    async with aiohttp.ClientSession() as session, session.request(
            method, url, params=params or None, headers=headers, data=data) as resp:
        body = await resp.read()
        return Raw(resp.status, {k: v for k, v in resp.headers.items()}, body)
