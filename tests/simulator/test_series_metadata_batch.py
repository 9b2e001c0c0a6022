"""v4 getSeriesMetadata as the server takes it: repeated list= fields and comma lists."""

from __future__ import annotations

import json

import aiohttp

from mirror.simulator.testing import SimulatorHandle


async def _post(url: str, fields: list[tuple[str, str]]) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.post(url, data=fields) as resp:
        return resp.status, await resp.read()


async def test_repeated_and_comma_separated_list_fields(simulator: SimulatorHandle) -> None:
    uids = sorted(simulator.ground_truth())
    url = simulator.base_url("nbia-v4") + "/getSeriesMetadata"
    # two list= fields, one of them a comma list with stray characters the server strips
    fields = [("list", uids[0]), ("list", f" {uids[1]} ;,{uids[2]}\n,1.2.3.4"),
              ("format", "json")]
    status, body = await _post(url, fields)
    assert status == 200
    assert sorted(r["SeriesInstanceUID"] for r in json.loads(body)) == uids[:3]
    status, body = await _post(url, [("list", "1.2.3.4"), ("format", "json")])
    assert (status, body) == (200, b"")  # nothing known: empty 200, like the server
