"""Fault injection: each kind does what it says, counts and rates are reproducible."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import aiohttp
import pydicom
import pytest

from mirror.simulator.faults import parse_spec
from mirror.simulator.testing import SimulatorHandle, start_simulator
from tests.simulator.conftest import fetch


def _uid(simulator: SimulatorHandle) -> str:
    return next(iter(simulator.ground_truth()))


async def _image(simulator: SimulatorHandle, uid: str, api: str = "nbia-v1"):
    return await fetch(simulator.base_url(api) + "/getImage", SeriesInstanceUID=uid)


async def test_status_fault_with_count(simulator: SimulatorHandle) -> None:
    uid = _uid(simulator)
    simulator.add_fault("getImage", "status", status=500, count=2)
    statuses = [(await _image(simulator, uid)).status for _ in range(3)]
    assert statuses == [500, 500, 200]
    other = await fetch(simulator.base_url("nbia-v1") + "/getSeries")
    assert other.status == 200


async def test_retry_after_only_in_its_dialect(simulator: SimulatorHandle) -> None:
    uid = _uid(simulator)
    simulator.add_fault("getImage", "retry_after", dialect="nbia-v4", status=503, seconds=7)
    v4 = await _image(simulator, uid, "nbia-v4")
    assert (v4.status, v4.headers["Retry-After"]) == (503, "7")
    assert (await _image(simulator, uid, "nbia-v1")).status == 200


async def test_reset_mid_body(simulator: SimulatorHandle) -> None:
    uid = _uid(simulator)
    simulator.add_fault("getImage", "reset", after_bytes=1000, count=1)
    with pytest.raises(aiohttp.ClientPayloadError):
        await _image(simulator, uid)
    assert (await _image(simulator, uid)).status == 200


async def test_truncate_closes_the_zip_early_but_validly(simulator: SimulatorHandle) -> None:
    uid = _uid(simulator)
    simulator.add_fault("getImage", "truncate", fraction=0.5, count=1)
    raw = await _image(simulator, uid)
    assert raw.status == 200
    with zipfile.ZipFile(io.BytesIO(raw.body)) as zf:
        assert zf.testzip() is None
        dicom = [n for n in zf.namelist() if n.endswith(".dcm")]
    assert len(dicom) == 1 < simulator.ground_truth()[uid].image_count


async def test_raw_truncate_cuts_the_bytes(simulator: SimulatorHandle) -> None:
    uid = _uid(simulator)
    full = await _image(simulator, uid)
    simulator.add_fault("getImage", "truncate", after_bytes=500, raw=1, count=1)
    cut = await _image(simulator, uid)
    assert cut.status == 200 and cut.body == full.body[:500]
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(cut.body))


async def test_corrupt_flips_bytes_not_the_cache(simulator: SimulatorHandle) -> None:
    uid = _uid(simulator)
    clean = await _image(simulator, uid)
    simulator.add_fault("getImage", "corrupt", bytes=8, count=1)
    bad = await _image(simulator, uid)
    assert len(bad.body) == len(clean.body) and bad.body != clean.body
    assert sum(a != b for a, b in zip(bad.body, clean.body, strict=True)) == 8
    assert (await _image(simulator, uid)).body == clean.body


async def test_slow_and_latency(simulator: SimulatorHandle) -> None:
    uid = _uid(simulator)
    size = len((await _image(simulator, uid)).body)
    simulator.add_fault("getImage", "slow", bytes_per_second=size * 2, count=1)
    start = time.monotonic()
    await _image(simulator, uid)
    assert time.monotonic() - start >= 0.4
    simulator.add_fault("getSeries", "latency", seconds=0.3, count=1)
    start = time.monotonic()
    await fetch(simulator.base_url("v3") + "/getSeries")
    assert time.monotonic() - start >= 0.3


@pytest.mark.parametrize(("entry", "name"), [
    ("dotdot", "../../../../tmp/tcia-sim-escape.dcm"),
    ("absolute", "/tmp/tcia-sim-absolute.dcm"),
    ("bomb", "bomb.dcm"),
])
async def test_hostile_entries(simulator: SimulatorHandle, entry: str, name: str) -> None:
    uid = _uid(simulator)
    simulator.add_fault("getImage", "hostile", entry=entry, size=8 << 20, count=1)
    raw = await _image(simulator, uid)
    with zipfile.ZipFile(io.BytesIO(raw.body)) as zf:
        infos = {i.filename: i for i in zf.infolist()}
    assert name in infos
    if entry == "bomb":
        assert infos[name].file_size == 8 << 20 and infos[name].compress_size < 64 << 10


async def test_hostile_duplicate_entry(simulator: SimulatorHandle) -> None:
    uid = _uid(simulator)
    simulator.add_fault("getImage", "hostile", entry="duplicate", count=1)
    raw = await _image(simulator, uid)
    with zipfile.ZipFile(io.BytesIO(raw.body)) as zf:
        names = [i.filename for i in zf.infolist()]
    assert len(names) != len(set(names))


async def test_wrong_series(simulator: SimulatorHandle) -> None:
    uid = _uid(simulator)
    simulator.add_fault("getImage", "wrong_series", count=1)
    raw = await _image(simulator, uid)
    assert raw.headers["Content-Disposition"].endswith(f'"{uid}.zip"')
    with zipfile.ZipFile(io.BytesIO(raw.body)) as zf:
        ds = pydicom.dcmread(io.BytesIO(zf.read("00000001.dcm")))
    assert ds.SeriesInstanceUID != uid


async def test_rate_is_reproducible_from_the_seed(sim_data_dir: Path) -> None:
    async def pattern() -> list[int]:
        with start_simulator(sim_data_dir, fault_seed=42) as sim:
            sim.add_fault("getCollectionValues", "status", rate=0.5)
            url = sim.base_url("nbia-v1") + "/getCollectionValues"
            return [(await fetch(url)).status for _ in range(12)]

    first, second = await pattern(), await pattern()
    assert first == second
    assert set(first) == {200, 500}


async def test_clear_faults(simulator: SimulatorHandle) -> None:
    simulator.add_fault("*", "status", status=503)
    assert (await fetch(simulator.base_url("v3") + "/getSeries")).status == 503
    simulator.clear_faults()
    assert (await fetch(simulator.base_url("v3") + "/getSeries")).status == 200


def test_parse_spec() -> None:
    assert parse_spec("getImage:status=500:count=3") == {
        "endpoint": "getImage", "kind": "status", "dialect": None, "status": 500, "count": 3}
    assert parse_spec("nbia-v4/getImage:truncate=0.5") == {
        "endpoint": "getImage", "kind": "truncate", "dialect": "nbia-v4", "fraction": 0.5}
    assert parse_spec("getImage:hostile=bomb:size=1000")["entry"] == "bomb"
