"""Hostile archives are refused (HostileArchive, permanent) before anything is written."""

from __future__ import annotations

import stat
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from mirror.errors import HostileArchive, TruncatedArchive, VerificationError
from mirror.transfer import ExtractLimits, extract_series_zip
from mirror.transfer.extract import CHUNK, _copy_entry
from mirror.transfer.zipcheck import Budget
from tests.transfer.conftest import Series

ZipOf = Callable[..., Path]
MiB = 1 << 20


def _patch_central_directory(zip_path: Path, name: str, offset: int, fmt: str,
                             value: int) -> None:
    """Overwrite one field of *name*'s central directory record (offsets per APPNOTE 4.3.12)."""
    data = bytearray(zip_path.read_bytes())
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        name_len = struct.unpack_from("<H", data, pos + 28)[0]
        if data[pos + 46:pos + 46 + name_len] == name.encode():
            struct.pack_into(fmt, data, pos + offset, value)
            zip_path.write_bytes(bytes(data))
            return
        pos = data.find(b"PK\x01\x02", pos + 4)
    raise AssertionError(f"{name} not in the central directory")


def _refused(zip_path: Path, dest: Path, series: Series, match: str, **limits: int) -> None:
    with pytest.raises(HostileArchive, match=match) as info:
        extract_series_zip(zip_path, dest, expected=series.expected(image_count=None),
                           limits=ExtractLimits(**limits))
    assert not info.value.transient
    assert not dest.exists()  # refused before anything was written


@pytest.mark.parametrize(("name", "why"), [
    ("../evil.dcm", "parent directory"), ("a/../../evil.dcm", "parent directory"),
    ("..\\evil.dcm", "parent directory"), ("/etc/x", "absolute"), ("C:\\x", "absolute"),
    ("C:x.dcm", "absolute"), ("\\\\server\\share\\x", "absolute"), ("a\nb.dcm", "control"),
    ("\x1b[31m.dcm", "control"),
])
def test_hostile_names(make_series: Callable[..., Series], zip_of: ZipOf, tmp_path: Path,
                       name: str, why: str) -> None:
    series = make_series(2)
    entries = series.entries()
    zip_path = zip_of([*entries[:2], (name, entries[2][1])])
    _refused(zip_path, tmp_path / "f", series, why)


@pytest.mark.parametrize("second", ["00000001.dcm", "dir\\00000001.dcm"])
def test_duplicate_names(make_series: Callable[..., Series], zip_of: ZipOf, tmp_path: Path,
                         second: str) -> None:
    series = make_series(2)
    entries = series.entries()
    first = "dir/00000001.dcm" if "\\" in second else "00000001.dcm"
    zip_path = zip_of([(first, entries[1][1]), (second, entries[2][1])])
    _refused(zip_path, tmp_path / "f", series, "duplicate name")


@pytest.mark.parametrize(("mode", "why"), [(stat.S_IFLNK | 0o777, "symbolic link"),
                                           (stat.S_IFIFO | 0o644, "special file"),
                                           (stat.S_IFCHR | 0o644, "special file")])
def test_links_and_special_files(make_series: Callable[..., Series], zip_of: ZipOf,
                                 tmp_path: Path, mode: int, why: str) -> None:
    series = make_series(1)
    info = zipfile.ZipInfo("00000002.dcm")
    info.create_system, info.external_attr = 3, mode << 16
    zip_path = zip_of([*series.entries(), (info, b"/etc/passwd")])
    _refused(zip_path, tmp_path / "f", series, why)


def test_encrypted_entry(make_series: Callable[..., Series], zip_of: ZipOf,
                         tmp_path: Path) -> None:
    series = make_series(1)
    zip_path = zip_of(series.entries(), streamed=False)
    _patch_central_directory(zip_path, "00000001.dcm", 8, "<H", 0x0001)
    _refused(zip_path, tmp_path / "f", series, "encrypted")


def test_bomb_by_ratio(make_series: Callable[..., Series], zip_of: ZipOf,
                       tmp_path: Path) -> None:
    series = make_series(1)
    zip_path = zip_of([*series.entries(), ("bomb.dcm", bytes(4 * MiB))])
    _refused(zip_path, tmp_path / "f", series, "compression ratio above 100", max_ratio=100)


def test_bzip2_bomb_is_refused_by_default(make_series: Callable[..., Series], zip_of: ZipOf,
                                          tmp_path: Path) -> None:
    # Beyond the ~1032:1 that honest DEFLATE can reach, so the default ratio catches it.
    series = make_series(1)
    zip_path = zip_of([*series.entries(), ("bomb.dcm", bytes(8 * MiB))],
                      method=zipfile.ZIP_BZIP2)
    _refused(zip_path, tmp_path / "f", series, "compression ratio")


def test_bomb_by_total_size_against_file_size(make_series: Callable[..., Series],
                                              zip_of: ZipOf, tmp_path: Path) -> None:
    # Default cap: 2 x FileSize + 64 MiB; a 70 MiB entry in a ~10 KB series exceeds it.
    series = make_series(1)
    zip_path = zip_of([*series.entries(), ("bomb.dcm", bytes(70 * MiB))])
    with pytest.raises(HostileArchive, match=r"'bomb\.dcm': archive declares more than"):
        extract_series_zip(zip_path, tmp_path / "f", expected=series.expected())
    assert not (tmp_path / "f").exists()


def test_bomb_by_entry_size(make_series: Callable[..., Series], zip_of: ZipOf,
                            tmp_path: Path) -> None:
    series = make_series(1)
    zip_path = zip_of([*series.entries(), ("big.dcm", bytes(2 * MiB))])
    _refused(zip_path, tmp_path / "f", series, "declares 2097152 bytes", max_entry_bytes=MiB)


def test_too_many_entries(make_series: Callable[..., Series], zip_of: ZipOf,
                          tmp_path: Path) -> None:
    series = make_series(2)
    junk = [(f"x{i}.dcm", b"") for i in range(40)]
    zip_path = zip_of([*series.entries(), *junk])
    with pytest.raises(HostileArchive, match="43 entries, more than 18"):
        extract_series_zip(zip_path, tmp_path / "f", expected=series.expected())


def test_overlapping_entries(make_series: Callable[..., Series], zip_of: ZipOf,
                             tmp_path: Path) -> None:
    series = make_series(2)
    zip_path = zip_of(series.entries(license=False), streamed=False)
    with zipfile.ZipFile(zip_path) as zf:
        first = zf.getinfo("00000001.dcm").header_offset
    _patch_central_directory(zip_path, "00000002.dcm", 42, "<I", first)
    _refused(zip_path, tmp_path / "f", series, "overlaps")


def test_lying_small_size_header_never_inflates_past_it(make_series: Callable[..., Series],
                                                        zip_of: ZipOf, tmp_path: Path) -> None:
    # The central directory claims 1000 bytes for 16 MiB of zeros: passes every header check,
    # then inflation stops at the declared size and the CRC exposes the lie.
    series = make_series(1)
    zip_path = zip_of([*series.entries(), ("bomb.dcm", bytes(16 * MiB))], streamed=False)
    _patch_central_directory(zip_path, "bomb.dcm", 24, "<I", 1000)
    with pytest.raises((VerificationError, TruncatedArchive), match=r"'bomb\.dcm'"):
        extract_series_zip(zip_path, tmp_path / "f", expected=series.expected(image_count=None,
                                                                              file_size=None))
    assert list((tmp_path / "f").iterdir()) == []


def test_lying_large_size_header_is_caught(make_series: Callable[..., Series], zip_of: ZipOf,
                                           tmp_path: Path) -> None:
    series = make_series(2)
    zip_path = zip_of(series.entries(), streamed=False)
    real = len(series.instances[1][1])
    _patch_central_directory(zip_path, "00000002.dcm", 24, "<I", real + 5000)
    with pytest.raises(VerificationError, match=f"{real} bytes, header says {real + 5000}"):
        extract_series_zip(zip_path, tmp_path / "f", expected=series.expected())
    assert list((tmp_path / "f").iterdir()) == []


@pytest.mark.parametrize(("budget", "limits", "match"), [
    (MiB, ExtractLimits(), "inflates beyond 1048576 bytes"),
    (1 << 40, ExtractLimits(max_entry_bytes=MiB), "inflates beyond 1048576 bytes"),
    (1 << 40, ExtractLimits(max_ratio=10), "compression ratio above 10"),
])
def test_caps_hold_while_inflating(zip_of: ZipOf, tmp_path: Path, budget: int,
                                   limits: ExtractLimits, match: str) -> None:
    # Headers that got past the plan (as if they lied): the running counts still stop it.
    zip_path = zip_of([("bomb.dcm", bytes(8 * MiB))])
    dest = tmp_path / "bomb.part"
    with zipfile.ZipFile(zip_path) as zf, pytest.raises(HostileArchive, match=match):
        _copy_entry(zf, zf.getinfo("bomb.dcm"), dest, Budget(budget), limits)
    assert dest.stat().st_size <= MiB + CHUNK
