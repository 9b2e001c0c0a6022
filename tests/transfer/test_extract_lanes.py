"""extract_series_zip on archives big enough to be split over several extraction lanes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from mirror.errors import VerificationError
from mirror.transfer import extract, extract_series_zip
from tests.transfer.conftest import Series, md5_csv

ZipOf = Callable[..., Path]
N = 40  # several lanes of at least MIN_LANE_ENTRIES each


@pytest.fixture(autouse=True)
def four_lanes(monkeypatch: pytest.MonkeyPatch) -> None:
    # lanes are capped by the core count: pin it so the test splits on any machine
    monkeypatch.setattr(extract.os, "cpu_count", lambda: 4)


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_lanes_store_every_entry_in_entry_order(make_series: Callable[..., Series],
                                                zip_of: ZipOf, tmp_path: Path) -> None:
    series = make_series(N)
    zip_path = zip_of(series.entries(md5=True))
    result = extract_series_zip(zip_path, tmp_path / "f",
                                expected=series.expected(md5_source=True))
    assert [i.sop_uid for i in result.instances] == [sop for sop, _ in series.instances]
    assert _files(tmp_path / "f") == sorted(f"{sop}.dcm" for sop, _ in series.instances)
    for inst in result.instances:
        data = (tmp_path / "f" / inst.filename).read_bytes()
        assert data == series.by_sop()[inst.sop_uid]
        assert inst.md5 == hashlib.md5(data).hexdigest()


def test_first_bad_entry_is_reported_and_nothing_is_left(make_series: Callable[..., Series],
                                                         zip_of: ZipOf, tmp_path: Path) -> None:
    series = make_series(N)
    entries = series.entries(license=False, md5=True)[:-1]
    bad = md5_csv(entries)
    for k in (29, 34):  # two lanes fail; the earlier entry is the one reported
        bad = bad.replace(hashlib.md5(entries[k][1]).hexdigest().encode(), b"0" * 32)
    zip_path = zip_of([*entries, ("md5hashes.csv", bad)])
    with pytest.raises(VerificationError, match=r"'00000030.dcm': MD5"):
        extract_series_zip(zip_path, tmp_path / "f", expected=series.expected(md5_source=True))
    assert _files(tmp_path / "f") == []


def test_same_sop_in_two_lanes(make_series: Callable[..., Series], zip_of: ZipOf,
                               tmp_path: Path) -> None:
    series = make_series(N)
    entries = series.entries(license=False)
    zip_path = zip_of([*entries, (f"{N + 1:08d}.dcm", entries[2][1])])
    with pytest.raises(VerificationError, match=r"'00000003\.dcm' and '00000041\.dcm': same"):
        extract_series_zip(zip_path, tmp_path / "f",
                           expected=series.expected(image_count=None, file_size=None))
    assert _files(tmp_path / "f") == []


def test_header_longer_than_the_first_chunk_is_read_from_the_file(
        make_series: Callable[..., Series], zip_of: ZipOf, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    series = make_series(2)
    monkeypatch.setattr(extract, "CHUNK", 64)  # the header no longer fits in one chunk
    zip_path = zip_of(series.entries())
    result = extract_series_zip(zip_path, tmp_path / "f", expected=series.expected())
    assert {i.sop_uid for i in result.instances} == set(series.by_sop())
