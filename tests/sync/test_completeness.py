"""Every completeness rule, with the message it raises (unchanged from where it came)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from mirror.archive import completeness as c
from mirror.domain import InstanceRecord
from mirror.errors import VerificationError

MD5 = "0cc175b9c0f1b6a831c399e269772661"
CSV = "md5hashes.csv"


@dataclass(frozen=True)
class Item:
    size: int


def rec(md5: str = MD5, size: int = 10) -> InstanceRecord:
    return InstanceRecord(sop_uid="1.2", path="a/1.2.dcm", size=size, md5=md5)


@pytest.mark.parametrize(("image_count", "file_size", "sizes", "match"), [
    (2, 20, [10, 10], True),
    (None, None, [10, 10], True),
    (3, None, [10, 10], False),
    (None, 21, [10, 10], False),
    (0, 0, [], True),
])
def test_counts_match(image_count: int | None, file_size: int | None, sizes: list[int],
                      match: bool) -> None:
    assert c.counts_match(image_count, file_size, [Item(s) for s in sizes]) is match


FAILS: list[tuple[Callable[[], None], str]] = [
    (lambda: c.check_archive_totals("1.9", [5, 5], image_count=3, file_size=None),
     "series 1.9: 2 DICOM files, ImageCount is 3"),
    (lambda: c.check_archive_totals("1.9", [], image_count=None, file_size=None),
     "series 1.9: the archive has no DICOM files"),
    (lambda: c.check_archive_totals("1.9", [5, 5], image_count=2, file_size=11),
     "series 1.9: 10 bytes of DICOM, FileSize is 11"),
    (lambda: c.check_csv_covers({"a.dcm", "z.dcm", "y.dcm"}, {"a.dcm"}, csv_name=CSV),
     "md5hashes.csv lists 2 files the archive lacks, e.g. 'y.dcm'"),
    (lambda: c.check_listed_md5("a.dcm", MD5, "f" * 32, csv_name=CSV),
     f"entry 'a.dcm': MD5 {MD5}, md5hashes.csv has {'f' * 32}"),
    (lambda: c.check_known_md5("1.9", "1.2", "f" * 32, {"1.2": rec()}),
     f"series 1.9: SOP 1.2 has MD5 {'f' * 32}, the catalog recorded {MD5}"),
    (lambda: c.check_server_md5("1.9", "1.2", "f" * 32, MD5),
     f"series 1.9: SOP 1.2 has MD5 {'f' * 32}, the server lists {MD5}"),
    (lambda: c.check_repaired("1.9", [Item(4), Item(5)], ["1", "2", "3"], image_count=3,
                              file_size=12),
     "series 1.9: repaired copy has 2 instances (9 bytes), upstream lists 3 (12 bytes)"),
]


@pytest.mark.parametrize(("rule", "message"), FAILS)
def test_rules_that_fail_say_why(rule: Callable[[], None], message: str) -> None:
    with pytest.raises(VerificationError) as info:
        rule()
    assert str(info.value) == message


PASSES: list[Callable[[], None]] = [
    lambda: c.check_archive_totals("1.9", [5, 5], image_count=2, file_size=10),
    lambda: c.check_archive_totals("1.9", [], image_count=0, file_size=None),
    lambda: c.check_csv_covers({"a.dcm"}, {"a.dcm", "b.dcm"}, csv_name=CSV),
    lambda: c.check_listed_md5("a.dcm", MD5, None, csv_name=CSV),  # an empty row: unknown
    lambda: c.check_listed_md5("a.dcm", MD5, MD5.upper(), csv_name=CSV),
    lambda: c.check_known_md5("1.9", "1.2", "f" * 32, {}),  # never verified before
    lambda: c.check_server_md5("1.9", "1.2", MD5, ""),  # the server has none
    lambda: c.check_server_md5("1.9", "1.2", "0" + "1" * 31, "1" * 31),  # leading zero
    lambda: c.check_repaired("1.9", [Item(4), Item(5)], ["1", "2"], image_count=2,
                             file_size=9),
]


@pytest.mark.parametrize("rule", PASSES)
def test_rules_that_pass(rule: Callable[[], None]) -> None:
    assert rule() is None


@pytest.mark.parametrize(("size", "md5", "found"), [
    (10, MD5, None),
    (10, None, None),  # MD5 not checked
    (11, MD5, ("size", "11 bytes, catalog has 10")),
    (10, "f" * 32, ("md5", f"MD5 {'f' * 32}, catalog has {MD5}")),
])
def test_stored_mismatch(size: int, md5: str | None, found: tuple[str, str] | None) -> None:
    assert c.stored_mismatch(size, md5, rec()) == found
