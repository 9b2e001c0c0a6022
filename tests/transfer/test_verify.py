"""verify: DICOM header UIDs, MD5s, and a committed series directory against its catalog rows."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mirror.archive import layout, verify
from mirror.domain import InstanceRecord, PathName, Uid
from mirror.errors import StorageError, VerificationError
from tests.transfer.conftest import Series, dicom_bytes

ROOT_REL = "C/P"

def _series_dir(root: Path, collection: str, patient: str, study: str, series: str,
                **kwargs: Any) -> Path:
    """layout.series_dir takes only validated values: build them as the wire parser does."""
    return layout.series_dir(root, PathName(collection), PathName(patient), Uid(study),
                             Uid(series), **kwargs)



def _commit(root: Path, series: Series) -> tuple[Path, list[InstanceRecord]]:
    """A series as the workers leave it: files on disk and the catalog's rows."""
    directory = _series_dir(root, "C", "P", series.study_uid, series.series_uid)
    directory.mkdir(parents=True)
    records = []
    for sop, data in series.instances:
        name = layout.instance_name(Uid(sop))
        (directory / name).write_bytes(data)
        rel = f"{ROOT_REL}/{series.study_uid}/{series.series_uid}/{name}"
        records.append(InstanceRecord(sop, rel, len(data), hashlib.md5(data).hexdigest()))
    return directory, records


def _check(directory: Path, records: list[InstanceRecord], series: Series,
           **kwargs: bool) -> list[verify.Problem]:
    return verify.check_series_on_disk(directory, records, series_uid=series.series_uid,
                                       study_uid=series.study_uid, **kwargs)


def test_read_dicom_uids(make_series: Callable[..., Series], tmp_path: Path) -> None:
    series = make_series(1)
    sop, data = series.instances[0]
    path = tmp_path / "x.dcm"
    path.write_bytes(data)
    assert verify.read_dicom_uids(path) == verify.DicomUids(sop, series.series_uid,
                                                            series.study_uid)


@pytest.mark.parametrize("content", [b"", b"not dicom at all", b"\x00" * 128 + b"DICM"])
def test_read_dicom_uids_of_junk(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "junk.dcm"
    path.write_bytes(content)
    with pytest.raises(VerificationError, match=r"junk\.dcm"):
        verify.read_dicom_uids(path)


def test_read_dicom_uids_of_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        verify.read_dicom_uids(tmp_path / "nope.dcm")


def test_file_md5(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000
    (tmp_path / "f").write_bytes(data)
    assert verify.file_md5(tmp_path / "f", chunk=4096) == hashlib.md5(data).hexdigest()
    assert verify.file_md5(tmp_path / "f") == hashlib.md5(data).hexdigest()


def test_intact_series_has_no_problems(make_series: Callable[..., Series],
                                       tmp_path: Path) -> None:
    series = make_series(3)
    directory, records = _commit(tmp_path, series)
    assert _check(directory, records, series) == []


def test_each_kind_of_damage_is_reported(make_series: Callable[..., Series],
                                         tmp_path: Path) -> None:
    series = make_series(5)
    directory, records = _commit(tmp_path, series)
    missing, short, rotten, foreign = (directory / Path(r.path).name for r in records[:4])
    missing.unlink()
    short.write_bytes(short.read_bytes()[:-10])
    data = bytearray(rotten.read_bytes())
    data[-100] ^= 0xFF  # same size, different content: only the MD5 can tell
    rotten.write_bytes(bytes(data))
    other = dicom_bytes(records[3].sop_uid, "1.2.3.999", series.study_uid)
    foreign.write_bytes(other)  # a file of another series, recorded as if it were right
    records[3] = InstanceRecord(records[3].sop_uid, records[3].path, len(other),
                                hashlib.md5(other).hexdigest())
    (directory / "stray.part").write_bytes(b"x")

    problems = _check(directory, records, series)

    found = {(p.kind, p.sop_uid) for p in problems}
    assert found == {("missing", records[0].sop_uid), ("size", records[1].sop_uid),
                     ("md5", records[2].sop_uid), ("dicom", records[3].sop_uid),
                     ("extra", None)}
    dicom = next(p for p in problems if p.kind == "dicom")
    assert "SeriesInstanceUID 1.2.3.999" in dicom.detail
    assert next(p for p in problems if p.kind == "extra").path == directory / "stray.part"


def test_md5_and_dicom_checks_can_be_skipped(make_series: Callable[..., Series],
                                             tmp_path: Path) -> None:
    series = make_series(2)
    directory, records = _commit(tmp_path, series)
    path = directory / Path(records[0].path).name
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    assert [p.kind for p in _check(directory, records, series)] == ["md5"]
    assert _check(directory, records, series, check_md5=False) == []


def test_missing_series_dir_reports_every_instance(make_series: Callable[..., Series],
                                                   tmp_path: Path) -> None:
    series = make_series(2)
    _, records = _commit(tmp_path, series)
    problems = _check(tmp_path / "elsewhere", records, series)
    assert [p.kind for p in problems] == ["missing", "missing"]


def test_symlink_in_place_of_a_file_is_not_trusted(make_series: Callable[..., Series],
                                                   tmp_path: Path) -> None:
    series = make_series(1)
    directory, records = _commit(tmp_path, series)
    path = directory / Path(records[0].path).name
    target = tmp_path / "target.dcm"
    path.rename(target)
    path.symlink_to(target)
    assert [p.kind for p in _check(directory, records, series)] == ["missing"]


def test_scan_series_dir_finds_intact_instances_only(make_series: Callable[..., Series],
                                                     tmp_path: Path) -> None:
    series = make_series(4)
    directory, records = _commit(tmp_path, series)
    names = [Path(r.path).name for r in records]
    (directory / names[0]).write_bytes(b"garbage")  # unreadable
    (directory / names[1]).rename(directory / "1.2.3.dcm")  # misnamed
    (directory / names[2]).write_bytes(  # another series
        dicom_bytes(records[2].sop_uid, "1.2.3.999", series.study_uid))
    (directory / "notes.txt").write_bytes(b"ignored")

    found = verify.scan_series_dir(directory, series_uid=series.series_uid,
                                   study_uid=series.study_uid)

    assert found == [verify.ExtractedInstance(records[3].sop_uid, names[3], records[3].size,
                                              records[3].md5)]
    assert verify.scan_series_dir(tmp_path / "none", series_uid=series.series_uid,
                                  study_uid=series.study_uid) == []
