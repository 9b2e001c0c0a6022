"""Token endpoint, Bearer checks on image endpoints, token expiry, v3 api_key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mirror.simulator.auth import TokenStore
from mirror.simulator.testing import SimulatorHandle, start_simulator
from tests.simulator.conftest import fetch


@pytest.fixture
def secured(sim_data_dir: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(sim_data_dir, auth=True, users={"alice": "s3cret"}) as handle:
        yield handle


async def _token(sim: SimulatorHandle, **form: str) -> tuple[int, dict]:
    raw = await fetch(sim.token_url, method="POST", data=form)
    return raw.status, json.loads(raw.body)


async def test_password_grant_and_bearer(secured: SimulatorHandle) -> None:
    status, body = await _token(secured, grant_type="password", username="alice",
                                password="s3cret", client_id="nbia")
    assert status == 200
    assert list(body)[:5] == ["access_token", "expires_in", "refresh_expires_in",
                              "refresh_token", "token_type"]
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    uid = next(iter(secured.ground_truth()))
    url = secured.base_url("nbia-v4") + "/getImage"
    anonymous = await fetch(url, SeriesInstanceUID=uid)
    assert (anonymous.status, anonymous.body) == (401, b"")
    bad = await fetch(url, SeriesInstanceUID=uid, headers={"Authorization": "Bearer nope"})
    assert bad.status == 401
    good = await fetch(url, SeriesInstanceUID=uid,
                       headers={"Authorization": f"Bearer {body['access_token']}"})
    assert good.status == 200
    listing = await fetch(secured.base_url("nbia-v4") + "/getSeries")
    assert listing.status == 200 and listing.body  # metadata stays open to guests


async def test_wrong_password_and_guest(secured: SimulatorHandle) -> None:
    status, body = await _token(secured, grant_type="password", username="alice", password="x")
    assert (status, body["error"]) == (401, "invalid_grant")
    status, _ = await _token(secured, grant_type="password", username="nbia_guest", password="")
    assert status == 200
    raw = await fetch(secured.token_url, method="POST", data={"grant_type": "magic"})
    assert raw.status == 500


async def test_expiry_then_refresh(secured: SimulatorHandle) -> None:
    _, body = await _token(secured, grant_type="password", username="alice", password="s3cret")
    uid = next(iter(secured.ground_truth()))
    url = secured.base_url("nbia-v1") + "/getImage"
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    secured.expire_tokens()
    assert (await fetch(url, SeriesInstanceUID=uid, headers=auth)).status == 401
    # v4 metadata swallows the UnauthorizedException into an empty result.
    meta = await fetch(secured.base_url("nbia-v4") + "/getSeries", headers=auth)
    assert (meta.status, meta.body) == (200, b"")
    status, fresh = await _token(secured, grant_type="refresh_token", client_id="nbia",
                                 refresh_token=body["refresh_token"])
    assert status == 200
    auth = {"Authorization": f"Bearer {fresh['access_token']}"}
    assert (await fetch(url, SeriesInstanceUID=uid, headers=auth)).status == 200
    reused, _ = await _token(secured, grant_type="refresh_token", client_id="nbia",
                             refresh_token=body["refresh_token"])
    assert reused == 400


async def test_expire_token_fault(secured: SimulatorHandle) -> None:
    _, body = await _token(secured, grant_type="password", username="alice", password="s3cret")
    uid = next(iter(secured.ground_truth()))
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    url = secured.base_url("nbia-v4") + "/getImage"
    secured.add_fault("getImage", "expire_token", count=1)
    assert (await fetch(url, SeriesInstanceUID=uid, headers=auth)).status == 401
    assert (await fetch(url, SeriesInstanceUID=uid, headers=auth)).status == 401  # stays expired


def test_tokens_expire_after_their_ttl() -> None:
    now = [1000.0]
    store = TokenStore({"bob": "pw"}, ttl=60, clock=lambda: now[0])
    status, body = store.grant({"grant_type": "password", "username": "bob", "password": "pw"})
    assert status == 200 and body is not None
    header = f"Bearer {body['access_token']}"
    assert store.check(header) == "ok"
    now[0] += 61
    assert store.check(header) == "expired"
    assert store.check(None) == "missing"


async def test_v3_api_key(sim_data_dir: Path) -> None:
    with start_simulator(sim_data_dir, api_key="k3y") as sim:
        url = sim.base_url("v3") + "/getCollectionValues"
        assert (await fetch(url)).status == 401
        assert (await fetch(url, headers={"api_key": "wrong"})).status == 401
        ok = await fetch(url, headers={"api_key": "k3y"})
        assert (ok.status, json.loads(ok.body)) == (200, [{"Collection": "SIM-LUNG"}])
        assert (await fetch(url, api_key="k3y")).status == 200
        assert (await fetch(sim.base_url("nbia-v1") + "/getCollectionValues")).status == 200


@pytest.mark.parametrize("client_id", ["NBIA", "nbia-stage", "", None])
async def test_refresh_needs_the_keycloak_client_id(secured: SimulatorHandle,
                                                    client_id: str | None) -> None:
    # The password grant ignores client_id (the server substitutes its own client) ...
    form = {"grant_type": "password", "username": "alice", "password": "s3cret"}
    status, body = await _token(secured, **form, **({} if client_id is None
                                                     else {"client_id": client_id}))
    assert status == 200
    # ... the refresh grant reaches Keycloak as sent: only "nbia" (case-sensitive) works.
    refresh = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    status, err = await _token(secured, **refresh, **({} if client_id is None
                                                      else {"client_id": client_id}))
    assert (status, err["error"]) == (401, "invalid_client")
    status, _ = await _token(secured, **refresh, client_id="nbia")
    assert status == 200
    assert secured.sim.tokens.history == [("password", 200), ("refresh_token", 401),
                                          ("refresh_token", 200)]
