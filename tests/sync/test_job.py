"""The per-series job alone, behind fakes: adopt / repair / ZIP, errors, retries, cancel."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from mirror.catalog import LeaseLost
from mirror.domain import InstanceRecord
from mirror.errors import (
    HostileArchive,
    PermanentApiError,
    TransientApiError,
    VerificationError,
)
from mirror.sync.hashcheck import HASH_REASON
from mirror.sync.job import process_series
from tests.sync.fakes import (
    OTHER_SERIES,
    STUDY,
    FakeCatalog,
    FakeClient,
    Upstream,
    claimed,
    context,
    put_on_disk,
    series_dir,
    sop,
)
from tests.transfer.conftest import dicom_bytes

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# (instances on disk out of 4, mode, requests made)
DECISIONS = [
    (0, "full", ["getImage"]),  # nothing on disk: no SOP listing at all
    (4, "adopt", ["getSOPInstanceUIDs"]),
    (3, "repair", ["getSOPInstanceUIDs", "getSingleImage"]),
    (2, "repair", ["getSOPInstanceUIDs", "getSingleImage", "getSingleImage"]),  # half: still
    (1, "full", ["getSOPInstanceUIDs", "getImage"]),  # more than half missing
]


@pytest.mark.parametrize(("on_disk", "mode", "calls"), DECISIONS)
async def test_adopt_repair_or_zip(tmp_path: Path, on_disk: int, mode: str,
                                   calls: list[str]) -> None:
    upstream = Upstream(4)
    if on_disk:
        put_on_disk(tmp_path, upstream, list(upstream.files)[:on_disk])
    client, catalog = FakeClient(upstream), FakeCatalog()
    outcome = await process_series(context(tmp_path, client, catalog), claimed(upstream))
    assert (outcome.status, outcome.mode, outcome.instances) == ("done", mode, 4)
    assert client.calls == calls
    [(local_path, records)] = catalog.completed
    assert local_path == str(series_dir(tmp_path).relative_to(tmp_path))
    assert sorted(r.sop_uid for r in records) == sorted(upstream.files)
    assert sorted(p.name for p in series_dir(tmp_path).iterdir()) == sorted(
        f"{uid}.dcm" for uid in upstream.files)
    assert not list((tmp_path / ".staging").iterdir())  # staging cleaned either way


async def test_files_that_do_not_add_up_to_the_listing_are_not_adopted(tmp_path: Path) -> None:
    upstream = Upstream(3)
    put_on_disk(tmp_path, upstream, list(upstream.files))
    client, catalog = FakeClient(upstream), FakeCatalog()
    item = claimed(upstream, file_size=upstream.file_size + 1)  # the listing says otherwise
    outcome = await process_series(context(tmp_path, client, catalog), item)
    # the repair (nothing missing) does not verify either: the ZIP settles it, and fails
    assert client.calls == ["getSOPInstanceUIDs", "getImage"]
    assert outcome.status == "retry" and "FileSize" in outcome.error


async def test_a_repair_that_does_not_verify_takes_the_zip(tmp_path: Path) -> None:
    upstream = Upstream(4)
    put_on_disk(tmp_path, upstream, list(upstream.files)[:3])
    stranger = dicom_bytes(sop(4), OTHER_SERIES, STUDY, pixels=16)  # wrong series UID
    client = FakeClient(upstream, single={sop(4): stranger})
    outcome = await process_series(context(tmp_path, client, FakeCatalog()), claimed(upstream))
    assert (outcome.status, outcome.mode) == ("done", "full")
    assert client.calls == ["getSOPInstanceUIDs", "getSingleImage", "getImage"]


@pytest.mark.parametrize(("recorded", "server", "verify_md5", "mode"), [
    (None, None, True, "repair"),  # nothing to compare with: count, size, DICOM decide
    ("0" * 32, None, False, "full"),  # the catalog verified other bytes under this SOP
    (None, "0" * 32, True, "full"),  # the server lists another MD5 (verify = "md5")
    (None, "0" * 32, False, "repair"),  # ... asked only with verify = "md5"
])
async def test_repaired_instances_are_checked_against_known_md5s(
        tmp_path: Path, recorded: str | None, server: str | None, verify_md5: bool,
        mode: str) -> None:
    upstream = Upstream(4)
    put_on_disk(tmp_path, upstream, list(upstream.files)[:3])
    known = [InstanceRecord(sop_uid=sop(4), path="x", size=1, md5=recorded)] if recorded else []
    client = FakeClient(upstream, server_md5={sop(4): server} if server else {})
    outcome = await process_series(context(tmp_path, client, FakeCatalog(known=known),
                                           verify_md5=verify_md5), claimed(upstream))
    assert (outcome.status, outcome.mode) == ("done", mode)
    assert ("getMD5HashForImage" in client.calls) is verify_md5


async def test_queued_by_the_hash_check_files_changed_upstream_are_fetched_again(
        tmp_path: Path) -> None:
    upstream = Upstream(4)
    final = put_on_disk(tmp_path, upstream, list(upstream.files))
    rel = final.relative_to(tmp_path)
    known = [InstanceRecord(sop_uid=uid, path=str(rel / f"{uid}.dcm"),
                            size=len(data), md5=upstream.md5(uid))
             for uid, data in upstream.files.items()]
    client = FakeClient(upstream, server_md5={sop(2): "f" * 32})  # revised in place
    item = claimed(upstream, queue_reason=HASH_REASON)
    outcome = await process_series(context(tmp_path, client, FakeCatalog(known=known)), item)
    assert (outcome.status, outcome.mode) == ("done", "repair")
    assert client.calls == ["getMD5HashForImage"] * 4 + ["getSOPInstanceUIDs",
                                                         "getSingleImage"]


@pytest.mark.parametrize(("error", "attempts", "status", "calls"), [
    # the SOP endpoints refuse: the ZIP, at once
    (PermanentApiError("getSOPInstanceUIDs: HTTP 400"), 1, "done",
     ["getSOPInstanceUIDs", "getImage"]),
    # they fail transiently on a first attempt: the series is retried later
    (TransientApiError("getSOPInstanceUIDs: HTTP 503"), 1, "retry", ["getSOPInstanceUIDs"]),
    # and again on a second: the ZIP
    (TransientApiError("getSOPInstanceUIDs: HTTP 503"), 2, "done",
     ["getSOPInstanceUIDs", "getImage"]),
])
async def test_sop_endpoint_errors(tmp_path: Path, error: Exception, attempts: int,
                                   status: str, calls: list[str]) -> None:
    upstream = Upstream(2)
    put_on_disk(tmp_path, upstream, list(upstream.files)[:1])
    client, catalog = FakeClient(upstream, sop_error=error), FakeCatalog()  # type: ignore[arg-type]
    outcome = await process_series(context(tmp_path, client, catalog),
                                   claimed(upstream, attempts=attempts))
    assert outcome.status == status and client.calls == calls
    assert (outcome.mode == "full") is (status == "done")
    if status == "retry":
        [(message, retry_at)] = catalog.failed
        assert retry_at is not None and message.startswith("TransientApiError: ")


@pytest.mark.parametrize(("error", "attempts", "status"), [
    (HostileArchive("entry '../x': outside"), 1, "failed"),  # permanent: at once
    (VerificationError("MD5 differs"), 1, "retry"),  # transient, under max_attempts (3)
    (VerificationError("MD5 differs"), 2, "retry"),
    (VerificationError("MD5 differs"), 3, "failed"),  # at max_attempts
])
async def test_failed_attempts_are_retried_or_given_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, attempts: int,
        status: str) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr("mirror.transfer.extract_series_zip", broken)
    upstream, catalog = Upstream(2), FakeCatalog()
    outcome = await process_series(context(tmp_path, FakeClient(upstream), catalog),
                                   claimed(upstream, attempts=attempts))
    [(message, retry_at)] = catalog.failed
    assert outcome.status == status and (retry_at is None) is (status == "failed")
    assert message == outcome.error == f"{type(error).__name__}: {error}"
    assert not catalog.completed and not list((tmp_path / ".staging").iterdir())


async def test_a_failure_that_cannot_be_recorded_is_lost(tmp_path: Path) -> None:
    upstream = Upstream(2)
    catalog = FakeCatalog(fail_raises=LeaseLost("lease taken"))
    client = FakeClient(upstream, sop_error=PermanentApiError("refused"))
    item = claimed(upstream, image_count=5)  # the ZIP then fails its count check
    outcome = await process_series(context(tmp_path, client, catalog), item)
    assert outcome.status == "lost" and "ImageCount is 5" in outcome.error


async def test_a_cancelled_job_releases_its_series(tmp_path: Path) -> None:
    upstream = Upstream(2)
    client, catalog = FakeClient(upstream, hang=True), FakeCatalog()
    async with anyio.create_task_group() as tg:
        tg.start_soon(process_series, context(tmp_path, client, catalog), claimed(upstream))
        await client.started.wait()
        tg.cancel_scope.cancel()
    assert catalog.released == [claimed(upstream).series_uid]
    assert not catalog.completed and not catalog.failed
    # (its staging dir stays behind: the next run's start clears .staging)
