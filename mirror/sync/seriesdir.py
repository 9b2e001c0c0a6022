"""The file-system steps of the per-series job, each run in one worker-thread hop.

Owns where a series lives in the archive (:func:`final_dir`, the ``descriptive``
layout's study fields read through :mod:`mirror.tcia.studyfields`), its staging
directory, the refusal to store over another series, what on disk is intact, and the
extract-verify-commit of a ZIP or of single instances. No network, no catalog.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mirror import transfer
from mirror.archive import layout, verify
from mirror.catalog.records import ClaimedSeries
from mirror.domain import InstanceRecord, PathName, Uid
from mirror.errors import MirrorError, StorageError
from mirror.merkle import md5_equal
from mirror.sync import hashcheck
from mirror.tcia.studyfields import study_fields
from mirror.transfer import ExtractedInstance


def final_dir(root: Path, layout_name: str, item: ClaimedSeries) -> Path:
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
    study = study_fields(item.raw)
    info = layout.DescriptiveInfo(
        study_date=study.study_date, study_id=study.study_id,
        study_description=study.study_description,
        series_number=item.series_number, series_description=item.description)
    return layout.series_dir(root, *names, layout="descriptive", descriptive=info)


def prepare(root: Path, layout_name: str, item: ClaimedSeries) -> tuple[Path, Path, bool]:
    """(staging dir, final dir, whether the final dir exists), refusing a foreign series."""
    staging = layout.new_staging_dir(root, Uid(item.series_uid))
    try:
        final = final_dir(root, layout_name, item)
        refuse_foreign_series(final, item.series_uid)
        return staging, final, final.is_dir()
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def refuse_foreign_series(final: Path, series_uid: str) -> None:
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


def entry_names(directory: Path) -> set[str]:
    try:
        return {p.name for p in directory.iterdir()}
    except OSError as exc:
        raise StorageError(f"cannot list {directory}: {exc}") from exc


def fresh_dir(path: Path) -> Path:
    try:
        path.mkdir()
    except OSError as exc:
        raise StorageError(f"cannot create {path}: {exc}") from exc
    return path


def intact_on_disk(final: Path, item: ClaimedSeries,
                    known: dict[str, InstanceRecord]) -> dict[str, ExtractedInstance]:
    """SOP UID -> instance for the files on disk that parse and match what we recorded."""
    found = verify.scan_series_dir(final, series_uid=item.series_uid, study_uid=item.study_uid)
    return {i.sop_uid: i for i in found
            if i.sop_uid not in known or md5_equal(known[i.sop_uid].md5, i.md5)}


@dataclass(frozen=True, slots=True)
class ZipCommit:
    """One downloaded series ZIP to extract, verify and commit (see :func:`commit_zips`)."""

    zip_path: Path
    files: Path  #: where the instances are extracted (inside *staging*)
    final: Path
    staging: Path
    expected: transfer.ExpectedSeries
    root: Path
    collection: str


#: (instances, the server's MD5 strings where spelled unlike ours), or what went wrong
ZipCommitted = tuple[list[ExtractedInstance], dict[str, str]]


def commit_zips(batch: Sequence[ZipCommit], licenses: dict[str, str],
                ) -> list[ZipCommitted | Exception]:
    """Extract, verify, fsync and rename several series into place in one thread hop.

    Each series has its own outcome (one bad ZIP fails only its own series); the fsyncs
    of the batch go together (:func:`mirror.transfer.commit_series_dirs`). The staging
    dirs of committed series are removed. *licenses* (collection -> the text stored this
    run) spares rewriting, or even reading back, the same LICENSE for every series.
    """
    out: list[ZipCommitted | Exception | None] = [None] * len(batch)
    results: dict[int, transfer.ExtractResult] = {}
    for k, job in enumerate(batch):
        try:
            results[k] = transfer.extract_series_zip(job.zip_path, job.files,
                                                     expected=job.expected)
            job.zip_path.unlink(missing_ok=True)
        except Exception as exc:
            out[k] = exc
    extracted = list(results)
    errors = transfer.commit_series_dirs([(batch[k].files, batch[k].final) for k in extracted])
    for k, error in zip(extracted, errors, strict=True):
        job, result = batch[k], results[k]
        if error is not None:
            out[k] = error
            continue
        shutil.rmtree(job.staging, ignore_errors=True)
        try:
            text = result.license_text  # v4 ZIPs carry the collection's license: keep it
            if text and licenses.get(job.collection) != text:
                transfer.store_license(job.root, job.collection, text)
                licenses[job.collection] = text
        except Exception as exc:
            out[k] = exc
            continue
        out[k] = (result.instances, hashcheck.server_strings(result))
    return [o if o is not None else RuntimeError("series not handled") for o in out]


def store_single(tmp: Path, files: Path, item: ClaimedSeries, sop: str,
                  md5: str) -> ExtractedInstance:
    verify.check_dicom_complete(tmp, label=f"SOP {sop}")  # a ZIP entry has its CRC; this not
    return transfer.store_single_instance(
        tmp, files, expected_series_uid=item.series_uid, expected_study_uid=item.study_uid,
        expected_sop_uid=sop, md5=md5)


def link_all(final: Path, files: Path, keep: list[ExtractedInstance]) -> None:
    for inst in keep:
        transfer.link_or_copy(final / inst.filename, files / inst.filename)


def records(root: Path, final: Path, instances: Iterable[ExtractedInstance],
             spelled: dict[str, str] | None = None) -> list[InstanceRecord]:
    """Catalog rows, with the server's MD5 string where it is spelled unlike ours."""
    rel = final.relative_to(root)
    spelled = spelled or {}
    return [InstanceRecord(sop_uid=i.sop_uid,
                           path=str(rel / layout.instance_name(Uid(i.sop_uid))),
                           size=i.size, md5=i.md5, server_md5=spelled.get(i.sop_uid))
            for i in instances]
