"""Admin routes under /_sim/ and request statistics."""

from __future__ import annotations

import json

import aiohttp

from mirror.simulator.testing import SimulatorHandle
from tests.simulator.conftest import fetch


async def test_stats_count_requests_statuses_and_bytes(simulator: SimulatorHandle) -> None:
    simulator.reset_stats()
    uid = next(iter(simulator.ground_truth()))
    await fetch(simulator.base_url("nbia-v1") + "/getSeries")
    await fetch(simulator.base_url("nbia-v1") + "/getSeries")
    zipped = await fetch(simulator.base_url("nbia-v4") + "/getImage", SeriesInstanceUID=uid)
    await fetch(simulator.base_url("v3") + "/getSeriesSize")
    stats = simulator.stats()
    assert stats["requests"] == {"nbia-v1:getSeries": 2, "nbia-v4:getImage": 1,
                                 "v3:getSeriesSize": 1}
    assert stats["requests_total"] == 4
    assert stats["statuses"] == {"200": 3, "400": 1}
    assert stats["bytes"] > len(zipped.body)
    over_http = json.loads((await fetch(simulator.url + "/_sim/stats")).body)
    assert over_http == stats  # admin calls are not counted
    await fetch(simulator.url + "/_sim/stats/reset", method="POST")
    assert simulator.stats()["requests_total"] == 0


async def test_release_faults_and_truth_over_http(simulator: SimulatorHandle) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.post(simulator.url + "/_sim/release",
                          json={"on": "2024-05-01", "new_patients": 1}) as r:
            summary = await r.json()
        assert r.status == 200 and len(summary["new_patient_ids"]) == 1
        async with s.get(simulator.url + "/_sim/truth", params={"collection": "SIM-LUNG"}) as r:
            truth = await r.json()
        assert set(summary["new_series_uids"]) <= set(truth)
        assert set(truth) == set(simulator.ground_truth())
        async with s.post(simulator.url + "/_sim/faults",
                          json={"spec": "getSeries:status=502:count=1"}) as r:
            assert (await r.json())["id"]
        async with s.get(simulator.url + "/_sim/faults") as r:
            assert [f["kind"] for f in await r.json()] == ["status"]
        assert (await fetch(simulator.base_url("nbia-v1") + "/getSeries")).status == 502
        async with s.post(simulator.url + "/_sim/faults",
                          json={"endpoint": "getSeries", "kind": "status", "status": 503}) as r:
            assert r.status == 200
        async with s.delete(simulator.url + "/_sim/faults") as r:
            assert r.status == 200
        assert (await fetch(simulator.base_url("nbia-v1") + "/getSeries")).status == 200
        async with s.post(simulator.url + "/_sim/faults", json={"spec": "getSeries:nope"}) as r:
            assert r.status == 400
        async with s.post(simulator.url + "/_sim/release", json={"on": "bad"}) as r:
            assert r.status == 400
