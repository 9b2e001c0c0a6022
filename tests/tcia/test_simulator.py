"""The client against the offline simulator, in all three dialects: every endpoint, real bodies."""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import date, timedelta

import pytest

from mirror.domain import SeriesSize
from mirror.errors import UsageError
from mirror.simulator.testing import SimulatorHandle
from tests.tcia.conftest import client

APIS = ["v3", "nbia-v1", "nbia-v4"]
EARLY = date(2000, 1, 1)
LATE = date(2099, 1, 1)


class Buffer:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, chunk: bytes) -> None:
        self.data += chunk


def sim_client(simulator: SimulatorHandle, api: str, **changes: object):
    return client(simulator.base_url(api), api=api, **changes)


@pytest.mark.parametrize("api", APIS)
async def test_value_lists(simulator: SimulatorHandle, api: str) -> None:
    async with sim_client(simulator, api) as c:
        collections = await c.get_collection_values()
        assert sorted(collections) == sorted(simulator.collections())
        coll = collections[0]
        listed = await c.get_series(collection=coll)
        modalities = await c.get_modality_values(collection=coll)
        assert {m.upper() for m in modalities} == {s.modality.upper() for s in listed}
        body_parts = await c.get_body_part_values(collection=coll, modality=modalities[0])
        assert body_parts and all(isinstance(b, str) for b in body_parts)
        makers = await c.get_manufacturer_values(collection=coll)
        assert {m.upper() for m in makers} == {s.raw["Manufacturer"].upper() for s in listed}
        assert await c.get_modality_values(collection="NO-SUCH-COLLECTION") == []


@pytest.mark.parametrize("api", APIS)
async def test_patients_and_studies(simulator: SimulatorHandle, api: str) -> None:
    coll = simulator.collections()[0]
    truth = simulator.ground_truth(coll)
    patient_ids = {t.patient_id for t in truth.values()}
    async with sim_client(simulator, api) as c:
        patients = await c.get_patients(collection=coll)
        assert {p.patient_id for p in patients} == patient_ids
        assert {p.collection for p in patients} == {coll}
        one = sorted(patient_ids)[0]
        assert [p.patient_id for p in await c.get_patients(coll, one)] == [one]
        modality = (await c.get_modality_values(collection=coll))[0]
        by_modality = await c.patients_by_modality(coll, modality)
        assert by_modality and {p.patient_id for p in by_modality} <= patient_ids
        studies = await c.get_patient_studies(collection=coll)
        assert {s.study_uid for s in studies} == {t.study_uid for t in truth.values()}
        assert all(s.study_date is not None and s.series_count for s in studies)
        mine = await c.get_patient_studies(collection=coll, patient_id=one)
        assert {s.patient_id for s in mine} == {one}


@pytest.mark.parametrize("api", APIS)
async def test_series_listing_matches_ground_truth(simulator: SimulatorHandle, api: str) -> None:
    coll = simulator.collections()[0]
    truth = simulator.ground_truth(coll)
    async with sim_client(simulator, api) as c:
        listed = {s.series_uid: s async for s in c.iter_series(collection=coll)}
        assert set(listed) == set(truth)
        for uid, t in truth.items():
            s = listed[uid]
            assert (s.collection, s.patient_id, s.study_uid) == (t.collection, t.patient_id,
                                                                 t.study_uid)
            assert s.image_count == t.image_count
            if api != "v3":  # the legacy API has no FileSize column
                assert s.file_size == t.file_size and s.date_released is not None
        some = next(iter(truth.values()))
        by_study = await c.get_series(study_uid=some.study_uid)
        assert {s.series_uid for s in by_study} == {
            u for u, t in truth.items() if t.study_uid == some.study_uid}
        assert [s.series_uid for s in await c.get_series(series_uid=some.series_uid)] == [
            some.series_uid]


@pytest.mark.parametrize("api", APIS)
async def test_series_size_and_sop_uids(simulator: SimulatorHandle, api: str) -> None:
    t = next(iter(simulator.ground_truth().values()))
    async with sim_client(simulator, api) as c:
        size = await c.get_series_size(t.series_uid)
        assert size == SeriesSize(t.file_size, t.image_count)
        assert await c.get_series_size("1.2.3.999") == SeriesSize(None, None)
        assert sorted(await c.get_sop_instance_uids(t.series_uid)) == sorted(t.instances)
        assert await c.get_sop_instance_uids("1.2.3.999") == []


@pytest.mark.parametrize("api", APIS)
async def test_new_patients_and_studies_since(simulator: SimulatorHandle, api: str) -> None:
    coll = simulator.collections()[0]
    truth = simulator.ground_truth(coll)
    async with sim_client(simulator, api) as c:
        new = await c.new_patients_in_collection(coll, EARLY)
        assert {p.patient_id for p in new} == {t.patient_id for t in truth.values()}
        assert await c.new_patients_in_collection(coll, LATE) == []
        studies = await c.new_studies_in_patient_collection(coll, EARLY)
        assert {s.study_uid for s in studies} == {t.study_uid for t in truth.values()}
        one = next(iter(truth.values())).patient_id
        mine = await c.new_studies_in_patient_collection(coll, EARLY, patient_id=one)
        assert mine and {s.patient_id for s in mine} == {one}
        assert await c.new_studies_in_patient_collection(coll, LATE) == []


@pytest.mark.parametrize("api", APIS)
async def test_since_includes_the_release_day(simulator: SimulatorHandle, api: str) -> None:
    """``since`` means "released on or after": a release exactly on that day is included."""
    coll = simulator.collections()[0]
    day = date(2030, 6, 15)
    summary = simulator.publish_release(day, new_patients=1, collection=coll)
    async with sim_client(simulator, api) as c:
        on_the_day = {p.patient_id for p in await c.new_patients_in_collection(coll, day)}
        # v3's operator is unconfirmed, so it is asked one day early (a superset).
        day_after = day + timedelta(days=2 if api == "v3" else 1)
        assert await c.new_patients_in_collection(coll, day_after) == []
        assert await c.new_studies_in_patient_collection(coll, day_after) == []
        assert on_the_day and on_the_day <= {t.patient_id for t in
                                             simulator.ground_truth(coll).values()}
        assert len(on_the_day) >= 1, summary


@pytest.mark.parametrize("api", APIS)
async def test_updated_series_and_metadata(simulator: SimulatorHandle, api: str) -> None:
    t = next(iter(simulator.ground_truth().values()))
    async with sim_client(simulator, api) as c:
        if api == "v3":
            with pytest.raises(UsageError, match="getUpdatedSeries"):
                await c.get_updated_series(EARLY)
            with pytest.raises(UsageError, match="getSeriesMetaData"):
                await c.get_series_metadata(t.series_uid)
            return
        updated = await c.get_updated_series(EARLY)
        assert {s.series_uid for s in updated} == set(simulator.ground_truth())
        assert await c.get_updated_series(LATE) == []
        meta = await c.get_series_metadata(t.series_uid)
        assert meta is not None
        assert t.series_uid in (meta.get("Series UID"), meta.get("SeriesInstanceUID"))
        assert await c.get_series_metadata("1.2.3.999") is None


@pytest.mark.parametrize("api", ["nbia-v1", "nbia-v4"])
async def test_contents_by_name(simulator: SimulatorHandle, api: str) -> None:
    name, uids = next(iter(simulator.shared_lists().items()))
    async with sim_client(simulator, api) as c:
        series = await c.get_contents_by_name(name)
        assert sorted(s.series_uid for s in series) == sorted(uids)
        assert await c.get_contents_by_name("nbia-0") == []


@pytest.mark.parametrize("api", APIS)
async def test_download_image_zip(simulator: SimulatorHandle, api: str) -> None:
    t = next(iter(simulator.ground_truth().values()))
    sink, seen = Buffer(), []
    async with sim_client(simulator, api) as c:
        written = await c.download_image(t.series_uid, sink, new_file_names=True,
                                         progress=seen.append)
    assert written == len(sink.data) == sum(seen)
    with zipfile.ZipFile(io.BytesIO(bytes(sink.data))) as zf:
        dicoms = [n for n in zf.namelist() if n.endswith(".dcm")]
        assert len(dicoms) == t.image_count
        md5s = sorted(hashlib.md5(zf.read(n)).hexdigest() for n in dicoms)
    assert md5s == sorted(i.md5 for i in t.instances.values())


@pytest.mark.parametrize("api", ["nbia-v1", "nbia-v4"])
async def test_download_image_with_md5_hashes(simulator: SimulatorHandle, api: str) -> None:
    t = next(iter(simulator.ground_truth().values()))
    sink = Buffer()
    async with sim_client(simulator, api) as c:
        assert c.has_md5
        await c.download_image(t.series_uid, sink, md5=True)
    with zipfile.ZipFile(io.BytesIO(bytes(sink.data))) as zf:
        listing = zf.read("md5hashes.csv").decode()
    assert sorted(line.split(",")[1] for line in listing.splitlines()[1:]) == sorted(
        i.md5 for i in t.instances.values())


@pytest.mark.parametrize("api", APIS)
async def test_download_single_image(simulator: SimulatorHandle, api: str) -> None:
    t = next(iter(simulator.ground_truth().values()))
    sop, inst = next(iter(t.instances.items()))
    sink = Buffer()
    async with sim_client(simulator, api) as c:
        assert await c.download_single_image(t.series_uid, sop, sink) == inst.size
    assert hashlib.md5(sink.data).hexdigest() == inst.md5


@pytest.mark.parametrize("api", APIS)
async def test_raw_query(simulator: SimulatorHandle, api: str) -> None:
    coll = simulator.collections()[0]
    async with sim_client(simulator, api) as c:
        rows = await c.query("getSeries", {"Collection": coll})
    assert {r["SeriesInstanceUID"] for r in rows} == set(simulator.ground_truth(coll))


@pytest.mark.parametrize("api", APIS)
async def test_md5_hash_for_image(simulator: SimulatorHandle, api: str) -> None:
    series = next(iter(simulator.ground_truth().values()))
    sop, inst = next(iter(series.instances.items()))
    async with sim_client(simulator, api) as client:
        got = await client.get_md5_hash_for_image(sop)
        unknown = await client.get_md5_hash_for_image("1.2.3.4")
    # v3 has no per-instance MD5 endpoint; NBIA v1 spells it getM5HashForImage
    assert got == (None if api == "v3" else inst.md5)
    assert unknown is None
