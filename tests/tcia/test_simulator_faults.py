"""The client under the simulator's faults in all three dialects; the server counts requests."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import pytest

from mirror.errors import AuthError, PermanentApiError, TransientApiError
from mirror.simulator.testing import DatasetSpec, SimulatorHandle, start_simulator
from tests.tcia.conftest import client
from tests.tcia.test_simulator import APIS, Buffer, sim_client

PASSWORD = "pw-SECRET-41"


class Restartable(Buffer):
    def __init__(self) -> None:
        super().__init__()
        self.restarts = 0

    def restart(self) -> None:
        self.restarts += 1
        self.data.clear()


def requests(simulator: SimulatorHandle, api: str, endpoint: str) -> int:
    return simulator.stats()["requests"].get(f"{api}:{endpoint}", 0)


def first_series(simulator: SimulatorHandle):
    return next(iter(simulator.ground_truth().values()))


def assert_valid_zip(data: bytes, image_count: int) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        assert len([n for n in zf.namelist() if n.endswith(".dcm")]) == image_count


@pytest.mark.parametrize("api", APIS)
async def test_burst_of_500s_then_success(simulator: SimulatorHandle, api: str) -> None:
    coll = simulator.collections()[0]
    t = first_series(simulator)
    simulator.add_fault("getSeries", "status", dialect=api, status=500, count=2)
    simulator.add_fault("getImage", "status", dialect=api, status=502, count=3)
    simulator.reset_stats()
    sink = Buffer()
    async with sim_client(simulator, api) as c:
        listed = await c.get_series(collection=coll)
        await c.download_image(t.series_uid, sink)
    assert {s.series_uid for s in listed} == set(simulator.ground_truth(coll))
    assert_valid_zip(bytes(sink.data), t.image_count)
    assert requests(simulator, api, "getSeries") == 3
    assert requests(simulator, api, "getImage") == 4


@pytest.mark.parametrize("api", APIS)
async def test_429_retry_after_is_waited_out(simulator: SimulatorHandle, api: str) -> None:
    simulator.add_fault("getCollectionValues", "retry_after", dialect=api, seconds=1, count=1)
    async with sim_client(simulator, api) as c:
        started = time.monotonic()
        values = await c.get_collection_values()
        elapsed = time.monotonic() - started
    assert values == simulator.collections()
    assert elapsed >= 1.0
    assert requests(simulator, api, "getCollectionValues") == 2


@pytest.mark.parametrize("api", APIS)
async def test_reset_mid_zip(simulator: SimulatorHandle, api: str) -> None:
    t = first_series(simulator)
    simulator.add_fault("getImage", "reset", dialect=api, after_bytes=1000, count=2)
    async with sim_client(simulator, api) as c:
        # A plain sink cannot be rewound: the cut-off goes up, marked transient.
        with pytest.raises(TransientApiError, match="cut off after 1000 bytes") as info:
            await c.download_image(t.series_uid, Buffer())
        assert info.value.transient
        # A sink with restart() is emptied and the download retried in place.
        sink = Restartable()
        await c.download_image(t.series_uid, sink)
    assert sink.restarts == 1
    assert_valid_zip(bytes(sink.data), t.image_count)
    assert requests(simulator, api, "getImage") == 3


@pytest.mark.parametrize("api", APIS)
async def test_reset_mid_listing_is_resumed(simulator: SimulatorHandle, api: str) -> None:
    coll = simulator.collections()[0]
    simulator.add_fault("getSeries", "reset", dialect=api, after_bytes=1500, count=1)
    async with sim_client(simulator, api) as c:
        listed = [s.series_uid async for s in c.iter_series(collection=coll)]
    assert sorted(listed) == sorted(simulator.ground_truth(coll))  # no duplicates either
    assert requests(simulator, api, "getSeries") == 2


@pytest.mark.parametrize("api", APIS)
async def test_400_is_not_retried_and_its_message_surfaces(simulator: SimulatorHandle,
                                                           api: str) -> None:
    async with sim_client(simulator, api) as c:
        with pytest.raises(PermanentApiError) as info:
            await c.download_image("1.2.3.999", Buffer())
        with pytest.raises(PermanentApiError, match="SeriesInstanceUID is required"):
            await c.query("getSeriesSize", {})
    assert info.value.status == 400 and "1.2.3.999" in str(info.value)
    assert ("not in public domain" in str(info.value)
            or "not been granted" in str(info.value))
    assert requests(simulator, api, "getImage") == 1
    assert requests(simulator, api, "getSeriesSize") == 1


@pytest.fixture
def auth_simulator(sim_data_dir: Path):
    with start_simulator(sim_data_dir, DatasetSpec(), auth=True, users={"alice": PASSWORD},
                         api_key="K-SECRET-7") as handle:
        yield handle


@pytest.mark.parametrize("api", ["nbia-v1", "nbia-v4"])
async def test_expired_token_is_refreshed(auth_simulator: SimulatorHandle, api: str) -> None:
    sim = auth_simulator
    t = first_series(sim)
    async with sim_client(sim, api, username="alice", password=PASSWORD,
                          token_url=sim.token_url) as c:
        first = Buffer()
        await c.download_image(t.series_uid, first)
        sim.expire_tokens()  # every access token ends now
        second = Buffer()
        await c.download_image(t.series_uid, second)
        sim.add_fault("getImage", "expire_token", dialect=api, count=1)  # ends mid-use
        third = Buffer()
        await c.download_image(t.series_uid, third)
    assert first.data == second.data == third.data
    stats = sim.stats()
    assert stats["requests"]["token:oauth/token"] == 3  # password, then two refreshes
    assert stats["requests"][f"{api}:getImage"] == 5  # two 401s, each retried once
    assert stats["statuses"].get("401", stats["statuses"].get(401)) == 2


@pytest.mark.parametrize("api", ["nbia-v1", "nbia-v4"])
async def test_wrong_password_is_an_auth_error(auth_simulator: SimulatorHandle,
                                               api: str) -> None:
    sim = auth_simulator
    c = sim_client(sim, api, username="alice", password="wrong-" + PASSWORD,
                   token_url=sim.token_url)
    async with c:
        with pytest.raises(AuthError) as info:
            await c.download_image(first_series(sim).series_uid, Buffer())
    assert info.value.exit_code == 3
    assert PASSWORD not in str(info.value) and PASSWORD not in repr(c)


async def test_v3_api_key(auth_simulator: SimulatorHandle) -> None:
    sim = auth_simulator
    async with sim_client(sim, "v3", api_key="K-SECRET-7") as c:
        assert await c.get_collection_values() == sim.collections()
    async with client(sim.base_url("v3"), api="v3", api_key="nope") as c:
        with pytest.raises(AuthError, match="HTTP 401") as info:
            await c.get_collection_values()
    assert "nope" not in str(info.value)
