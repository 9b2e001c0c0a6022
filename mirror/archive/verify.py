"""Checks of stored DICOM files: header UIDs, MD5s, and a series directory against the catalog.

Everything here is synchronous and blocking; the async shell runs it in a worker thread.
Reading and comparing is done here; what counts as a mismatch (size, MD5) is one of the
completeness rules of :mod:`mirror.archive.completeness`.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import TYPE_CHECKING

from mirror.archive.completeness import stored_mismatch
from mirror.archive.layout import instance_name
from mirror.dicomuids import read_uids
from mirror.domain import InstanceRecord, Uid, printable
from mirror.errors import InvalidUid, StorageError, VerificationError

if TYPE_CHECKING:
    import pydicom

# pydicom (and numpy under it) loads only when a header needs it: most headers are
# read by mirror.dicomuids, and a no-op sync never reads one.
SOP_UID, SERIES_UID, STUDY_UID = 0x00080018, 0x0020000E, 0x0020000D
_UID_TAGS = [SOP_UID, SERIES_UID, STUDY_UID]
#: Bytes of a file read for its UIDs before pydicom is asked (headers are a few KB).
HEAD_BYTES = 64 * 1024


_PYDICOM_LOCK = threading.Lock()


def load_pydicom() -> ModuleType:
    """pydicom with the submodules used here, imported under a lock.

    Extraction lanes and workers get here from several threads at once; two threads
    importing pydicom concurrently can see it half-initialised (ImportError).
    """
    with _PYDICOM_LOCK:
        import pydicom
        import pydicom.errors
        import pydicom.filereader
        import pydicom.uid
    return pydicom


@cache
def _parse_errors() -> tuple[type[BaseException], ...]:
    """What pydicom raises on a damaged or non-DICOM file (besides its InvalidDicomError).

    UserWarning: with warnings turned into errors (-W error, the test suite) its
    complaints about a malformed header arrive as exceptions; they mean the same thing.
    """
    return (load_pydicom().errors.InvalidDicomError, EOFError, ValueError, struct.error, KeyError,
            TypeError, AttributeError, IndexError, NotImplementedError, UnicodeDecodeError,
            UserWarning)


@dataclass(frozen=True, slots=True)
class DicomUids:
    sop_uid: str
    series_uid: str
    study_uid: str


@dataclass(frozen=True, slots=True)
class ExtractedInstance:
    """One DICOM file stored as ``<sop_uid>.dcm`` (*filename*) in a series directory."""

    sop_uid: str
    filename: str
    size: int
    md5: str


@dataclass(frozen=True, slots=True)
class Problem:
    """One disagreement between the disk and the catalog, found by :func:`check_series_on_disk`.

    kind is one of: ``missing``, ``size``, ``md5``, ``dicom``, ``extra``.
    """

    kind: str
    sop_uid: str | None
    path: Path
    detail: str


def read_dicom_uids(path: Path, *, label: str | None = None) -> DicomUids:
    """SOP, Series and Study Instance UIDs from the header of *path* (pixel data not read).

    *label* names the file in error messages (default: its file name).
    """
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc
    if (uids := read_uids(head)) is not None:
        return DicomUids(*uids)
    return _parse_uids(path, label or path.name, path)


def dicom_uids_in(head: bytes, *, label: str) -> DicomUids:
    """Like :func:`read_dicom_uids`, from the first bytes of a file already in memory.

    The extractor has each entry's first chunk at hand: parsing it there saves opening
    and reading every file a second time. A header longer than *head* fails to parse.
    """
    if (uids := read_uids(head)) is not None:
        return DicomUids(*uids)
    return _parse_uids(io.BytesIO(head), label, None)


def _parse_uids(source: Path | io.BytesIO, label: str, path: Path | None) -> DicomUids:
    """The pydicom path: anything :func:`mirror.dicomuids.read_uids` left undecided."""
    pydicom = load_pydicom()
    try:
        ds = pydicom.dcmread(source, stop_before_pixels=True, specific_tags=_UID_TAGS)
        values = [_raw_uid(ds, tag) for tag in _UID_TAGS]
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc
    except _parse_errors() as exc:
        raise VerificationError(f"{label}: not a readable DICOM file ({exc})") from exc
    names = ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID")
    for name, value in zip(names, values, strict=True):
        if not value:
            raise VerificationError(f"{label}: DICOM header has no {name}")
    return DicomUids(*values)


def _raw_uid(ds: pydicom.Dataset, tag: int) -> str:
    """The UID as written, without pydicom's value conversion (and its validation warnings)."""
    if tag not in ds:
        return ""
    value = ds.get_item(tag).value
    if isinstance(value, bytes):
        value = value.decode("ascii")
    return str(value or "").strip("\x00 ")


def file_md5(path: Path, chunk: int = 1 << 20) -> str:
    """Hex MD5 of the file at *path*, read in *chunk*-byte blocks."""
    digest = hashlib.md5()
    buf = bytearray(chunk)
    view = memoryview(buf)
    try:
        with open(path, "rb", buffering=0) as f:
            while n := f.readinto(buf):
                digest.update(view[:n])
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc
    return digest.hexdigest()


_UNDEFINED = 0xFFFFFFFF  # DICOM's undefined length: the value ends at a delimiter


def check_dicom_complete(path: Path, *, label: str | None = None) -> None:
    """Raise :class:`VerificationError` when *path* ends before its last data element does.

    A body cut short at a clean chunk boundary still parses (pydicom reads what there is),
    and where no MD5 or FileSize is there to compare (getSingleImage on v3), nothing else
    would notice. Values are skipped, not read, so big pixel data cost nothing; a file
    whose meta group length is absent, or deflated, is not checked.
    """
    pydicom = load_pydicom()
    uid = pydicom.uid
    label = label or path.name
    try:
        meta = pydicom.filereader.read_file_meta_info(path)
        group_length = meta.get(0x00020000)
        syntax = str(meta.get("TransferSyntaxUID", ""))
        if group_length is None or syntax == uid.DeflatedExplicitVRLittleEndian:
            return
        end = start = 132 + 12 + int(group_length.value)  # preamble, DICM, (0002,0000)
        with open(path, "rb") as fp:
            fp.seek(start)
            for raw in pydicom.filereader.data_element_generator(
                    fp, syntax == uid.ImplicitVRLittleEndian, syntax != uid.ExplicitVRBigEndian,
                    defer_size=4096):
                length = getattr(raw, "length", _UNDEFINED)  # undefined SQs come parsed
                end = fp.tell() if length == _UNDEFINED else raw.value_tell + length
            size = os.fstat(fp.fileno()).st_size
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc
    except _parse_errors() as exc:
        raise VerificationError(f"{label}: not a readable DICOM file ({exc})") from exc
    if end > size:
        raise VerificationError(f"{label}: cut short: {size} bytes, its last DICOM element "
                                f"ends at {end}")


def check_uids(found: DicomUids, *, series_uid: str, study_uid: str,
               sop_uid: str | None = None, what: str = "") -> None:
    """Raise :class:`VerificationError` naming every UID that differs from the expected ones."""
    wrong = []
    if sop_uid is not None and found.sop_uid != sop_uid:
        wrong.append(f"SOPInstanceUID {printable(found.sop_uid)} (expected {sop_uid})")
    if found.series_uid != series_uid:
        wrong.append(f"SeriesInstanceUID {printable(found.series_uid)} (expected {series_uid})")
    if found.study_uid != study_uid:
        wrong.append(f"StudyInstanceUID {printable(found.study_uid)} (expected {study_uid})")
    try:
        Uid(found.sop_uid)
    except InvalidUid as exc:
        wrong.append(f"SOPInstanceUID is malformed ({exc})")
    if wrong:
        raise VerificationError(f"{what or 'file'}: wrong {'; '.join(wrong)}")


def check_series_on_disk(series_dir: Path, instances: Sequence[InstanceRecord], *,
                         series_uid: str, study_uid: str, check_md5: bool = True,
                         check_dicom: bool = True) -> list[Problem]:
    """Compare the files in *series_dir* with the catalog's *instances*; [] when all agree."""
    problems: list[Problem] = []
    expected: set[str] = set()
    for rec in instances:
        name = PurePosixPath(rec.path).name
        expected.add(name)
        problem = _check_one(series_dir / name, rec, series_uid=series_uid,
                             study_uid=study_uid, check_md5=check_md5, check_dicom=check_dicom)
        if problem is not None:
            problems.append(problem)
    for entry in _list_dir(series_dir):
        if entry.name not in expected:
            problems.append(Problem("extra", None, Path(entry.path), "not in the catalog"))
    return problems


def _check_one(path: Path, rec: InstanceRecord, *, series_uid: str, study_uid: str,
               check_md5: bool, check_dicom: bool) -> Problem | None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return Problem("missing", rec.sop_uid, path, "file is missing")
    except OSError as exc:
        return Problem("missing", rec.sop_uid, path, f"cannot stat: {exc}")
    if not stat.S_ISREG(st.st_mode):
        return Problem("missing", rec.sop_uid, path, "not a regular file")
    if mismatch := stored_mismatch(st.st_size, None, rec):
        return Problem(mismatch[0], rec.sop_uid, path, mismatch[1])
    try:
        if check_md5 and (mismatch := stored_mismatch(st.st_size, file_md5(path), rec)):
            return Problem(mismatch[0], rec.sop_uid, path, mismatch[1])
        if check_dicom:
            check_uids(read_dicom_uids(path), series_uid=series_uid, study_uid=study_uid,
                       sop_uid=rec.sop_uid, what=path.name)
    except StorageError as exc:
        return Problem("missing", rec.sop_uid, path, str(exc))
    except VerificationError as exc:
        return Problem("dicom", rec.sop_uid, path, str(exc))
    return None


def _list_dir(path: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StorageError(f"cannot list {path}: {exc}") from exc


def scan_series_dir(series_dir: Path, *, series_uid: str,
                    study_uid: str) -> list[ExtractedInstance]:
    """The intact instances in *series_dir*: regular ``<SOP>.dcm`` files of this series.

    Files that do not parse, belong elsewhere or are misnamed are left out (not deleted),
    so the caller fetches those instances again.
    """
    found: list[ExtractedInstance] = []
    for entry in sorted(_list_dir(series_dir), key=lambda e: e.name):
        if not entry.name.endswith(".dcm") or not entry.is_file(follow_symlinks=False):
            continue
        path = Path(entry.path)
        try:
            uids = read_dicom_uids(path)
            check_uids(uids, series_uid=series_uid, study_uid=study_uid, what=entry.name)
            if entry.name != instance_name(Uid(uids.sop_uid)):
                continue
            found.append(ExtractedInstance(uids.sop_uid, entry.name,
                                           entry.stat(follow_symlinks=False).st_size,
                                           file_md5(path)))
        except (VerificationError, InvalidUid):
            continue
    return found
