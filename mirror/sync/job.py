"""Fetch one claimed series: adopt what is on disk, repair instance by instance, or take the ZIP.

Decision per series (the cheapest way to an exact copy):
- nothing usable on disk -> whole ZIP (getImageWithMD5Hash when verify = "md5" and
  the dialect has it, else getImage);
- files on disk -> getSOPInstanceUIDs; if they are exactly the wanted set, adopt them
  (no download); if at most half are missing, getSingleImage the missing ones; else ZIP;
- a repair that does not verify, or SOP endpoints that refuse or keep failing -> ZIP;
- queued by the hash check: stored instances whose MD5 differs from the server's are
  not kept (:func:`mirror.sync.hashcheck.suspect_instances`).
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from mirror import transfer
from mirror.archive import layout, verify
from mirror.domain import InstanceRecord, PathName, Uid, printable
from mirror.errors import ApiError, MirrorError, StorageError, VerificationError
from mirror.merkle import md5_equal
from mirror.sync import hashcheck
from mirror.tcia import dates

#: Repair instance by instance only while at most this share of the series is missing.
REPAIR_MAX_MISSING = 0.5


async def process_series(pool: Any, item: Any) -> Any:
    """Fetch, verify and commit *item*; record the outcome in the catalog."""
    from mirror.sync.pool import Outcome, retry_time

    started = time.monotonic()
    root = Path(pool.settings.archive.root)
    outcome = Outcome(item.series_uid, item.collection, "done", attempt=item.attempts)
    staging: Path | None = None
    try:
        # one thread hop for all the file-system work before the download
        staging, final, on_disk = await anyio.to_thread.run_sync(
            _prepare, root, pool.settings.archive.layout, item)
        mode, instances = await _fetch(pool, item, final, staging, on_disk)
        if mode == "full":
            staging = None  # the commit hop removed it already
        await pool.catalog.complete(
            item.series_uid, pool.owner, local_path=str(final.relative_to(root)),
            instances=instances, verified_at=datetime.now(UTC))
        outcome.mode = mode
        outcome.instances = len(instances)
        outcome.bytes = sum(i.size for i in instances)
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            await pool.catalog.release(item.series_uid, pool.owner)
        raise
    except MirrorError as exc:
        # Messages quote server text (names, bodies): escaped once here, they are safe in
        # the catalog's last_error, in status, in the JSON summary and on a terminal.
        outcome.error = printable(f"{type(exc).__name__}: {exc}")
        give_up = pool.gives_up(item.attempts, exc)
        retry_at = None if give_up else retry_time(item.attempts, now=datetime.now(UTC),
                                                   base=pool.settings.sync.retry_backoff,
                                                   cap=pool.settings.sync.retry_backoff_cap,
                                                   error=exc)
        try:
            await pool.catalog.fail(item.series_uid, pool.owner, error=outcome.error,
                                    retry_at=retry_at)
            outcome.status = "failed" if give_up else "retry"
        except MirrorError:
            outcome.status = "lost"
    finally:
        if staging is not None:
            await anyio.to_thread.run_sync(shutil.rmtree, staging, True)
    outcome.seconds = time.monotonic() - started
    return outcome


def final_dir(root: Path, layout_name: str, item: Any) -> Path:
    """Where *item* lives in the archive.

    In the ``descriptive`` layout a series keeps the path it was first stored at: its
    descriptions may change upstream, and a moving directory would leave a stale copy.
    """
    names = (PathName(item.collection), PathName(item.patient_id), Uid(item.study_uid),
             Uid(item.series_uid))
    if layout_name != "descriptive":
        return layout.series_dir(root, *names, layout=layout_name)
    if item.local_path and layout.is_inside(root, root / item.local_path):
        return root / item.local_path
    raw = item.raw or {}
    info = layout.DescriptiveInfo(
        study_date=dates.to_date(raw.get("StudyDate")), study_id=raw.get("StudyID"),
        study_description=raw.get("StudyDesc") or raw.get("StudyDescription"),
        series_number=item.series_number, series_description=item.description)
    return layout.series_dir(root, *names, layout="descriptive", descriptive=info)


def _prepare(root: Path, layout_name: str, item: Any) -> tuple[Path, Path, bool]:
    """(staging dir, final dir, whether the final dir exists), refusing a foreign series."""
    staging = layout.new_staging_dir(root, Uid(item.series_uid))
    try:
        final = final_dir(root, layout_name, item)
        _refuse_foreign_series(final, item.series_uid)
        return staging, final, final.is_dir()
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _refuse_foreign_series(final: Path, series_uid: str) -> None:
    """Never replace a directory that holds another series (descriptive names can collide)."""
    if not final.is_dir():
        return
    for path in sorted(final.glob("*.dcm"))[:3]:
        try:
            found = verify.read_dicom_uids(path).series_uid
        except MirrorError:
            continue  # damaged files are repaired, not a collision
        if found != series_uid:
            raise StorageError(f"{final} already holds series {found}; refusing to store "
                               f"series {series_uid} there (archive path collision)")


async def _fetch(pool: Any, item: Any, final: Path, staging: Path,
                 on_disk: bool) -> tuple[str, list[InstanceRecord]]:
    root = Path(pool.settings.archive.root)
    present: dict[str, Any] = {}
    known: dict[str, InstanceRecord] = {}
    spelled: dict[str, str] = {}
    if on_disk:  # a new series costs no catalog read
        known = {i.sop_uid: i for i in await pool.catalog.instances(item.series_uid)}
        present = await anyio.to_thread.run_sync(_intact_on_disk, final, item, known)
        # queued by the hash check: files whose bytes changed upstream are not intact
        suspects, spelled = await hashcheck.suspect_instances(pool.client, item, known)
        for sop in suspects if suspects is not None else list(present):
            present.pop(sop, None)
            known.pop(sop, None)
    if present:
        done = await _sop_level(pool, item, final, staging, present, known)
        if done is not None:
            return done[0], _records(root, final, done[1], spelled)
    got, spelled = await _full(pool, item, final, staging)
    return "full", _records(root, final, got, spelled)


async def _sop_level(pool: Any, item: Any, final: Path, staging: Path, present: dict[str, Any],
                     known: dict[str, InstanceRecord]) -> tuple[str, list[Any]] | None:
    """Adopt or repair what is on disk, instance by instance; None: take the whole ZIP."""
    try:
        wanted = await pool.client.get_sop_instance_uids(item.series_uid)
        if wanted and set(wanted) == set(present) and _counts_match(item, present.values()):
            return "adopt", await _adopt(final, staging, present)
        missing = [s for s in wanted if s not in present]
        if not wanted or len(missing) > REPAIR_MAX_MISSING * len(wanted):
            return None
        return "repair", await _repair(pool, item, final, staging, present, wanted, missing,
                                       known)
    except VerificationError:
        # An instance changed upstream under the same SOP UID, or one came damaged:
        # repeating the repair would fail the same way, the whole ZIP settles it.
        return None
    except ApiError as exc:
        # The SOP endpoints fail for whole deployments at times (NLST, late 2024): after
        # a refusal, or when they fail a second attempt, the ZIP is the way to a copy.
        if exc.transient and item.attempts < 2:
            raise
        return None


async def _adopt(final: Path, staging: Path, present: dict[str, Any]) -> list[Any]:
    """Keep the complete copy on disk; drop foreign files from its directory, if any.

    verify reports such files as damage ("extra") and --repair re-queues the series, so
    adopting must also clean them, atomically like every other change to a series dir.
    """
    keep = list(present.values())
    if await anyio.to_thread.run_sync(_entry_names, final) == {i.filename for i in keep}:
        return keep
    files = await anyio.to_thread.run_sync(_fresh_dir, staging / "adopt")
    await anyio.to_thread.run_sync(_link_all, final, files, keep)
    await anyio.to_thread.run_sync(transfer.commit_series_dir, files, final)
    return keep


def _entry_names(directory: Path) -> set[str]:
    try:
        return {p.name for p in directory.iterdir()}
    except OSError as exc:
        raise StorageError(f"cannot list {directory}: {exc}") from exc


def _fresh_dir(path: Path) -> Path:
    try:
        path.mkdir()
    except OSError as exc:
        raise StorageError(f"cannot create {path}: {exc}") from exc
    return path


def _intact_on_disk(final: Path, item: Any, known: dict[str, InstanceRecord]) -> dict[str, Any]:
    """SOP UID -> instance for the files on disk that parse and match what we recorded."""
    found = verify.scan_series_dir(final, series_uid=item.series_uid, study_uid=item.study_uid)
    return {i.sop_uid: i for i in found
            if i.sop_uid not in known or md5_equal(known[i.sop_uid].md5, i.md5)}


def _counts_match(item: Any, instances: Any) -> bool:
    instances = list(instances)
    if item.image_count is not None and len(instances) != item.image_count:
        return False
    return item.file_size is None or sum(i.size for i in instances) == item.file_size


async def _full(pool: Any, item: Any, final: Path,
                staging: Path) -> tuple[list[Any], dict[str, str]]:
    settings = pool.settings
    md5 = settings.sync.verify == "md5" and pool.client.has_md5
    zip_path = staging / "series.zip"
    sink = transfer.HashingFile(zip_path, hashing=False)  # entries are hashed on extraction
    try:
        await pool.client.download_image(item.series_uid, sink, md5=md5,
                                         progress=_progress(pool, item))
    finally:
        sink.close()
    files = staging / "files"
    expected = transfer.ExpectedSeries(
        series_uid=item.series_uid, study_uid=item.study_uid, image_count=item.image_count,
        file_size=item.file_size, md5_source=md5)
    return await anyio.to_thread.run_sync(_extract_and_commit, zip_path, files, final,
                                          staging, expected, Path(settings.archive.root),
                                          item.collection)


def _extract_and_commit(zip_path: Path, files: Path, final: Path, staging: Path,
                        expected: Any, root: Path,
                        collection: str) -> tuple[list[Any], dict[str, str]]:
    """Extract, verify, fsync and rename into place, in one thread hop; then drop staging."""
    result = transfer.extract_series_zip(zip_path, files, expected=expected)
    zip_path.unlink(missing_ok=True)
    transfer.commit_series_dir(files, final)
    shutil.rmtree(staging, ignore_errors=True)
    if result.license_text:  # v4 ZIPs carry the collection's license: keep it beside
        transfer.store_license(root, collection, result.license_text)
    return result.instances, hashcheck.server_strings(result)


async def _repair(pool: Any, item: Any, final: Path, staging: Path, present: dict[str, Any],
                  wanted: list[str], missing: list[str],
                  known: dict[str, InstanceRecord]) -> list[Any]:
    files = await anyio.to_thread.run_sync(_fresh_dir, staging / "repair")
    keep = [present[s] for s in wanted if s in present]
    await anyio.to_thread.run_sync(_link_all, final, files, keep)
    got = list(keep)
    for sop in missing:
        tmp = layout.staging_part(staging, Uid(sop))
        sink = transfer.HashingFile(tmp)
        try:
            await pool.client.download_single_image(item.series_uid, sop, sink,
                                                    progress=_progress(pool, item))
        finally:
            sink.close()
        _check_known_md5(item, sop, sink.md5, known)
        if pool.settings.sync.verify == "md5":
            _check_server_md5(item, sop, sink.md5,
                              await pool.client.get_md5_hash_for_image(sop))
        got.append(await anyio.to_thread.run_sync(_store_single, tmp, files, item, sop, sink.md5))
    if not _counts_match(item, got) or len(got) != len(set(wanted)):
        raise VerificationError(
            f"series {item.series_uid}: repaired copy has {len(got)} instances "
            f"({sum(i.size for i in got)} bytes), upstream lists {item.image_count} "
            f"({item.file_size} bytes)")
    await anyio.to_thread.run_sync(transfer.commit_series_dir, files, final)
    return got


def _check_known_md5(item: Any, sop: str, md5: str, known: dict[str, InstanceRecord]) -> None:
    """A re-fetched instance must be the one the catalog verified before (damage repair).

    getSingleImage has no MD5 beside it, and a flipped pixel byte still parses as DICOM
    with the right UIDs; the MD5 recorded when the series was verified catches it.
    """
    if sop in known and known[sop].md5 and not md5_equal(known[sop].md5, md5):
        raise VerificationError(f"series {item.series_uid}: SOP {sop} has MD5 {md5}, the "
                                f"catalog recorded {known[sop].md5}")


def _check_server_md5(item: Any, sop: str, md5: str, expected: str | None) -> None:
    """A new instance of a revised series must match the server's own MD5, where the
    dialect has one (getMD5HashForImage; v3 has none and an empty answer means unknown).
    Compared as numbers: the server may store a digest without its leading zeros."""
    if expected and not md5_equal(expected, md5):
        raise VerificationError(f"series {item.series_uid}: SOP {sop} has MD5 {md5}, the "
                                f"server lists {expected}")


def _store_single(tmp: Path, files: Path, item: Any, sop: str, md5: str) -> Any:
    verify.check_dicom_complete(tmp, label=f"SOP {sop}")  # a ZIP entry has its CRC; this not
    return transfer.store_single_instance(
        tmp, files, expected_series_uid=item.series_uid, expected_study_uid=item.study_uid,
        expected_sop_uid=sop, md5=md5)


def _link_all(final: Path, files: Path, keep: list[Any]) -> None:
    for inst in keep:
        transfer.link_or_copy(final / inst.filename, files / inst.filename)


def _records(root: Path, final: Path, instances: Any,
             spelled: dict[str, str] | None = None) -> list[InstanceRecord]:
    """Catalog rows, with the server's MD5 string where it is spelled unlike ours."""
    rel = final.relative_to(root)
    spelled = spelled or {}
    return [InstanceRecord(sop_uid=i.sop_uid,
                           path=str(rel / layout.instance_name(Uid(i.sop_uid))),
                           size=i.size, md5=i.md5, server_md5=spelled.get(i.sop_uid))
            for i in instances]


def _progress(pool: Any, item: Any) -> Any:
    if pool.progress is None:
        return None
    return pool.progress.callback(item)
