"""TLS is verified by default; a configured CA bundle makes a private CA trusted."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from mirror.errors import ConfigError, SourceUnreachable
from mirror.retry import RetryPolicy
from tests.tcia.conftest import client

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@pytest.fixture
def cert(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA)."""
    key, crt = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(crt), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return crt, key


@pytest.fixture
async def https_base(cert: tuple[Path, Path]) -> AsyncIterator[str]:
    async def values(request: web.Request) -> web.Response:
        return web.json_response([{"Collection": "A"}])
    app = web.Application()
    app.router.add_get("/api/getCollectionValues", values)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*cert)
    server = TestServer(app, host="127.0.0.1", scheme="https")
    await server.start_server(ssl=context)
    yield str(server.make_url("/api"))
    await server.close()


async def test_untrusted_certificate_is_refused_without_retries(https_base: str) -> None:
    slow_retries = RetryPolicy(retries=3, base=10.0, cap=10.0)  # a retry would show in time
    async with client(https_base, policy=slow_retries) as c:
        started = time.monotonic()
        with pytest.raises(SourceUnreachable, match="TLS verification failed") as info:
            await c.get_collection_values()
    assert time.monotonic() - started < 5.0
    assert info.value.exit_code == 3


async def test_ca_bundle_makes_it_trusted(https_base: str, cert: tuple[Path, Path]) -> None:
    async with client(https_base, ca_bundle=str(cert[0])) as c:
        assert await c.get_collection_values() == ["A"]


async def test_missing_ca_bundle_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"source\.ca_bundle"):
        async with client("https://127.0.0.1:1/api", ca_bundle=str(tmp_path / "nope.pem")):
            pass
