"""Credentials: v3 api_key header, NBIA password grant, refresh before expiry and on 401."""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from mirror.errors import AuthError
from mirror.tcia.auth import TokenAuth
from tests.tcia.conftest import client

PASSWORD = "hunter2-SECRET"


class TokenServer:
    """Issues t1, t2, ... ; resources accept only the newest token."""

    def __init__(self, expires_in: int = 3600, refuse: bool = False) -> None:
        self.grants: list[dict[str, str]] = []
        self.issued = 0
        self.expires_in = expires_in
        self.refuse = refuse
        self.seen: list[str] = []

    async def token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.grants.append(form)
        if self.refuse or (form.get("grant_type") == "password"
                           and form.get("password") != PASSWORD):
            return web.json_response({"error": "invalid_grant"}, status=401)
        self.issued += 1
        return web.json_response({"access_token": f"t{self.issued}",
                                  "refresh_token": f"r{self.issued}",
                                  "expires_in": self.expires_in, "token_type": "Bearer"})

    async def resource(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        self.seen.append(auth)
        if auth != f"Bearer t{self.issued}":
            return web.Response(status=401)
        return web.json_response([{"Collection": "A"}])

    def routes(self) -> dict:
        return {"/oauth/token": self.token, "/api/getCollectionValues": self.resource}


async def test_password_grant_then_bearer(serve) -> None:
    server = TokenServer()
    base = await serve(server.routes())
    async with client(base, username="alice", password=PASSWORD,
                      token_url=base.replace("/api", "/oauth/token")) as c:
        assert await c.get_collection_values() == ["A"]
        assert await c.get_collection_values() == ["A"]
    assert server.grants == [{"username": "alice", "password": PASSWORD, "client_id": "NBIA",
                              "grant_type": "password"}]  # one token for both calls
    assert server.seen == ["Bearer t1", "Bearer t1"]


async def test_401_refreshes_once_then_succeeds(serve) -> None:
    server = TokenServer()
    base = await serve(server.routes())
    async with client(base, username="alice", password=PASSWORD,
                      token_url=base.replace("/api", "/oauth/token")) as c:
        assert await c.get_collection_values() == ["A"]
        server.issued += 1  # the server revokes t1 (as if it expired early)
        assert await c.get_collection_values() == ["A"]
    assert [g["grant_type"] for g in server.grants] == ["password", "refresh_token"]
    assert server.grants[1]["refresh_token"] == "r1"
    assert server.seen[-2:] == ["Bearer t1", "Bearer t3"]


async def test_refused_password_is_an_auth_error_without_the_secret(serve) -> None:
    server = TokenServer(refuse=True)
    base = await serve(server.routes())
    c = client(base, username="alice", password=PASSWORD,
               token_url=base.replace("/api", "/oauth/token"))
    async with c:
        with pytest.raises(AuthError) as info:
            await c.get_collection_values()
    assert info.value.exit_code == 3
    assert "alice" in str(info.value)
    for text in (str(info.value), repr(info.value), repr(c), repr(c._transport)):
        assert PASSWORD not in text


async def test_401_twice_is_final(serve) -> None:
    async def always_401(request: web.Request) -> web.Response:
        return web.Response(status=401, text="Unauthorized")
    server = TokenServer()
    base = await serve({**server.routes(), "/api/getCollectionValues": always_401})
    async with client(base, username="alice", password=PASSWORD,
                      token_url=base.replace("/api", "/oauth/token")) as c:
        with pytest.raises(AuthError, match="HTTP 401") as info:
            await c.get_collection_values()
    assert "t1" not in str(info.value) and "t2" not in repr(info.value)
    assert len(server.grants) == 2  # password, then one refresh


async def test_v3_api_key_header_and_403(serve) -> None:
    seen: list[str | None] = []

    async def resource(request: web.Request) -> web.Response:
        seen.append(request.headers.get("api_key"))
        if request.query.get("format") != "json":
            return web.Response(status=400, text="format missing")
        return web.Response(status=403, text="Forbidden")
    base = await serve({"/api/getCollectionValues": resource})
    async with client(base, api="v3", api_key="KEY-SECRET") as c:
        with pytest.raises(AuthError, match="HTTP 403") as info:
            await c.get_collection_values()
    assert seen == ["KEY-SECRET"]
    assert "KEY-SECRET" not in str(info.value) and "KEY-SECRET" not in repr(c)


async def test_guest_sends_no_credentials(serve) -> None:
    headers: list[dict] = []

    async def resource(request: web.Request) -> web.Response:
        headers.append(dict(request.headers))
        return web.json_response([])
    base = await serve({"/api/getCollectionValues": resource})
    async with client(base, api="nbia-v4") as c:
        await c.get_collection_values()
    assert "Authorization" not in headers[0] and "api_key" not in headers[0]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_token_is_renewed_before_it_expires() -> None:
    grants: list[dict[str, str]] = []

    async def post(url: str, form: dict[str, str]) -> tuple[int, bytes]:
        grants.append(form)
        n = len(grants)
        return 200, json.dumps({"access_token": f"t{n}", "refresh_token": f"r{n}",
                                "expires_in": 7200, "refresh_expires_in": 36000}).encode()
    clock = FakeClock()
    auth = TokenAuth("http://x/token", "alice", PASSWORD, post, clock=clock)
    assert await auth.headers() == {"Authorization": "Bearer t1"}
    clock.now += 7200 - 61  # more than a minute left: keep it
    assert await auth.headers() == {"Authorization": "Bearer t1"}
    clock.now += 2  # under a minute left: refresh before the server says 401
    assert await auth.headers() == {"Authorization": "Bearer t2"}
    assert [g["grant_type"] for g in grants] == ["password", "refresh_token"]
    clock.now += 40000  # refresh token expired too: log in again
    assert await auth.headers() == {"Authorization": "Bearer t3"}
    assert grants[-1]["grant_type"] == "password"
    assert PASSWORD not in repr(auth)


async def test_token_answer_without_access_token() -> None:
    async def post(url: str, form: dict[str, str]) -> tuple[int, bytes]:
        return 200, b'{"refresh_token": "r-SECRET"}'
    auth = TokenAuth("http://x/token", "alice", PASSWORD, post)
    with pytest.raises(Exception, match="without an access_token") as info:
        await auth.headers()
    assert "r-SECRET" not in str(info.value)


async def test_refresh_grant_sends_the_keycloak_client_id(serve) -> None:
    server = TokenServer()
    base = await serve(server.routes())
    async with client(base, username="alice", password=PASSWORD,
                      token_url=base.replace("/api", "/oauth/token")) as c:
        assert await c.get_collection_values() == ["A"]
        server.issued += 1  # t1 revoked: the client refreshes
        assert await c.get_collection_values() == ["A"]
    # Lower case: Keycloak client ids are case-sensitive and a refresh is passed through.
    assert [(g["grant_type"], g["client_id"]) for g in server.grants] == [
        ("password", "NBIA"), ("refresh_token", "nbia")]


async def test_token_refresh_against_the_simulator(sim_data_dir) -> None:
    from mirror.simulator.testing import start_simulator

    with start_simulator(sim_data_dir, auth=True, users={"alice": PASSWORD}) as sim:
        uid = next(iter(sim.ground_truth()))
        async with client(sim.base_url("nbia-v4"), api="nbia-v4", username="alice",
                          password=PASSWORD, token_url=sim.token_url) as c:
            assert await c.get_series_size(uid)
            sim.expire_tokens()
            chunks: list[bytes] = []

            class Sink:
                def write(self, chunk: bytes) -> None:
                    chunks.append(chunk)

            assert await c.download_image(uid, Sink()) > 0  # 401, refresh, retry
            assert b"".join(chunks)[:2] == b"PK"
        # The refresh was accepted: no second password login was needed.
        assert sim.sim.tokens.history == [("password", 200), ("refresh_token", 200)]
