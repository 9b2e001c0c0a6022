"""getMD5Hierarchy on the simulator's v4 wire, checked against an independent recomputation."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import pytest

from mirror.simulator.testing import SimulatorHandle
from tests.simulator.conftest import Raw, fetch


def _h(parts: list[str]) -> str:
    """The reference's definition, written out again: sort, concatenate, MD5 (or "")."""
    cat = "".join(sorted(parts))
    return hashlib.md5(cat.encode()).hexdigest() if cat else ""


def _expected(sim: SimulatorHandle) -> dict[str, dict[str, str]]:
    truth = sim.ground_truth()
    series = {u: _h([i.md5 for i in t.instances.values()]) for u, t in truth.items()}
    studies: dict[str, list[str]] = {}
    patients: dict[tuple[str, str], set[str]] = {}
    for u, t in truth.items():
        studies.setdefault(t.study_uid, []).append(series[u])
        patients.setdefault((t.collection, t.patient_id), set()).add(t.study_uid)
    study = {u: _h(v) for u, v in studies.items()}
    patient = {k: _h([study[s] for s in v]) for k, v in patients.items()}
    colls: dict[str, list[str]] = {}
    for (c, _), h in patient.items():
        colls.setdefault(c, []).append(h)
    return {"series": series, "study": study,
            "patient": {f"{c}|{p}": h for (c, p), h in patient.items()},
            "collection": {c: _h(v) for c, v in colls.items()}}


async def _post(sim: SimulatorHandle, headers: dict[str, str] | None = None,
                **form: str) -> Raw:
    return await fetch(sim.base_url("nbia-v4") + "/getMD5Hierarchy", method="POST",
                       data=form, headers=headers)


async def _md5(sim: SimulatorHandle, **form: str) -> str:
    raw = await _post(sim, **form)
    assert raw.status == 200 and raw.headers["Content-Type"].startswith("text/plain")
    return raw.text


async def test_every_level_matches_the_definition(simulator: SimulatorHandle) -> None:
    want = _expected(simulator)
    for uid, h in want["series"].items():
        assert await _md5(simulator, SeriesInstanceUID=uid) == h
    for uid, h in want["study"].items():
        assert await _md5(simulator, StudyInstanceUID=uid) == h
    for key, h in want["patient"].items():
        coll, pid = key.split("|")
        assert await _md5(simulator, PatientID=pid, Collection=coll) == h
    for coll, h in want["collection"].items():
        assert await _md5(simulator, Collection=coll) == h
    assert all(len(h) == 32 for level in want.values() for h in level.values())


async def test_last_non_empty_level_wins_and_unknowns_are_empty(
        simulator: SimulatorHandle) -> None:
    want = _expected(simulator)
    uid, t = next(iter(simulator.ground_truth().items()))
    assert await _md5(simulator, SeriesInstanceUID=uid,
                      StudyInstanceUID=t.study_uid) == want["study"][t.study_uid]
    # Collection runs when PatientID is empty: it overrides a study UID.
    assert await _md5(simulator, StudyInstanceUID=t.study_uid,
                      Collection=t.collection) == want["collection"][t.collection]
    assert await _md5(simulator, PatientID=t.patient_id) == ""  # project = NULL
    assert await _md5(simulator, PatientID=t.patient_id, Collection="OTHER") == ""
    assert await _md5(simulator, SeriesInstanceUID="1.2.3.4") == ""
    assert await _md5(simulator, Collection="NO-SUCH") == ""
    assert await _md5(simulator) == ""
    assert await _md5(simulator, SeriesInstanceUID="") == ""


async def test_wire_rules(simulator: SimulatorHandle) -> None:
    bad = await _post(simulator, SeriesInstanceUID="1.2", format="json")
    assert bad.status == 400
    assert bad.text.startswith("Invalid form parameter: 'format'. Allowed parameters are: [")
    for name in ("SeriesInstanceUID", "StudyInstanceUID", "PatientID", "Collection"):
        assert name in bad.text
    url = simulator.base_url("nbia-v4") + "/getMD5Hierarchy"
    in_query = await fetch(url + "?seriesinstanceuid=1.2", method="POST", data={})
    assert in_query.status == 400 and "'seriesinstanceuid'" in in_query.text
    assert (await fetch(url, SeriesInstanceUID="1.2")).status == 500  # GET: 405 inside
    assert (await _post(simulator, {"Accept": "text/plain"}, Collection="X")).status == 406
    for accept in ("*/*", "application/json", "text/plain, application/*;q=0.5"):
        assert (await _post(simulator, {"Accept": accept}, Collection="X")).status == 200
    v1 = await fetch(simulator.base_url("nbia-v1") + "/getMD5Hierarchy", method="POST",
                     data={"Collection": "X"})
    assert v1.status == 500 and v1.text.endswith("HTTP 404 Not Found")


async def test_silent_revision_is_invisible_except_to_hashes(
        simulator: SimulatorHandle) -> None:
    coll = simulator.collections()[0]
    before_rows = await _v4_series(simulator)
    before = simulator.ground_truth()
    stale = await _md5(simulator, Collection=coll)
    uid = sorted(before)[0]
    old_series = await _md5(simulator, SeriesInstanceUID=uid)

    summary = simulator.publish_release(date(2024, 5, 1), silent_series=(uid,),
                                        silent_revised=1)

    assert summary.silent_revised_series_uids[0] == uid
    (other,) = summary.silent_revised_series_uids[1:]
    after = simulator.ground_truth()
    for u in (uid, other):
        old, new = before[u], after[u]
        assert (new.image_count, new.file_size) == (old.image_count, old.file_size)
        assert new.instances.keys() == old.instances.keys()
        changed = [s for s in old.instances if old.instances[s] != new.instances[s]]
        assert len(changed) == 1
        assert old.instances[changed[0]].size == new.instances[changed[0]].size
    assert await _v4_series(simulator) == before_rows  # same row, same day, same size
    updated = await fetch(simulator.base_url("nbia-v4") + "/getUpdatedSeries",
                          fromDate="01-01-2024")
    assert (updated.status, updated.body) == (200, b"")
    want = _expected(simulator)
    assert await _md5(simulator, SeriesInstanceUID=uid) == want["series"][uid] != old_series
    t = after[uid]
    assert await _md5(simulator, PatientID=t.patient_id, Collection=coll) == \
        want["patient"][f"{coll}|{t.patient_id}"]
    # The collection hash is the stored one: stale until the daily job runs.
    assert await _md5(simulator, Collection=coll) == stale != want["collection"][coll]
    assert simulator.md5_hierarchy_now(coll) == want["collection"][coll]
    assert not simulator.advance_clock(23.5)
    assert await _md5(simulator, Collection=coll) == stale
    assert simulator.advance_clock(0.5)
    assert await _md5(simulator, Collection=coll) == want["collection"][coll]


async def _v4_series(sim: SimulatorHandle) -> list[dict]:
    raw = await fetch(sim.base_url("nbia-v4") + "/getSeries")
    rows = json.loads(raw.body)
    for row in rows:  # v4 dates are day-only MM-DD-YYYY, MaxSubmissionTimestamp included
        for key in ("SeriesDate", "MaxSubmissionTimestamp", "DateReleased", "StudyDate"):
            assert len(row[key]) == 10 and row[key][2] == row[key][5] == "-", row[key]
    return rows


async def test_admin_routes_refresh_and_clock(simulator: SimulatorHandle) -> None:
    coll = simulator.collections()[0]
    admin = simulator.url + "/_sim"
    stale = await _md5(simulator, Collection=coll)
    release = await fetch(admin + "/release", method="POST",
                          data=json.dumps({"on": "2024-06-01", "silent_revised": 2}),
                          headers={"Content-Type": "application/json"})
    assert len(json.loads(release.body)["silent_revised_series_uids"]) == 2
    assert await _md5(simulator, Collection=coll) == stale
    clock = await fetch(admin + "/clock", method="POST", data=json.dumps({"hours": 1}),
                        headers={"Content-Type": "application/json"})
    assert json.loads(clock.body)["md5_job_ran"] is False
    refreshed = json.loads((await fetch(admin + "/md5-cache/refresh", method="POST")).body)
    fresh = refreshed["md5_cache"][coll]
    assert fresh != stale and await _md5(simulator, Collection=coll) == fresh
    info = json.loads((await fetch(admin + "/")).body)
    assert info["md5_cache"] == {coll: fresh}


@pytest.mark.parametrize("hours", [-1, "soon"])
async def test_clock_refuses_nonsense(simulator: SimulatorHandle, hours: object) -> None:
    raw = await fetch(simulator.url + "/_sim/clock", method="POST",
                      data=json.dumps({"hours": hours}),
                      headers={"Content-Type": "application/json"})
    assert raw.status == 400 and "error" in json.loads(raw.body)
