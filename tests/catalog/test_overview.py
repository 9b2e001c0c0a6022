"""The overview behind `status --failed` and the status page: failures, poll errors, throughput."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mirror.catalog import Catalog, status
from mirror.domain import InstanceRecord
from mirror.run.statuspage import render
from tests.catalog.factory import remote

NOW = datetime(2024, 6, 1, 12, 40, tzinfo=UTC)


async def test_overview_failed_poll_errors_and_hourly_throughput(catalog: Catalog) -> None:
    await catalog.upsert_series([remote(i) for i in range(4)])
    first, second, failed = await catalog.claim("w", 3, lease_seconds=60)
    files = [InstanceRecord(f"1.4.{k}", f"f{k}", 1000, "0" * 32) for k in range(3)]
    await catalog.complete(first.series_uid, "w", local_path="a", instances=files,
                           verified_at=NOW - timedelta(hours=2, minutes=5))
    await catalog.complete(second.series_uid, "w", local_path="b", instances=files[:1],
                           verified_at=NOW - timedelta(minutes=10))
    await catalog.fail(failed.series_uid, "w", error="HTTP 400: <b>gone</b>", retry_at=None)
    await catalog.record_poll("COLL-A", at=NOW, ok=False, error="HTTP 503 from getSeries")

    data = await status.overview(catalog, now=NOW)
    assert [(r["series_uid"], r["last_error"]) for r in data["failed"]] == [
        (failed.series_uid, "HTTP 400: <b>gone</b>")]
    assert data["failed"][0]["collection"] == "COLL-A"
    assert data["collections"][0]["last_poll_error"] == "HTTP 503 from getSeries"
    assert data["throughput"]["since"] == "2024-05-31T13:00:00+00:00"
    assert data["throughput"]["buckets"] == [
        {"hour": "2024-06-01T10:00:00+00:00", "series": 1, "bytes": 3000},
        {"hour": "2024-06-01T12:00:00+00:00", "series": 1, "bytes": 1000}]

    page = render(data)
    assert "HTTP 400: &lt;b&gt;gone&lt;/b&gt;" in page and "<b>gone" not in page
    assert "HTTP 503 from getSeries" in page
    assert page.count("<rect ") == 24
    assert 'data-bytes=3000>' in page and 'data-bytes=1000>' in page
    assert status.render_failed(data["failed"], as_json=False).splitlines()[1].endswith(
        "1 attempts): HTTP 400: <b>gone</b>")
