"""Redirects, followed by hand and only within the configured origin.

A redirect to another origin (scheme, host or effective port) is refused as
:class:`CrossOriginRedirect` before anything is sent there, so no credential (the v3
``api_key`` header, a Bearer token, a password or refresh grant) ever leaves the origin
the user configured. Same-origin redirects are followed like a browser would.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
from yarl import URL

from mirror.errors import CrossOriginRedirect, ProtocolError

#: Same-origin redirects followed per request (aiohttp's own default is 10).
MAX_REDIRECTS = 10
_REDIRECTS = (301, 302, 303, 307, 308)


async def follow(session: aiohttp.ClientSession, label: str, method: str, url: str | URL, *,
                 params: Mapping[str, str] | None, data: Mapping[str, str] | None,
                 headers: Mapping[str, str]) -> aiohttp.ClientResponse:
    """Send the request; follow redirects only while they stay on *url*'s origin."""
    origin = URL(url)
    for _ in range(MAX_REDIRECTS + 1):
        resp = await session.request(method, url, params=params, data=data,
                                     headers=headers, allow_redirects=False)
        location = resp.headers.get("Location") if resp.status in _REDIRECTS else None
        if not location:
            return resp
        resp.release()
        # the Location carries its own query; the URL object keeps its encoding as is
        url, params = redirect_target(label, resp.url, location, origin), None
        if resp.status in (301, 302, 303) and method != "GET":
            method, data = "GET", None  # what browsers and aiohttp do
    raise ProtocolError(f"{label}: more than {MAX_REDIRECTS} redirects", endpoint=label)


def redirect_target(label: str, base: URL, location: str, origin: URL) -> URL:
    """Where a redirect goes; CrossOriginRedirect unless it stays on *origin* (pure).

    Origins compare as (scheme, host, effective port): ``https://h`` and ``https://h:443``
    are the same, ``http://h`` and ``https://h:8443`` are not.
    """
    try:
        target = base.join(URL(location))
        same = _origin_key(target) == _origin_key(origin)
        shown = target.origin()
    except ValueError as exc:
        raise ProtocolError(f"{label}: redirect to an unusable Location", endpoint=label) from exc
    if not same:
        raise CrossOriginRedirect(
            f"{label}: the server redirected to {shown}, another origin than the "
            f"configured {origin.origin()}; refusing to follow it (credentials are only ever "
            f"sent to the configured origin; if the service moved, change source.base_url)",
            endpoint=label, status=None)
    return target


def _origin_key(url: URL) -> tuple[str, str, int | None]:
    return url.scheme.lower(), (url.host or "").lower(), url.port
