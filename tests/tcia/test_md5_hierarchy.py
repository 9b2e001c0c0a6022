"""getMD5Hierarchy on the wire: POST form, exact field names, Accept, and a validated body."""

from __future__ import annotations

import pytest
from aiohttp import web

from mirror.errors import ProtocolError, UsageError
from tests.tcia.conftest import client

HASH = "851b85e1081e49929d3487d4de1bd827"


class Server:
    def __init__(self, body: bytes = HASH.encode()) -> None:
        self.body = body
        self.calls: list[tuple[str, str, str, dict[str, str], str]] = []

    async def handler(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.calls.append((request.method, request.match_info["name"],
                           request.content_type, {k: str(v) for k, v in form.items()},
                           request.headers.get("Accept", "")))
        return web.Response(body=self.body, content_type="text/plain")


@pytest.mark.parametrize(("kwargs", "form"), [
    ({"series_uid": "1.2.3"}, {"SeriesInstanceUID": "1.2.3"}),
    ({"study_uid": "1.2"}, {"StudyInstanceUID": "1.2"}),
    ({"study_uid": "1.2", "collection": "C"}, {"StudyInstanceUID": "1.2"}),
    ({"patient_id": "P1", "collection": "C"}, {"PatientID": "P1", "Collection": "C"}),
    ({"collection": "LIDC-IDRI"}, {"Collection": "LIDC-IDRI"}),
])
async def test_form_fields_and_method(serve, kwargs: dict[str, str],
                                      form: dict[str, str]) -> None:
    server = Server()
    base = await serve({"/api/{name}": server.handler})
    async with client(base, api="nbia-v4") as c:
        assert c.has_md5_hierarchy
        assert await c.md5_hierarchy(**kwargs) == HASH
    assert server.calls == [("POST", "getMD5Hierarchy", "application/x-www-form-urlencoded",
                             form, "*/*")]


@pytest.mark.parametrize("body", [b"", b"0", b"abc", HASH.encode()])
async def test_empty_and_short_hashes_pass(serve, body: bytes) -> None:
    base = await serve({"/api/{name}": Server(body).handler})
    async with client(base, api="nbia-v4") as c:
        assert await c.md5_hierarchy(series_uid="1.2") == body.decode()


@pytest.mark.parametrize("body", [
    f'"{HASH}"'.encode(),          # JSON-quoted
    HASH.upper().encode(),         # the server renders %032x: lowercase only
    (HASH + "0").encode(),         # 33 digits
    (HASH + "\n").encode(),
    b"<html><body>Error</body></html>",
    b"null",
])
async def test_anything_else_is_a_protocol_error(serve, body: bytes) -> None:
    base = await serve({"/api/{name}": Server(body).handler})
    async with client(base, api="nbia-v4") as c:
        with pytest.raises(ProtocolError, match="getMD5Hierarchy: not an MD5 hash"):
            await c.md5_hierarchy(study_uid="1.2")


@pytest.mark.parametrize("kwargs", [
    {}, {"patient_id": "P1"}, {"series_uid": "1", "study_uid": "2"},
    {"patient_id": "P1", "study_uid": "2", "collection": "C"},
])
async def test_ambiguous_levels_are_refused_before_the_wire(serve, kwargs) -> None:
    server = Server()
    base = await serve({"/api/{name}": server.handler})
    async with client(base, api="nbia-v4") as c:
        with pytest.raises(UsageError, match="md5_hierarchy"):
            await c.md5_hierarchy(**kwargs)
    assert server.calls == []


@pytest.mark.parametrize("api", ["v3", "nbia-v1"])
async def test_other_dialects_have_no_hierarchy(serve, api: str) -> None:
    server = Server()
    base = await serve({"/api/{name}": server.handler})
    async with client(base, api=api) as c:
        assert not c.has_md5_hierarchy
        with pytest.raises(UsageError, match=f"the {api} API has no getMD5Hierarchy"):
            await c.md5_hierarchy(collection="C")
    assert server.calls == []
