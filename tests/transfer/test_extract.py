"""extract_series_zip and store_single_instance against real DICOM in server-style ZIPs."""

from __future__ import annotations

import hashlib
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from mirror.errors import StorageError, TruncatedArchive, VerificationError
from mirror.transfer import extract_series_zip, store_single_instance
from tests.transfer.conftest import LICENSE_TEXT, Series, dicom_bytes, md5_csv

ZipOf = Callable[..., Path]


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.mark.parametrize("naming", ["counter", "new"])
@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
@pytest.mark.parametrize("streamed", [True, False])
def test_get_image_zip_is_stored_by_sop_uid(make_series: Callable[..., Series], zip_of: ZipOf,
                                            tmp_path: Path, naming: str, method: int,
                                            streamed: bool) -> None:
    series = make_series(4)
    zip_path = zip_of(series.entries(naming=naming), method=method, streamed=streamed)
    dest = tmp_path / "files"

    result = extract_series_zip(zip_path, dest, expected=series.expected())

    assert result.license_text == LICENSE_TEXT
    assert not result.md5_checked
    assert result.total_bytes == series.file_size
    assert _files(dest) == sorted(f"{sop}.dcm" for sop, _ in series.instances)
    for inst in result.instances:
        data = series.by_sop()[inst.sop_uid]
        assert (dest / inst.filename).read_bytes() == data
        assert inst.size == len(data) and inst.md5 == hashlib.md5(data).hexdigest()


def test_md5_zip_is_checked_against_md5hashes_csv(make_series: Callable[..., Series],
                                                  zip_of: ZipOf, tmp_path: Path) -> None:
    series = make_series(3)
    zip_path = zip_of(series.entries(license=False, md5=True))

    result = extract_series_zip(zip_path, tmp_path / "f", expected=series.expected(md5_source=True))

    assert result.md5_checked and result.license_text is None
    assert {i.sop_uid for i in result.instances} == set(series.by_sop())


def test_unknown_count_and_size_are_not_checked(make_series: Callable[..., Series],
                                                zip_of: ZipOf, tmp_path: Path) -> None:
    series = make_series(2)
    zip_path = zip_of(series.entries())
    result = extract_series_zip(zip_path, tmp_path / "f",
                                expected=series.expected(image_count=None, file_size=None))
    assert len(result.instances) == 2


def test_directory_entries_are_ignored(make_series: Callable[..., Series], zip_of: ZipOf,
                                       tmp_path: Path) -> None:
    series = make_series(2)
    zip_path = zip_of([("sub/", b""), *series.entries()])
    result = extract_series_zip(zip_path, tmp_path / "f", expected=series.expected())
    assert len(result.instances) == 2 and not (tmp_path / "f" / "sub").exists()


@pytest.mark.parametrize("keep", [0.0, 0.5, 0.9, -22])
def test_truncated_zip_is_transient(make_series: Callable[..., Series], zip_of: ZipOf,
                                    tmp_path: Path, keep: float) -> None:
    series = make_series(3)
    zip_path = zip_of(series.entries())
    data = zip_path.read_bytes()
    cut = int(len(data) * keep) if keep >= 0 else len(data) + int(keep)
    zip_path.write_bytes(data[:cut])

    with pytest.raises(TruncatedArchive) as info:
        extract_series_zip(zip_path, tmp_path / "f", expected=series.expected())
    assert info.value.transient
    assert _files(tmp_path / "f") == []


def test_zip_closed_early_by_the_server_fails_the_count(make_series: Callable[..., Series],
                                                        zip_of: ZipOf, tmp_path: Path) -> None:
    series = make_series(4)
    zip_path = zip_of(series.entries()[:3])  # LICENSE + 2 of 4: a valid but short ZIP
    with pytest.raises(VerificationError, match="2 DICOM files, ImageCount is 4"):
        extract_series_zip(zip_path, tmp_path / "f", expected=series.expected())
    assert _files(tmp_path / "f") == []


def test_md5_zip_without_its_csv_is_incomplete(make_series: Callable[..., Series],
                                               zip_of: ZipOf, tmp_path: Path) -> None:
    series = make_series(2)
    zip_path = zip_of(series.entries(license=False, md5=True)[:-1])
    with pytest.raises(VerificationError, match=r"no md5hashes\.csv"):
        extract_series_zip(zip_path, tmp_path / "f", expected=series.expected(md5_source=True))


def _flip_byte_in_entry(zip_path: Path, name: str, offset_from_end: int = 200) -> None:
    with zipfile.ZipFile(zip_path) as zf:
        info = zf.getinfo(name)
    data = bytearray(zip_path.read_bytes())
    # Local header: 30 bytes + name + extra; then the (compressed) data.
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:
                                                     info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    data[start + info.compress_size - offset_from_end] ^= 0x55
    zip_path.write_bytes(bytes(data))


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_corrupt_entry_is_caught_and_nothing_is_left(make_series: Callable[..., Series],
                                                     zip_of: ZipOf, tmp_path: Path,
                                                     method: int) -> None:
    series = make_series(3, pixels=8192)
    zip_path = zip_of(series.entries(), method=method)
    _flip_byte_in_entry(zip_path, "00000002.dcm")

    with pytest.raises((VerificationError, TruncatedArchive)) as info:
        extract_series_zip(zip_path, tmp_path / "f", expected=series.expected())
    assert "00000002.dcm" in str(info.value)
    assert _files(tmp_path / "f") == []


def test_md5_mismatch_names_the_entry(make_series: Callable[..., Series], zip_of: ZipOf,
                                      tmp_path: Path) -> None:
    series = make_series(3)
    entries = series.entries(license=False, md5=True)
    bad = md5_csv(entries[:-1]).replace(hashlib.md5(entries[1][1]).hexdigest().encode(),
                                         b"0" * 32)
    zip_path = zip_of([*entries[:-1], ("md5hashes.csv", bad)])

    with pytest.raises(VerificationError, match=r"'00000002.dcm': MD5 [0-9a-f]{32}, md5hashes"):
        extract_series_zip(zip_path, tmp_path / "f", expected=series.expected(md5_source=True))
    assert _files(tmp_path / "f") == []


def test_entry_missing_from_md5_csv(make_series: Callable[..., Series], zip_of: ZipOf,
                                    tmp_path: Path) -> None:
    series = make_series(3)
    entries = series.entries(license=False)
    zip_path = zip_of([*entries, ("md5hashes.csv", md5_csv(entries[:2]))])
    with pytest.raises(VerificationError, match=r"'00000003\.dcm': not listed in md5hashes\.csv"):
        extract_series_zip(zip_path, tmp_path / "f", expected=series.expected())


def test_md5_csv_listing_a_file_the_archive_lacks(make_series: Callable[..., Series],
                                                  zip_of: ZipOf, tmp_path: Path) -> None:
    series = make_series(2)
    entries = series.entries(license=False)
    csv = md5_csv([*entries, ("00000009.dcm", b"x")])
    zip_path = zip_of([*entries, ("md5hashes.csv", csv)])
    with pytest.raises(VerificationError, match=r"lacks, e\.g\. '00000009\.dcm'"):
        extract_series_zip(zip_path, tmp_path / "f", expected=series.expected(image_count=None))


def test_md5_csv_that_also_lists_license(make_series: Callable[..., Series], zip_of: ZipOf,
                                         tmp_path: Path) -> None:
    series = make_series(2)
    entries = series.entries()
    csv = md5_csv(entries) + f"LICENSE,{hashlib.md5(entries[0][1]).hexdigest()}\n".encode()
    zip_path = zip_of([*entries, ("md5hashes.csv", csv)])
    result = extract_series_zip(zip_path, tmp_path / "f", expected=series.expected())
    assert result.md5_checked and len(result.instances) == 2


@pytest.mark.parametrize("csv", [b"Filename,MD5Hash\n00000001.dcm,nothex\n",
                                 b"00000001.dcm\n",
                                 b"a,00000000000000000000000000000000\n"
                                 b"a,11111111111111111111111111111111\n"])
def test_malformed_md5_csv(make_series: Callable[..., Series], zip_of: ZipOf, tmp_path: Path,
                           csv: bytes) -> None:
    series = make_series(1)
    zip_path = zip_of([*series.entries(license=False), ("md5hashes.csv", csv)])
    with pytest.raises(VerificationError, match=r"md5hashes\.csv"):
        extract_series_zip(zip_path, tmp_path / "f", expected=series.expected())


@pytest.mark.parametrize("which", ["series", "study"])
def test_wrong_series_inside_is_caught(make_series: Callable[..., Series], zip_of: ZipOf,
                                       tmp_path: Path, which: str) -> None:
    series, other = make_series(3), make_series(1)
    entries = series.entries()
    sop = "1.2.826.0.1.3680043.8.498.99.1"
    wrong = (dicom_bytes(sop, other.series_uid, series.study_uid) if which == "series"
             else dicom_bytes(sop, series.series_uid, other.study_uid))
    entries[2] = (entries[2][0], wrong)
    zip_path = zip_of(entries)

    name = "SeriesInstanceUID" if which == "series" else "StudyInstanceUID"
    with pytest.raises(VerificationError, match=f"'00000002.dcm': wrong {name}"):
        extract_series_zip(zip_path, tmp_path / "f", expected=series.expected())
    assert _files(tmp_path / "f") == []


def test_whole_zip_of_another_series_is_caught(make_series: Callable[..., Series],
                                               zip_of: ZipOf, tmp_path: Path) -> None:
    series, other = make_series(2), make_series(2)
    zip_path = zip_of(other.entries())
    with pytest.raises(VerificationError, match="wrong SeriesInstanceUID"):
        extract_series_zip(zip_path, tmp_path / "f", expected=series.expected())


def test_count_mismatch(make_series: Callable[..., Series], zip_of: ZipOf,
                        tmp_path: Path) -> None:
    series = make_series(3)
    zip_path = zip_of(series.entries())
    with pytest.raises(VerificationError, match="3 DICOM files, ImageCount is 4"):
        extract_series_zip(zip_path, tmp_path / "f", expected=series.expected(image_count=4))
    assert _files(tmp_path / "f") == []


def test_archive_without_dicom_files(make_series: Callable[..., Series], zip_of: ZipOf,
                                     tmp_path: Path) -> None:
    series = make_series(1)
    zip_path = zip_of(series.entries()[:1])  # LICENSE only
    with pytest.raises(VerificationError, match="no DICOM files"):
        extract_series_zip(zip_path, tmp_path / "f",
                           expected=series.expected(image_count=None, file_size=None))


def test_size_mismatch(make_series: Callable[..., Series], zip_of: ZipOf,
                       tmp_path: Path) -> None:
    series = make_series(3)
    zip_path = zip_of(series.entries())
    expected = series.expected(file_size=series.file_size + 1)
    with pytest.raises(VerificationError, match=f"{series.file_size} bytes of DICOM, FileSize"):
        extract_series_zip(zip_path, tmp_path / "f", expected=expected)
    assert _files(tmp_path / "f") == []


@pytest.mark.parametrize("junk", [b"just some notes\n", b"", b"DICM" * 100])
def test_non_dicom_entry(make_series: Callable[..., Series], zip_of: ZipOf, tmp_path: Path,
                         junk: bytes) -> None:
    series = make_series(2)
    zip_path = zip_of([*series.entries(), ("notes.txt", junk)])
    with pytest.raises(VerificationError, match=r"'notes\.txt'"):
        extract_series_zip(zip_path, tmp_path / "f", expected=series.expected(image_count=None))
    assert _files(tmp_path / "f") == []


def test_same_sop_twice(make_series: Callable[..., Series], zip_of: ZipOf,
                        tmp_path: Path) -> None:
    series = make_series(2)
    entries = series.entries()
    zip_path = zip_of([*entries, ("00000003.dcm", entries[1][1])])
    with pytest.raises(VerificationError, match="same SOPInstanceUID"):
        extract_series_zip(zip_path, tmp_path / "f", expected=series.expected(image_count=None,
                                                                              file_size=None))
    assert _files(tmp_path / "f") == []


def test_missing_zip_is_a_storage_error(make_series: Callable[..., Series],
                                        tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        extract_series_zip(tmp_path / "nope.zip", tmp_path / "f",
                           expected=make_series(1).expected())


# -- store_single_instance ---------------------------------------------------------------

def test_single_instance_is_stored_by_sop(make_series: Callable[..., Series],
                                          tmp_path: Path) -> None:
    series = make_series(1)
    sop, data = series.instances[0]
    src = tmp_path / "download.part"
    src.write_bytes(data)

    inst = store_single_instance(src, tmp_path / "f", expected_series_uid=series.series_uid,
                                 expected_study_uid=series.study_uid, expected_sop_uid=sop)

    assert not src.exists()
    assert (tmp_path / "f" / f"{sop}.dcm").read_bytes() == data
    assert (inst.sop_uid, inst.filename, inst.size) == (sop, f"{sop}.dcm", len(data))
    assert inst.md5 == hashlib.md5(data).hexdigest()


@pytest.mark.parametrize("case", ["sop", "series", "study", "junk", "empty"])
def test_single_instance_that_is_wrong_is_refused(make_series: Callable[..., Series],
                                                  tmp_path: Path, case: str) -> None:
    series = make_series(2)
    (sop, data), (other_sop, _) = series.instances
    src = tmp_path / "download.part"
    src.write_bytes({"junk": b"<html>500</html>", "empty": b""}.get(case, data))
    expect = {"series_uid": series.series_uid, "study_uid": series.study_uid, "sop_uid": sop}
    expect[{"sop": "sop_uid", "series": "series_uid"}.get(case, "study_uid")] = "1.2.3.4"
    if case in ("junk", "empty"):
        expect["study_uid"] = series.study_uid

    with pytest.raises(VerificationError):
        store_single_instance(src, tmp_path / "f", expected_series_uid=expect["series_uid"],
                              expected_study_uid=expect["study_uid"],
                              expected_sop_uid=expect["sop_uid"])
    assert src.exists() and _files(tmp_path / "f") == []
    assert other_sop != sop
