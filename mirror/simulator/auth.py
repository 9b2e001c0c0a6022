"""Keycloak-like token endpoint (password and refresh_token grants) and Bearer checks.

Tokens are JWT-shaped but opaque to the simulator: it looks them up in memory, so expiry
follows the configured TTL and :meth:`TokenStore.expire_all` can end them at once.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

GUEST = "nbia_guest"
#: The Keycloak client NBIA uses. A password grant's client_id is replaced by it on the
#: server; a refresh grant is forwarded as sent, so Keycloak refuses any other id.
KEYCLOAK_CLIENT = "nbia"


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@dataclass
class _Grant:
    user: str
    expires: float


class TokenStore:
    def __init__(self, users: dict[str, str] | None, ttl: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.users = dict(users or {})
        self.ttl = ttl
        self.refresh_ttl = max(2 * ttl, 60.0)
        self.clock = clock
        self._lock = threading.Lock()
        self._access: dict[str, _Grant] = {}
        self._refresh: dict[str, _Grant] = {}
        #: (grant_type, status) of every token request, for tests.
        self.history: list[tuple[str, int]] = []

    def _password_ok(self, user: str, password: str) -> bool:
        # The real endpoint substitutes the guest password, so any password works for guest.
        return user == GUEST or (user in self.users and self.users[user] == password)

    def _issue(self, user: str) -> dict[str, object]:
        now = self.clock()
        claims = {"exp": int(time.time() + self.ttl), "iat": int(time.time()),
                  "jti": secrets.token_hex(8), "typ": "Bearer", "azp": "nbia",
                  "preferred_username": user}
        access = ".".join([_b64({"alg": "RS256", "typ": "JWT"}), _b64(claims),
                           secrets.token_urlsafe(32)])
        refresh = ".".join([_b64({"alg": "HS256", "typ": "JWT"}),
                            _b64({**claims, "typ": "Refresh"}), secrets.token_urlsafe(32)])
        with self._lock:
            self._access[access] = _Grant(user, now + self.ttl)
            self._refresh[refresh] = _Grant(user, now + self.refresh_ttl)
        return {"access_token": access, "expires_in": int(self.ttl),
                "refresh_expires_in": int(self.refresh_ttl), "refresh_token": refresh,
                "token_type": "Bearer", "id_token": access, "not-before-policy": 0,
                "session_state": secrets.token_hex(16), "scope": "openid email profile"}

    def grant(self, form: dict[str, str]) -> tuple[int, dict[str, object] | None]:
        """Answer a token request: (status, JSON body); ``None`` body means a server error."""
        status, body = self._grant(form)
        with self._lock:
            self.history.append((form.get("grant_type", ""), status))
        return status, body

    def _grant(self, form: dict[str, str]) -> tuple[int, dict[str, object] | None]:
        kind = form.get("grant_type")
        if kind == "password":
            user = form.get("username", "")
            if not self._password_ok(user, form.get("password", "")):
                return 401, {"error": "invalid_grant",
                             "error_description": "Invalid user credentials"}
            return 200, self._issue(user)
        if kind == "refresh_token":
            if form.get("client_id") != KEYCLOAK_CLIENT:
                return 401, {"error": "invalid_client",
                             "error_description": "Invalid client or Invalid client credentials"}
            with self._lock:
                found = self._refresh.pop(form.get("refresh_token", ""), None)
            if found is None or found.expires <= self.clock():
                return 400, {"error": "invalid_grant", "error_description": "Token is not active"}
            return 200, self._issue(found.user)
        return 500, None

    def check(self, header: str | None) -> str:
        """``ok``, ``missing``, ``invalid`` or ``expired`` for an Authorization header."""
        if not header:
            return "missing"
        scheme, _, token = header.partition(" ")
        with self._lock:
            found = self._access.get(token.strip()) if scheme.lower() == "bearer" else None
        if found is None:
            return "invalid"
        return "ok" if found.expires > self.clock() else "expired"

    def expire(self, header: str | None) -> None:
        token = (header or "").partition(" ")[2].strip()
        with self._lock:
            if token in self._access:
                self._access[token].expires = float("-inf")

    def expire_all(self) -> None:
        """End every access token now; refresh tokens keep working (the client's way back)."""
        with self._lock:
            for grant in self._access.values():
                grant.expires = float("-inf")
