"""Credentials never follow a redirect off-origin (issue 10, item 2), through the real CLI.

A proxy in front of the simulator answers with redirects to a second 127.0.0.1 server
on another port, which records everything it is sent: it must never see the api_key,
a Bearer token or the password. Same-origin redirects are still followed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web

from mirror.simulator.state import PREFIXES
from mirror.simulator.testing import DatasetSpec, SimulatorHandle, start_simulator
from tests.e2e.harness import Mirror, assert_archive_matches
from tests.hostile.wire_server import (
    WireServer,
    forward_to,
    no_traceback,
    proxy,
    serve,
    write_config,
)

pytestmark = pytest.mark.slow
SECRET_KEY = "key-7f3a9c"
PASSWORD = "pw-51d0e2"


def leaked(server: WireServer, *secrets: str) -> list[str]:
    """Every request to *server* that carried a credential, in headers or body."""
    out = []
    for seen in server.requests():
        text = " ".join(f"{k}: {v}" for k, v in seen.headers.items()) + seen.body.decode(
            "latin-1")
        if any(secret in text for secret in secrets) or "Bearer" in text:
            out.append(f"{seen.method} {seen.path}")
    return out


def redirect(to: WireServer, status: int = 302):
    async def rule(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, headers={"Location": to.url + request.path_qs})
    return rule


def test_v3_api_key_is_not_sent_along_a_redirect_to_another_port(
        tmp_path: Path, sim_data_dir: Path) -> None:
    with start_simulator(sim_data_dir, DatasetSpec(), api_key=SECRET_KEY) as sim, \
            serve(forward_to(sim.url)) as other, \
            proxy(sim.url, {"getSeries": redirect(other)}) as front:
        mirror = _mirror(tmp_path, front.url + PREFIXES["v3"], "v3", sim,
                         f'api_key = "{SECRET_KEY}"')
        proc = mirror.run("sync", "--json")
        assert front.requests("getSeries"), "the redirect was never asked for"
        assert leaked(other, SECRET_KEY) == []
        assert proc.returncode == 1 and no_traceback(proc.stderr)
        assert "another origin" in proc.stdout and "source.base_url" in proc.stdout


def test_bearer_token_is_not_sent_along_a_redirect_to_another_port(
        tmp_path: Path, sim_data_dir: Path) -> None:
    with start_simulator(sim_data_dir, DatasetSpec(), auth=True,
                         users={"alice": PASSWORD}) as sim, \
            serve(forward_to(sim.url)) as other, \
            proxy(sim.url, {"getSeries": redirect(other, 307)}) as front:
        mirror = _mirror(tmp_path, front.url + PREFIXES["nbia-v4"], "nbia-v4", sim,
                         f'username = "alice"\npassword = "{PASSWORD}"')
        proc = mirror.run("sync", "--json")
        assert front.requests("getSeries") and front.requests("token")
        assert leaked(other, PASSWORD) == []
        assert proc.returncode == 1 and no_traceback(proc.stderr)
        assert "another origin" in proc.stdout


def test_password_grant_is_not_posted_along_a_token_redirect(
        tmp_path: Path, sim_data_dir: Path) -> None:
    with start_simulator(sim_data_dir, DatasetSpec(), auth=True,
                         users={"alice": PASSWORD}) as sim, \
            serve(forward_to(sim.url)) as other, \
            proxy(sim.url, {"token": redirect(other, 307)}) as front:
        mirror = _mirror(tmp_path, front.url + PREFIXES["nbia-v4"], "nbia-v4", sim,
                         f'username = "alice"\npassword = "{PASSWORD}"')
        proc = mirror.run("sync", "--json")
        assert front.requests("token"), "the token endpoint was never asked"
        assert leaked(other, PASSWORD) == []
        assert proc.returncode == 3 and no_traceback(proc.stderr)
        assert "another origin" in proc.stderr and PASSWORD not in proc.stderr


def test_same_origin_redirects_are_followed(tmp_path: Path, simulator: SimulatorHandle) -> None:
    """A moved path on the configured origin is fine: the sync completes through it."""
    moved = "/moved"

    async def to_moved(request: web.Request) -> web.StreamResponse | None:
        if request.path.startswith(moved):
            return None
        return web.Response(status=301, headers={"Location": moved + request.path_qs})

    forward = forward_to(simulator.url)

    async def handler(request: web.Request) -> web.StreamResponse:
        answer = await to_moved(request)
        if answer is not None:
            return answer
        request = request.clone(rel_url=request.path_qs[len(moved):])
        return await forward(request)

    with serve(handler) as front:
        mirror = _mirror(tmp_path, front.url + PREFIXES["nbia-v4"], "nbia-v4", simulator)
        proc = mirror.run("sync", "--json")
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert any(s.path.startswith(moved) for s in front.requests())
    assert_archive_matches(mirror.root, simulator.ground_truth())


def _mirror(tmp: Path, base_url: str, api: str, sim: SimulatorHandle,
            source: str = "") -> Mirror:
    """The token URL defaults to <base origin>/nbia-api/oauth/token: the proxy's origin."""
    return write_config(tmp, base_url=base_url, api=api, collections=sim.collections(),
                        source=source)
