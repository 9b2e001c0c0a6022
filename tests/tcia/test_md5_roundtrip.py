"""The client against the simulator on v4: IncludeMD5 ZIPs, stored MD5s and the hierarchy.

The per-image values a verified download hands back (ExtractResult.server_md5) rebuild
the server's getMD5Hierarchy exactly, whatever the server stores (short, blank, NULL).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mirror import merkle
from mirror.simulator.testing import DatasetSpec, SimulatorHandle, start_simulator
from mirror.transfer import ExpectedSeries, extract_series_zip
from tests.tcia.conftest import client

SPEC = DatasetSpec(seed=3, patients=2, series=3, instances=8, instance_size=512)


@pytest.fixture
def sim(sim_data_dir: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(sim_data_dir, SPEC) as handle:
        yield handle


class FileSink:
    def __init__(self, path: Path) -> None:
        self.f = path.open("wb")

    def write(self, chunk: bytes) -> None:
        self.f.write(chunk)


async def _fetch(sim: SimulatorHandle, uid: str, tmp_path: Path, *, new_names: bool = False):
    zip_path = tmp_path / f"{uid}-{new_names}.zip"
    sink = FileSink(zip_path)
    async with client(sim.base_url("nbia-v4"), api="nbia-v4") as c:
        await c.download_image(uid, sink, md5=True, new_file_names=new_names)
        server_hash = await c.md5_hierarchy(series_uid=uid)
    sink.f.close()
    t = sim.ground_truth()[uid]
    expected = ExpectedSeries(uid, t.study_uid, t.image_count, t.file_size, md5_source=True)
    return extract_series_zip(zip_path, tmp_path / f"files-{uid}-{new_names}",
                              expected=expected), server_hash


async def test_stored_values_rebuild_the_series_hash(sim: SimulatorHandle,
                                                     tmp_path: Path) -> None:
    chosen = sim.set_stored_md5(short=1)
    (short_sop,) = chosen
    uid = next(u for u, t in sim.ground_truth().items() if short_sop in t.instances)
    blank_sop = sorted(s for s in sim.ground_truth()[uid].instances if s != short_sop)[0]
    sim.set_stored_md5(sop_uids={blank_sop: "blank"})

    result, server_hash = await _fetch(sim, uid, tmp_path)

    assert result.license_text and sim.collections()[0] in result.license_text
    assert result.md5_unknown == (blank_sop,) and not result.md5_checked
    assert result.server_md5[short_sop] == chosen[short_sop]
    assert result.server_md5[blank_sop] == " "
    assert merkle.series_hash(result.server_md5.values()) == server_hash
    # Our own digests differ from what the server hashes: they would not match.
    assert merkle.series_hash(i.md5 for i in result.instances) != server_hash


async def test_a_null_digest_is_an_empty_field_not_a_short_zip(sim: SimulatorHandle,
                                                                tmp_path: Path) -> None:
    ((sop, _),) = sim.set_stored_md5(null=1).items()
    uid = next(u for u, t in sim.ground_truth().items() if sop in t.instances)
    # A verified v4 download asks NewFileNames=Yes: the default-name branch would end
    # the ZIP before that image (see test_stored_md5), this one lists it with no hash.
    result, server_hash = await _fetch(sim, uid, tmp_path)
    assert result.server_md5[sop] is None and result.md5_unknown == (sop,)
    assert merkle.series_hash(result.server_md5.values()) == server_hash


async def test_study_patient_and_collection_from_series(sim: SimulatorHandle) -> None:
    truth = sim.ground_truth()
    async with client(sim.base_url("nbia-v4"), api="nbia-v4") as c:
        series = {u: await c.md5_hierarchy(series_uid=u) for u in truth}
        t = next(iter(truth.values()))
        studies = {x.study_uid for x in truth.values() if x.patient_id == t.patient_id}
        study_hashes = []
        for study in studies:
            mine = merkle.combine(series[u] for u, x in truth.items() if x.study_uid == study)
            assert await c.md5_hierarchy(study_uid=study) == mine
            study_hashes.append(mine)
        patient = merkle.combine(study_hashes)
        assert await c.md5_hierarchy(patient_id=t.patient_id,
                                     collection=t.collection) == patient
        assert await c.md5_hierarchy(collection="NO-SUCH") == ""
