"""Per-image MD5s stored unlike the digest: short (no leading zeros), blank (CTP " "), NULL."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mirror.simulator.testing import DatasetSpec, SimulatorHandle, start_simulator
from tests.simulator.conftest import fetch

#: Enough images that some digests start with 0 (fixed seed: always the same ones).
SPEC = DatasetSpec(seed=3, patients=2, series=3, instances=8, instance_size=512)


@pytest.fixture
def sim(sim_data_dir: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(sim_data_dir, SPEC) as handle:
        yield handle


def _series_of(sim: SimulatorHandle, sop: str) -> str:
    return next(u for u, t in sim.ground_truth().items() if sop in t.instances)


async def _zip(sim: SimulatorHandle, api: str, endpoint: str, **params: str) -> zipfile.ZipFile:
    raw = await fetch(sim.base_url(api) + "/" + endpoint, **params)
    assert raw.status == 200
    return zipfile.ZipFile(io.BytesIO(raw.body))


def _csv(zf: zipfile.ZipFile) -> dict[str, str]:
    lines = zf.read("md5hashes.csv").decode().split("\n")
    assert lines[0] == "Filename,MD5Hash" and lines[-1] == ""
    return dict(line.split(",", 1) for line in lines[1:-1])


async def _hash(sim: SimulatorHandle, uid: str) -> str:
    raw = await fetch(sim.base_url("nbia-v4") + "/getMD5Hierarchy", method="POST",
                      data={"SeriesInstanceUID": uid})
    return raw.text


def _series_hash(parts: list[str]) -> str:
    return hashlib.md5("".join(sorted(parts)).encode()).hexdigest()


async def test_short_digest_is_served_as_stored(sim: SimulatorHandle) -> None:
    ((sop, stored),) = sim.set_stored_md5(short=1).items()
    uid = _series_of(sim, sop)
    real = sim.ground_truth()[uid].instances[sop].md5
    assert real.startswith("0") and stored == real.lstrip("0")
    single = await fetch(sim.base_url("nbia-v4") + "/getMD5HashForImage", SOPInstanceUID=sop)
    assert single.text == stored
    zf = await _zip(sim, "nbia-v4", "getImage", SeriesInstanceUID=uid, IncludeMD5="Yes")
    rows = _csv(zf)
    assert sorted(rows.values()) == sorted(
        stored if s == sop else i.md5 for s, i in sim.ground_truth()[uid].instances.items())
    others = [i.md5 for s, i in sim.ground_truth()[uid].instances.items() if s != sop]
    assert await _hash(sim, uid) == _series_hash([stored, *others])


async def test_blank_digest_is_an_empty_looking_row(sim: SimulatorHandle) -> None:
    ((sop, stored),) = sim.set_stored_md5(blank=1).items()
    assert stored == " "
    uid = _series_of(sim, sop)
    for names in ("No", "Yes"):
        zf = await _zip(sim, "nbia-v4", "getImage", SeriesInstanceUID=uid, IncludeMD5="Yes",
                        NewFileNames=names)
        rows = _csv(zf)
        (blank_name,) = [n for n, v in rows.items() if v == " "]
        assert hashlib.md5(zf.read(blank_name)).hexdigest() == \
            sim.ground_truth()[uid].instances[sop].md5
        assert zf.namelist()[0] == "LICENSE" and zf.namelist()[-1] == "md5hashes.csv"
    single = await fetch(sim.base_url("nbia-v4") + "/getMD5HashForImage", SOPInstanceUID=sop)
    assert single.body == b" "
    others = [i.md5 for s, i in sim.ground_truth()[uid].instances.items() if s != sop]
    assert await _hash(sim, uid) == _series_hash([" ", *others])


async def test_null_digest_as_the_server_handles_it(sim: SimulatorHandle) -> None:
    ((sop, stored),) = sim.set_stored_md5(null=1).items()
    assert stored is None
    uid = _series_of(sim, sop)
    truth = sim.ground_truth()[uid]
    # NewFileNames=Yes: an empty field.
    zf = await _zip(sim, "nbia-v4", "getImage", SeriesInstanceUID=uid, IncludeMD5="Yes",
                    NewFileNames="Yes")
    assert sorted(_csv(zf).values())[0] == ""
    # Default names: the server throws building that row; the ZIP ends before the image.
    zf = await _zip(sim, "nbia-v4", "getImage", SeriesInstanceUID=uid, IncludeMD5="Yes")
    names = zf.namelist()
    assert names[0] == "LICENSE" and "md5hashes.csv" not in names
    assert len(names) - 1 < truth.image_count
    kept = {hashlib.md5(zf.read(n)).hexdigest() for n in names[1:]}
    assert truth.instances[sop].md5 not in kept
    # getImageWithMD5Hash: the DAO throws before any entry.
    zf = await _zip(sim, "nbia-v1", "getImageWithMD5Hash", SeriesInstanceUID=uid)
    assert zf.namelist() == []
    single = await fetch(sim.base_url("nbia-v4") + "/getMD5HashForImage", SOPInstanceUID=sop)
    assert (single.status, single.body) == (200, b"")
    others = [i.md5 for s, i in truth.instances.items() if s != sop]
    assert await _hash(sim, uid) == hashlib.md5(
        ("null" + "".join(sorted(others))).encode()).hexdigest()


async def test_a_silent_revision_drops_the_override(sim: SimulatorHandle) -> None:
    from datetime import date

    uid = sorted(sim.ground_truth())[0]
    before = sim.ground_truth()[uid].instances
    sim.set_stored_md5(sop_uids=dict.fromkeys(before, "blank"))
    sim.publish_release(date(2024, 1, 2), silent_series=(uid,))
    after = sim.ground_truth()[uid].instances
    (revised,) = [sop for sop in before if before[sop].md5 != after[sop].md5]
    zf = await _zip(sim, "nbia-v4", "getImage", SeriesInstanceUID=uid, IncludeMD5="Yes")
    # The new image has a new digest of its own; the untouched images keep their " ".
    assert sorted(_csv(zf).values()) == sorted([after[revised].md5] + [" "] * (len(after) - 1))


@pytest.mark.parametrize(("choice", "message"), [
    ({"short": 10_000}, "only"), ({"sop_uids": {"1.2.3": "blank"}}, "unknown SOP"),
    ({"collection": "NOPE"}, "unknown collection"),
])
async def test_bad_choices_are_refused(sim: SimulatorHandle, choice: dict,
                                       message: str) -> None:
    import json

    raw = await fetch(sim.url + "/_sim/stored-md5", method="POST", data=json.dumps(choice),
                      headers={"Content-Type": "application/json"})
    assert raw.status == 400 and message in json.loads(raw.body)["error"]
