"""md5hashes.csv as the server writes it: LICENSE first, empty rows, digests without zeros."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from mirror.errors import VerificationError
from mirror.transfer import extract_series_zip
from mirror.transfer.zipcheck import listed_md5, parse_md5_csv
from tests.transfer.conftest import LICENSE_TEXT, UID_ROOT, Series, dicom_bytes

ZipOf = Callable[..., Path]


def _csv(rows: list[tuple[str, str]]) -> bytes:
    return ("Filename,MD5Hash\n" + "".join(f"{n},{h}\n" for n, h in rows)).encode()


def _include_md5_zip(series: Series, zip_of: ZipOf, stored: Callable[[int, str], str]) -> Path:
    """getImage?IncludeMD5=Yes: LICENSE, the images, md5hashes.csv with *stored* values."""
    entries = series.entries(license=True)
    images = [(n, d) for n, d in entries if n != "LICENSE"]
    rows = [(n, stored(k, hashlib.md5(d).hexdigest())) for k, (n, d) in enumerate(images)]
    return zip_of([*entries, ("md5hashes.csv", _csv(rows))])


def test_include_md5_zip_keeps_license_and_checks_hashes(
        make_series: Callable[..., Series], zip_of: ZipOf, tmp_path: Path) -> None:
    series = make_series(3)
    zip_path = _include_md5_zip(series, zip_of, lambda k, md5: md5)
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
    assert names[0] == "LICENSE" and names[-1] == "md5hashes.csv"

    result = extract_series_zip(zip_path, tmp_path / "f",
                                expected=series.expected(md5_source=True))

    assert result.license_text == LICENSE_TEXT
    assert result.md5_checked and result.md5_unknown == ()
    assert result.server_md5 == {i.sop_uid: i.md5 for i in result.instances}


@pytest.mark.parametrize(("blank", "stored_as"), [("", None), (" ", " "), ("\t ", "\t ")])
def test_an_empty_hash_is_unknown_not_a_failure(
        make_series: Callable[..., Series], zip_of: ZipOf, tmp_path: Path, blank: str,
        stored_as: str | None) -> None:
    series = make_series(3)
    zip_path = _include_md5_zip(series, zip_of, lambda k, md5: blank if k == 1 else md5)

    result = extract_series_zip(zip_path, tmp_path / "f",
                                expected=series.expected(md5_source=True))

    assert len(result.instances) == 3 and not result.md5_checked
    (unknown,) = result.md5_unknown
    assert result.server_md5[unknown] == stored_as
    assert sum(v == stored_as for v in result.server_md5.values()) == 1


def test_an_unknown_hash_still_gets_count_and_size_checks(
        make_series: Callable[..., Series], zip_of: ZipOf, tmp_path: Path) -> None:
    series = make_series(3)
    zip_path = _include_md5_zip(series, zip_of, lambda k, md5: "")
    with pytest.raises(VerificationError, match="FileSize is"):
        extract_series_zip(zip_path, tmp_path / "f", expected=series.expected(
            md5_source=True, file_size=series.file_size + 1))


def _series_with_leading_zero(n: int) -> Series:
    """A real series whose first instance's MD5 starts with a 0 (about 1 seed in 16)."""
    study, series_uid = f"{UID_ROOT}.1.900", f"{UID_ROOT}.2.900"
    for seed in range(1000):  # deterministic: the same seed wins on every run
        sop = f"{UID_ROOT}.3.900.1"
        first = dicom_bytes(sop, series_uid, study, seed=seed)
        if hashlib.md5(first).hexdigest().startswith("0"):
            rest = [(f"{UID_ROOT}.3.900.{k}", dicom_bytes(f"{UID_ROOT}.3.900.{k}", series_uid,
                                                            study, seed=seed + k))
                    for k in range(2, n + 1)]
            return Series(study, series_uid, [(sop, first), *rest])
    raise AssertionError("no seed gives an MD5 with a leading zero")


def test_a_digest_stored_without_leading_zeros_is_no_mismatch(zip_of: ZipOf,
                                                              tmp_path: Path) -> None:
    series = _series_with_leading_zero(2)
    # As CTP stores them (BigInteger.toString(16)): leading zeros dropped; upper case too.
    zip_path = _include_md5_zip(series, zip_of,
                                lambda k, md5: md5.lstrip("0") if k == 0 else md5.upper())
    result = extract_series_zip(zip_path, tmp_path / "f",
                                expected=series.expected(md5_source=True))
    assert result.md5_checked
    first = series.instances[0][0]
    real = hashlib.md5(series.instances[0][1]).hexdigest()
    assert result.server_md5[first] == real.lstrip("0") != real  # kept as stored


def test_a_wrong_digest_is_still_refused(make_series: Callable[..., Series], zip_of: ZipOf,
                                         tmp_path: Path) -> None:
    series = make_series(2)
    def wrong(k: int, md5: str) -> str:
        return ("e" if md5[0] == "f" else "f") + md5[1:] if k else md5

    zip_path = _include_md5_zip(series, zip_of, wrong)
    with pytest.raises(VerificationError, match=r"md5hashes\.csv has [ef]"):
        extract_series_zip(zip_path, tmp_path / "f", expected=series.expected(md5_source=True))


@pytest.mark.parametrize("row", ["a.dcm,xyz", "a.dcm," + "0" * 33, "a.dcm,0x12", "a.dcm"])
def test_malformed_rows_are_refused(row: str) -> None:
    with pytest.raises(VerificationError, match="malformed row"):
        parse_md5_csv(f"Filename,MD5Hash\n{row}\n")


def test_parse_keeps_values_as_stored() -> None:
    text = "Filename,MD5Hash\na.dcm,0ABC\nb.dcm,\nc.dcm, \n"
    assert parse_md5_csv(text) == {"a.dcm": "0ABC", "b.dcm": "", "c.dcm": " "}
    assert [listed_md5(v) for v in ("0ABC", "", " ", None)] == ["0ABC", None, None, None]


def test_verify_compares_a_recorded_digest_as_a_number(tmp_path: Path) -> None:
    from mirror.archive import layout, verify
    from mirror.domain import InstanceRecord, PathName, Uid

    series = _series_with_leading_zero(2)
    directory = layout.series_dir(tmp_path, PathName("C"), PathName("P"), Uid(series.study_uid),
                                  Uid(series.series_uid))
    directory.mkdir(parents=True)
    records = []
    for raw_sop, data in series.instances:
        sop = Uid(raw_sop)
        (directory / layout.instance_name(sop)).write_bytes(data)
        md5 = hashlib.md5(data).hexdigest()
        records.append(InstanceRecord(sop, f"x/{layout.instance_name(sop)}", len(data),
                                      md5.lstrip("0")))  # recorded as the server stores it
    check = lambda recs: verify.check_series_on_disk(  # noqa: E731
        directory, recs, series_uid=series.series_uid, study_uid=series.study_uid)
    assert check(records) == []
    raw_sop, data = series.instances[0]
    sop = Uid(raw_sop)
    (directory / layout.instance_name(sop)).write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert [(p.kind, p.sop_uid) for p in check(records)] == [("md5", sop)]
