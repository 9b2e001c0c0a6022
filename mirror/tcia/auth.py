"""Credentials per dialect: v3 ``api_key`` header, NBIA bearer tokens (password grant), or none.

Secrets live only in private attributes that reprs and messages never show, and they go
only to the configured origins: the transport refuses redirects elsewhere, and a token
endpoint that redirects to another origin is an AuthError (the password stays home).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import anyio

from mirror.config.settings import SourceSettings
from mirror.errors import AuthError, CrossOriginRedirect, ProtocolError
from mirror.tcia.fields import to_int
from mirror.tcia.parsing import snippet

#: (url, form fields) -> (status, body). Provided by the transport, with its retries.
PostForm = Callable[[str, dict[str, str]], Awaitable[tuple[int, bytes]]]

#: The password grant's client_id: the documented "NBIA" (the server replaces it with its
#: own Keycloak client anyway).
CLIENT_ID = "NBIA"
#: The refresh grant is forwarded to Keycloak as sent, and Keycloak client ids are
#: case-sensitive: it must be the server's client, "nbia" (tcia-api-v4.md section 6).
REFRESH_CLIENT_ID = "nbia"
#: Renew this long before expiry (capped at 10 % of the lifetime for short-lived tokens).
RENEW_MARGIN = 60.0


class Auth(Protocol):
    async def headers(self) -> dict[str, str]:
        """Headers for the next request (fetching or renewing a token if needed)."""

    async def renew(self, used: dict[str, str]) -> bool:
        """The server said 401 to *used*; get fresh credentials. False: nothing to renew."""


class NoAuth:
    """Guest access (NBIA without a username, or v3 without a key)."""

    async def headers(self) -> dict[str, str]:
        return {}

    async def renew(self, used: dict[str, str]) -> bool:
        return False

    def __repr__(self) -> str:
        return "NoAuth()"


class ApiKeyAuth:
    """Legacy v3: the ``api_key`` header on every request."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    async def headers(self) -> dict[str, str]:
        return {"api_key": self._api_key}

    async def renew(self, used: dict[str, str]) -> bool:
        return False  # a key cannot be renewed: a 401 is final

    def __repr__(self) -> str:
        return "ApiKeyAuth(api_key=***)"


@dataclass
class _Token:
    access: str
    refresh: str | None
    expires_at: float  # monotonic clock
    refresh_expires_at: float | None

    def __repr__(self) -> str:
        return f"_Token(expires_at={self.expires_at:.0f})"


class TokenAuth:
    """NBIA OAuth: password grant, refresh grant before expiry and once after a 401."""

    def __init__(self, token_url: str, username: str, password: str, post_form: PostForm,
                 *, clock: Callable[[], float] = time.monotonic) -> None:
        self.token_url = token_url
        self.username = username
        self._password = password
        self._post = post_form
        self._clock = clock
        self._token: _Token | None = None
        self._lock = anyio.Lock()

    def __repr__(self) -> str:
        return f"TokenAuth(token_url={self.token_url!r}, username={self.username!r})"

    async def headers(self) -> dict[str, str]:
        token = self._token
        if token is None or self._expiring(token):
            async with self._lock:
                if self._token is None or self._expiring(self._token):
                    self._token = await self._obtain(self._token)
            token = self._token
        return {"Authorization": f"Bearer {token.access}"}

    async def renew(self, used: dict[str, str]) -> bool:
        async with self._lock:
            current = self._token
            # Another request may have renewed it while this one waited on the lock.
            if current is None or used.get("Authorization") == f"Bearer {current.access}":
                self._token = await self._obtain(current)
        return True

    def _expiring(self, token: _Token) -> bool:
        return self._clock() >= token.expires_at

    async def _obtain(self, old: _Token | None) -> _Token:
        now = self._clock()
        if old and old.refresh and (old.refresh_expires_at is None
                                    or now < old.refresh_expires_at):
            try:
                return await self._grant({"grant_type": "refresh_token",
                                          "refresh_token": old.refresh,
                                          "client_id": REFRESH_CLIENT_ID,
                                          "username": self.username})
            except AuthError:
                pass  # refresh token refused (revoked or expired): log in again
        return await self._grant({"grant_type": "password", "username": self.username,
                                  "password": self._password, "client_id": CLIENT_ID})

    async def _grant(self, form: dict[str, str]) -> _Token:
        started = self._clock()
        kind = form["grant_type"]
        try:
            status, body = await self._post(self.token_url, form)
        except CrossOriginRedirect as exc:
            raise AuthError(f"{kind} grant not sent: {exc}") from exc
        if status in (400, 401, 403):
            raise AuthError(f"the token endpoint refused the {kind} grant for user "
                            f"{self.username!r} (HTTP {status})")
        if status != 200:
            raise AuthError(f"the token endpoint failed for user {self.username!r} "
                            f"(HTTP {status}: {snippet(body, 120)})")
        return _parse_token(body, started)


def _parse_token(body: bytes, started: float) -> _Token:
    try:
        data: Any = json.loads(body)
        access = str(data["access_token"])
    except (ValueError, KeyError, TypeError):
        # Never echo the body: it may hold a token.
        raise ProtocolError("the token endpoint answered without an access_token",
                            endpoint="token") from None
    lifetime = to_int(data.get("expires_in")) or 3600
    margin = min(RENEW_MARGIN, lifetime * 0.1)
    refresh_life = to_int(data.get("refresh_expires_in"))
    return _Token(
        access=access,
        refresh=str(data["refresh_token"]) if data.get("refresh_token") else None,
        expires_at=started + lifetime - margin,
        refresh_expires_at=started + refresh_life - margin if refresh_life else None,
    )


def make_auth(source: SourceSettings, post_form: PostForm) -> Auth:
    """The credentials that fit the configured dialect."""
    if source.api == "v3":
        return ApiKeyAuth(source.api_key) if source.api_key else NoAuth()
    if source.username:
        return TokenAuth(source.resolved_token_url(), source.username, source.password,
                         post_form)
    return NoAuth()
