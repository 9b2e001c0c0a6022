"""Extract a series ZIP or store a single instance: every file checked by its DICOM header.

Entry names never become paths: each file is stored as ``<SOPInstanceUID>.dcm`` taken from
its own header, and hostile archives are refused before a byte is written.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
import zlib
from pathlib import Path

from mirror.errors import HostileArchive, StorageError, TruncatedArchive, VerificationError
from mirror.layout import instance_name, validate_uid
from mirror.transfer.zipcheck import (
    LICENSE,
    MD5_CSV,
    Budget,
    ExpectedSeries,
    ExtractLimits,
    ExtractResult,
    Plan,
    check_ratio,
    parse_md5_csv,
    plan_entries,
    read_text,
)
from mirror.verify import ExtractedInstance, check_uids, file_md5, read_dicom_uids

CHUNK = 1 << 20  # large reads keep zlib, MD5 and write() in C for most of the time


def extract_series_zip(zip_path: Path, dest_dir: Path, *, expected: ExpectedSeries,
                       limits: ExtractLimits = ExtractLimits()) -> ExtractResult:  # noqa: B008
    """Extract a getImage / getImageWithMD5Hash ZIP into *dest_dir* as ``<SOP>.dcm`` files.

    Raises TruncatedArchive, HostileArchive or VerificationError; on any error the files
    this call wrote are removed again.
    """
    validate_uid(expected.series_uid)
    validate_uid(expected.study_uid)
    with _open_zip(zip_path) as zf:
        plan = plan_entries(zf.infolist(), expected, limits)
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
                                        written)
            _check_totals(instances, plan, expected, hashes)
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
    return ExtractResult(instances, license_text, sum(i.size for i in instances),
                         hashes is not None)


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise TruncatedArchive(f"{path.name}: not a complete ZIP ({exc})") from exc
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc


def _extract_dicoms(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], dest_dir: Path,
                    expected: ExpectedSeries, limits: ExtractLimits,
                    hashes: dict[str, str] | None, written: list[Path]) -> list[ExtractedInstance]:
    budget = Budget(limits.total_cap(expected))
    by_sop: dict[str, str] = {}
    instances = []
    for n, info in enumerate(infos):
        name = info.filename
        tmp = dest_dir / f".entry-{n}.part"
        written.append(tmp)
        size, md5 = _copy_entry(zf, info, tmp, budget, limits)
        if hashes is not None and hashes.get(name) != md5:
            listed = hashes.get(name)
            raise VerificationError(f"entry {name!r}: MD5 {md5}, {MD5_CSV} has {listed}"
                                    if listed else f"entry {name!r}: not listed in {MD5_CSV}")
        uids = read_dicom_uids(tmp, label=f"entry {name!r}")
        check_uids(uids, series_uid=expected.series_uid, study_uid=expected.study_uid,
                   what=f"entry {name!r}")
        if (other := by_sop.setdefault(uids.sop_uid, name)) != name:
            raise VerificationError(f"entries {other!r} and {name!r}: same SOPInstanceUID "
                                    f"{uids.sop_uid}")
        final = dest_dir / instance_name(uids.sop_uid)
        _replace(tmp, final)
        written[-1] = final
        instances.append(ExtractedInstance(uids.sop_uid, final.name, size, md5))
    return instances


def _copy_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, budget: Budget,
                limits: ExtractLimits) -> tuple[int, str]:
    """Inflate one entry into *dest*, counting the bytes as they come; (size, md5)."""
    digest, size = hashlib.md5(), 0
    try:
        with zf.open(info) as src, open(dest, "xb", buffering=0) as out:
            while chunk := src.read(CHUNK):
                size += len(chunk)
                budget.take(len(chunk), info.filename)
                if size > limits.max_entry_bytes:
                    raise HostileArchive(f"entry {info.filename!r}: inflates beyond "
                                         f"{limits.max_entry_bytes} bytes")
                check_ratio(info, size, limits)
                digest.update(chunk)
                out.write(chunk)
    except (zipfile.BadZipFile, zlib.error, ValueError, NotImplementedError) as exc:
        raise VerificationError(f"entry {info.filename!r}: corrupt data ({exc})") from exc
    except EOFError as exc:
        raise TruncatedArchive(f"entry {info.filename!r}: cut short ({exc})") from exc
    except OSError as exc:
        raise StorageError(f"cannot write {dest}: {exc}") from exc
    if size != info.file_size:
        raise VerificationError(f"entry {info.filename!r}: {size} bytes, header says "
                                f"{info.file_size}")
    return size, digest.hexdigest()


def _check_totals(instances: list[ExtractedInstance], plan: Plan, expected: ExpectedSeries,
                  hashes: dict[str, str] | None) -> None:
    count, total = len(instances), sum(i.size for i in instances)
    if expected.image_count is not None and count != expected.image_count:
        raise VerificationError(f"series {expected.series_uid}: {count} DICOM files, "
                                f"ImageCount is {expected.image_count}")
    if count == 0 and expected.image_count is None:
        raise VerificationError(f"series {expected.series_uid}: the archive has no DICOM files")
    if expected.file_size is not None and total != expected.file_size:
        raise VerificationError(f"series {expected.series_uid}: {total} bytes of DICOM, "
                                f"FileSize is {expected.file_size}")
    listed = set(hashes or ()) - {LICENSE}  # tolerate a server that also hashes LICENSE
    if extra := listed - {i.filename for i in plan.dicoms}:
        raise VerificationError(f"{MD5_CSV} lists {len(extra)} files the archive lacks, "
                                f"e.g. {sorted(extra)[0]!r}")


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
    validate_uid(expected_sop_uid)
    uids = read_dicom_uids(src_path, label=f"SOP {expected_sop_uid}")
    check_uids(uids, series_uid=expected_series_uid, study_uid=expected_study_uid,
               sop_uid=expected_sop_uid, what=f"SOP {expected_sop_uid}")
    try:
        size = src_path.stat().st_size
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot store {src_path}: {exc}") from exc
    digest = md5 or file_md5(src_path)
    final = dest_dir / instance_name(uids.sop_uid)
    _replace(src_path, final)
    return ExtractedInstance(uids.sop_uid, final.name, size, digest)
