"""Listing rows parsed from hostile data are stored as-is on SQLite and Postgres: good ones
queued, bad ones failed with their reason until a good row revives them."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text

from mirror.catalog import Catalog, bulk
from mirror.domain import RemoteSeries, SeriesState
from mirror.tcia import rows


def _row(k: int, **fields: Any) -> dict[str, Any]:
    row = {"SeriesInstanceUID": f"1.2.3.{k}", "StudyInstanceUID": f"1.2.4.{k}",
           "PatientID": f"P{k}", "Collection": "C", "ImageCount": 2, "FileSize": 10,
           "SeriesDescription": f"d{k}"}
    row.update(fields)
    return row


def _parsed(row: dict[str, Any]) -> RemoteSeries:
    series = rows.to_series(row, "C")
    assert isinstance(series, RemoteSeries)
    return series


async def test_bad_rows_are_stored_failed_with_their_reason(catalog: Catalog) -> None:
    good = _parsed(_row(1, SeriesDescription="ok \x00 \ud800", Extra={"k\x00": ["\ud800"]}))
    bad = [_parsed(_row(2, PatientID="P\x00X")), _parsed(_row(3, PatientID="P\ud800")),
           _parsed(_row(4, FileSize=1e30)), _parsed(_row(5, StudyInstanceUID="../../x")),
           _parsed(_row(6, PatientID="P" * 300)), _parsed(_row(7, Collection="OTHER"))]
    assert good.problem is None and all(b.problem for b in bad)

    assert await catalog.upsert_series([good]) == 1
    assert await catalog.record_unusable(bad) == len(bad)
    assert await catalog.record_unusable(bad) == 0  # idempotent
    rows = {r.series_uid: r async for r in catalog.iter_series(states=list(SeriesState))}
    assert rows[good.series_uid].state is SeriesState.QUEUED
    for series in bad:
        row = rows[series.series_uid]
        assert row.state is SeriesState.FAILED and row.collection == "C"
        assert row.last_error == f"bad listing row: {series.problem}"

    # a blind retry (a new sync run) leaves them alone; a good row revives them
    await catalog.requeue([s.series_uid for s in bad], reason="new sync run")
    states = {r.series_uid: r.state async for r in catalog.iter_series(states=list(SeriesState))}
    assert all(states[s.series_uid] is SeriesState.FAILED for s in bad)
    fixed = _parsed(_row(4))
    await catalog.upsert_series([fixed])
    rows = {r.series_uid: r async for r in catalog.iter_series(states=list(SeriesState))}
    assert rows[fixed.series_uid].state is SeriesState.QUEUED
    assert rows[fixed.series_uid].last_error is None and rows[fixed.series_uid].file_size == 10


async def test_a_queued_series_whose_row_turns_bad_fails(catalog: Catalog) -> None:
    await catalog.upsert_series([_parsed(_row(1))])
    await catalog.record_unusable([_parsed(_row(1, ImageCount=-1))])
    [row] = [r async for r in catalog.iter_series(states=list(SeriesState))]
    assert row.state is SeriesState.FAILED and "ImageCount" in (row.last_error or "")


async def test_a_listed_row_stores_the_json_text_its_plain_dict_would(
        catalog: Catalog) -> None:
    """A row of the fast path carries its JSON text (rows.ListedRecord); the catalog
    stores exactly the text it makes of the same row held in a plain dict."""
    fields = {"Extra": {"a": [1, None, 2.5]}, "Big": 2**63 - 1, "Name": "Zoë 患者",
              "Flag": True}
    fast = _parsed(_row(1, **fields))
    assert isinstance(fast.raw, rows.ListedRecord)
    await catalog.upsert_series([fast])
    async with catalog._read() as conn:
        [stored] = (await conn.execute(text("SELECT CAST(raw AS TEXT) FROM series"))).scalars()
    assert stored == bulk.json_text(_row(1, **fields))
    assert json.loads(stored) == _row(1, **fields)
