"""When a copy of a series is complete and exact: every rule, each a small pure function.

A ZIP's totals against the listing (ImageCount, FileSize) and against its md5hashes.csv,
a file's MD5 against the one listed beside it, a re-fetched instance against the MD5 the
catalog verified before or the server's own, a repaired copy against the listing, and a
stored file against its catalog row (``verify``). The rules raise
:class:`~mirror.errors.VerificationError` (or answer yes/no, or describe the problem) and
do no I/O: the extraction, the per-series job and ``verify`` call them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Protocol

from mirror.domain import InstanceRecord
from mirror.errors import VerificationError
from mirror.merkle import md5_equal


class Sized(Protocol):
    """An instance with a size (a file extracted, stored or found on disk)."""

    @property
    def size(self) -> int: ...


def counts_match(image_count: int | None, file_size: int | None,
                 instances: Iterable[Sized]) -> bool:
    """The instances add up to the listing's ImageCount and FileSize (None: not known)."""
    found = list(instances)
    if image_count is not None and len(found) != image_count:
        return False
    return file_size is None or sum(i.size for i in found) == file_size


def check_archive_totals(series_uid: str, sizes: list[int], *, image_count: int | None,
                         file_size: int | None) -> None:
    """A series ZIP has as many DICOM files and bytes as the listing says, and some."""
    count, total = len(sizes), sum(sizes)
    if image_count is not None and count != image_count:
        raise VerificationError(f"series {series_uid}: {count} DICOM files, "
                                f"ImageCount is {image_count}")
    if count == 0 and image_count is None:
        raise VerificationError(f"series {series_uid}: the archive has no DICOM files")
    if file_size is not None and total != file_size:
        raise VerificationError(f"series {series_uid}: {total} bytes of DICOM, "
                                f"FileSize is {file_size}")


def check_csv_covers(listed: Collection[str], entries: Collection[str], *,
                     csv_name: str) -> None:
    """md5hashes.csv lists no file the archive lacks (*listed* without the LICENSE)."""
    if extra := set(listed) - set(entries):
        raise VerificationError(f"{csv_name} lists {len(extra)} files the archive lacks, "
                                f"e.g. {sorted(extra)[0]!r}")


def check_listed_md5(name: str, md5: str, listed: str | None, *, csv_name: str) -> None:
    """An extracted entry has the MD5 md5hashes.csv lists (None: an empty row, unknown).

    Compared as numbers: the server may store a digest without its leading zeros.
    """
    if listed is not None and not md5_equal(listed, md5):
        raise VerificationError(f"entry {name!r}: MD5 {md5}, {csv_name} has {listed}")


def check_known_md5(series_uid: str, sop: str, md5: str,
                    known: Mapping[str, InstanceRecord]) -> None:
    """A re-fetched instance must be the one the catalog verified before (damage repair).

    getSingleImage has no MD5 beside it, and a flipped pixel byte still parses as DICOM
    with the right UIDs; the MD5 recorded when the series was verified catches it.
    """
    if sop in known and known[sop].md5 and not md5_equal(known[sop].md5, md5):
        raise VerificationError(f"series {series_uid}: SOP {sop} has MD5 {md5}, the "
                                f"catalog recorded {known[sop].md5}")


def check_server_md5(series_uid: str, sop: str, md5: str, expected: str | None) -> None:
    """A new instance of a revised series must match the server's own MD5, where the
    dialect has one (getMD5HashForImage; v3 has none and an empty answer means unknown).
    Compared as numbers: the server may store a digest without its leading zeros."""
    if expected and not md5_equal(expected, md5):
        raise VerificationError(f"series {series_uid}: SOP {sop} has MD5 {md5}, the "
                                f"server lists {expected}")


def check_repaired(series_uid: str, got: list[Sized], wanted: Collection[str], *,
                   image_count: int | None, file_size: int | None) -> None:
    """A repaired copy holds every wanted instance and adds up to the listing."""
    if not counts_match(image_count, file_size, got) or len(got) != len(set(wanted)):
        raise VerificationError(
            f"series {series_uid}: repaired copy has {len(got)} instances "
            f"({sum(i.size for i in got)} bytes), upstream lists {image_count} "
            f"({file_size} bytes)")


def stored_mismatch(size: int, md5: str | None, record: InstanceRecord) -> tuple[str, str] | None:
    """A stored file against its catalog row: (kind, detail) of the first difference.

    *md5* None: not checked. Kinds are those of :class:`mirror.archive.verify.Problem`.
    """
    if size != record.size:
        return "size", f"{size} bytes, catalog has {record.size}"
    if md5 is not None and not md5_equal(md5, record.md5):
        return "md5", f"MD5 {md5}, catalog has {record.md5}"
    return None
