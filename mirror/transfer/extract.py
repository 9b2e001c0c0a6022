"""Extract a series ZIP or store a single instance: every file checked by its DICOM header.

Entry names never become paths: each file is stored as ``<SOPInstanceUID>.dcm`` taken from
its own header, and hostile archives are refused before a byte is written.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mirror.archive.completeness import check_archive_totals, check_csv_covers, check_listed_md5
from mirror.archive.layout import instance_name
from mirror.archive.verify import (
    DicomUids,
    ExtractedInstance,
    check_uids,
    dicom_uids_in,
    file_md5,
    read_dicom_uids,
)
from mirror.domain import Uid
from mirror.errors import HostileArchive, StorageError, TruncatedArchive, VerificationError
from mirror.transfer.commit import start_writeback
from mirror.transfer.inflate import INFLATE_ERRORS, open_entry
from mirror.transfer.zipcheck import (
    LICENSE,
    MD5_CSV,
    Budget,
    ExpectedSeries,
    ExtractLimits,
    ExtractResult,
    Plan,
    check_ratio,
    listed_md5,
    parse_md5_csv,
    plan_entries,
    read_text,
)

CHUNK = 1 << 20  # large reads keep zlib, MD5 and write() in C for most of the time
EXTRACT_THREADS = 4
MIN_LANE_ENTRIES = 8  # small series: a thread pool costs more than it saves


def extract_series_zip(zip_path: Path, dest_dir: Path, *, expected: ExpectedSeries,
                       limits: ExtractLimits = ExtractLimits()) -> ExtractResult:  # noqa: B008
    """Extract a getImage / getImageWithMD5Hash ZIP into *dest_dir* as ``<SOP>.dcm`` files.

    Raises TruncatedArchive, HostileArchive or VerificationError; on any error the files
    this call wrote are removed again.
    """
    Uid(expected.series_uid)
    Uid(expected.study_uid)
    with _open_zip(zip_path) as zf:
        archive_bytes = _size_of(zip_path)
        plan = plan_entries(zf.infolist(), expected, limits, archive_bytes)
        license_text = read_text(zf, plan.license, limits) if plan.license else None
        hashes = parse_md5_csv(read_text(zf, plan.md5_csv, limits)) if plan.md5_csv else None
        if expected.md5_source and hashes is None:
            raise VerificationError(f"no {MD5_CSV} in the archive (cut short?)")
        try:
            dest_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {dest_dir}: {exc}") from exc
        written: list[Path] = []
        try:
            instances = _extract_dicoms(zf, plan.dicoms, dest_dir, expected, limits, hashes,
                                        written, archive_bytes)
            _check_totals(instances, plan, expected, hashes)
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
    stored = {} if hashes is None else {
        i.sop_uid: hashes.get(info.filename) for info, i in zip(plan.dicoms, instances,
                                                                strict=True)}
    server_md5 = {sop: md5 or None for sop, md5 in stored.items()}
    checked = hashes is not None and all(listed_md5(m) is not None for m in server_md5.values())
    return ExtractResult(instances, license_text, sum(i.size for i in instances), checked,
                         server_md5)


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise TruncatedArchive(f"{path.name}: not a complete ZIP ({exc})") from exc
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class _Job:
    """What every extraction lane of one archive shares (Budget and lists are thread-safe)."""

    zip_path: Path
    dest_dir: Path
    expected: ExpectedSeries
    limits: ExtractLimits
    hashes: dict[str, str] | None
    budget: Budget
    written: list[Path]
    failed: _FirstFailure


class _FirstFailure:
    """Lowest entry number that failed so far: lanes skip entries after it, never before,
    so the error reported is the one a single pass in entry order would have met first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.at: float = float("inf")

    def note(self, n: int) -> None:
        with self._lock:
            self.at = min(self.at, n)


def _extract_dicoms(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], dest_dir: Path,
                    expected: ExpectedSeries, limits: ExtractLimits,
                    hashes: dict[str, str] | None, written: list[Path],
                    archive_bytes: int | None = None) -> list[ExtractedInstance]:
    """Extract in up to EXTRACT_THREADS lanes, each with its own handle on the archive.

    zlib, MD5 and write() release the GIL, so one big series uses several cores;
    results and the first error (in entry order) come out as if it ran in one thread.
    """
    job = _Job(Path(zf.filename or ""), dest_dir, expected, limits, hashes,
               Budget(limits.total_cap(expected, archive_bytes)), written, _FirstFailure())
    lanes = max(1, min(EXTRACT_THREADS, os.cpu_count() or 1, len(infos) // MIN_LANE_ENTRIES))
    numbered = list(enumerate(infos))
    if lanes == 1:
        outcomes = [_run_lane(job, zf, numbered)]
    else:
        with ThreadPoolExecutor(max_workers=lanes) as pool:
            outcomes = list(pool.map(lambda k: _run_lane(job, zf if k == 0 else None,
                                                         numbered[k::lanes]), range(lanes)))
    errors = [err for _, err in outcomes if err is not None]
    if errors:
        raise min(errors, key=lambda e: e[0])[1]
    done = sorted((item for got, _ in outcomes for item in got), key=lambda item: item[0])
    by_sop: dict[str, str] = {}
    for n, inst in done:
        name = infos[n].filename
        if (other := by_sop.setdefault(inst.sop_uid, name)) != name:
            raise VerificationError(f"entries {other!r} and {name!r}: same SOPInstanceUID "
                                    f"{inst.sop_uid}")
    return [inst for _, inst in done]


Lane = tuple[list[tuple[int, ExtractedInstance]], tuple[int, BaseException] | None]


def _run_lane(job: _Job, zf: zipfile.ZipFile | None,
              entries: list[tuple[int, zipfile.ZipInfo]]) -> Lane:
    """Extract *entries* in order; stop at an error here or before it in another lane."""
    done: list[tuple[int, ExtractedInstance]] = []
    n = entries[0][0] if entries else 0
    own = zf is None
    try:
        zf = _open_zip(job.zip_path) if zf is None else zf
        try:
            for n, info in entries:
                if n > job.failed.at:
                    break
                done.append((n, _extract_one(job, zf, n, info)))
        finally:
            if own:
                zf.close()
    except Exception as exc:  # handed back to the caller, which raises the first one
        job.failed.note(n)
        return done, (n, exc)
    return done, None


def _extract_one(job: _Job, zf: zipfile.ZipFile, n: int,
                 info: zipfile.ZipInfo) -> ExtractedInstance:
    name = info.filename
    tmp = job.dest_dir / f".entry-{n}.part"
    job.written.append(tmp)
    hashes = job.hashes
    size, md5, head = _copy_entry(zf, info, tmp, job.budget, job.limits,
                                  md5_checked=hashes is not None
                                  and listed_md5(hashes.get(name)) is not None)
    if hashes is not None:
        if name not in hashes:
            raise VerificationError(f"entry {name!r}: not listed in {MD5_CSV}")
        check_listed_md5(name, md5, listed_md5(hashes[name]), csv_name=MD5_CSV)
    uids = _entry_uids(head, size, tmp, name)
    check_uids(uids, series_uid=job.expected.series_uid, study_uid=job.expected.study_uid,
               what=f"entry {name!r}")
    final = job.dest_dir / instance_name(Uid(uids.sop_uid))  # checked by check_uids
    _replace(tmp, final)
    job.written.append(final)
    return ExtractedInstance(uids.sop_uid, final.name, size, md5)


def _entry_uids(head: bytes, size: int, path: Path, name: str) -> DicomUids:
    """UIDs from the first chunk in memory; from the file only if the header is longer."""
    label = f"entry {name!r}"
    try:
        return dicom_uids_in(head, label=label)
    except VerificationError:
        if len(head) >= size:
            raise
    return read_dicom_uids(path, label=label)


def _copy_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, budget: Budget,
                limits: ExtractLimits, *, md5_checked: bool = False) -> tuple[int, str, bytes]:
    """Inflate one entry into *dest*, counting the bytes as they come; (size, md5, head).

    *head* is the first chunk (the DICOM header is in it); the kernel is asked to start
    writing the file out right away, so the fsync at commit has little left to wait for.
    """
    digest, size, head = hashlib.md5(), 0, b""
    try:
        with open_entry(zf, info, md5_checked=md5_checked) as src, \
                open(dest, "xb", buffering=0) as out:
            while chunk := src.read(CHUNK):
                size += len(chunk)
                budget.take(len(chunk), info.filename)
                if size > limits.max_entry_bytes:
                    raise HostileArchive(f"entry {info.filename!r}: inflates beyond "
                                         f"{limits.max_entry_bytes} bytes")
                check_ratio(info, size, limits)
                digest.update(chunk)
                _write_all(out, chunk)
                head = head or chunk
            start_writeback(out.fileno())
    except (zipfile.BadZipFile, *INFLATE_ERRORS, ValueError, NotImplementedError) as exc:
        raise VerificationError(f"entry {info.filename!r}: corrupt data ({exc})") from exc
    except EOFError as exc:
        raise TruncatedArchive(f"entry {info.filename!r}: cut short ({exc})") from exc
    except OSError as exc:
        raise StorageError(f"cannot write {dest}: {exc}") from exc
    if size != info.file_size:
        raise VerificationError(f"entry {info.filename!r}: {size} bytes, header says "
                                f"{info.file_size}")
    return size, digest.hexdigest(), head


def _write_all(out: io.FileIO, data: bytes) -> None:
    view = memoryview(data)
    while view:  # an unbuffered file may write less than asked
        view = view[out.write(view) or 0:]


def _check_totals(instances: list[ExtractedInstance], plan: Plan, expected: ExpectedSeries,
                  hashes: dict[str, str] | None) -> None:
    check_archive_totals(expected.series_uid, [i.size for i in instances],
                         image_count=expected.image_count, file_size=expected.file_size)
    listed = set(hashes or ()) - {LICENSE}  # tolerate a server that also hashes LICENSE
    check_csv_covers(listed, {i.filename for i in plan.dicoms}, csv_name=MD5_CSV)


def _replace(src: Path, dst: Path) -> None:
    try:
        os.replace(src, dst)
    except OSError as exc:
        raise StorageError(f"cannot rename {src} to {dst}: {exc}") from exc


def store_single_instance(src_path: Path, dest_dir: Path, *, expected_series_uid: str,
                          expected_study_uid: str, expected_sop_uid: str,
                          md5: str | None = None) -> ExtractedInstance:
    """Check a getSingleImage download and move it to ``dest_dir/<SOP>.dcm``.

    *md5* is the digest computed while streaming (e.g. ``HashingFile.md5``); if absent the
    file is read again to compute it.
    """
    Uid(expected_sop_uid)
    uids = read_dicom_uids(src_path, label=f"SOP {expected_sop_uid}")
    check_uids(uids, series_uid=expected_series_uid, study_uid=expected_study_uid,
               sop_uid=expected_sop_uid, what=f"SOP {expected_sop_uid}")
    try:
        size = src_path.stat().st_size
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot store {src_path}: {exc}") from exc
    digest = md5 or file_md5(src_path)
    final = dest_dir / instance_name(Uid(uids.sop_uid))
    _replace(src_path, final)
    return ExtractedInstance(uids.sop_uid, final.name, size, digest)
