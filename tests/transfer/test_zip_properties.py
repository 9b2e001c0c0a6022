"""Property tests: ZIP entry planning and md5hashes.csv parsing on arbitrary input.

Either a plan within every cap (or hashes of the right shape) or a clean domain error
(HostileArchive, VerificationError); never another exception.
"""

from __future__ import annotations

import stat
import zipfile

from hypothesis import given, settings
from hypothesis import strategies as st

from mirror.errors import HostileArchive, VerificationError
from mirror.transfer import ExpectedSeries, ExtractLimits
from mirror.transfer.zipcheck import parse_md5_csv, plan_entries

NAMES = ["1-001.dcm", "LICENSE", "md5hashes.csv", "../x.dcm", "/abs.dcm", "a/../../b.dcm",
         "C:x.dcm", "..\\x.dcm", "dir/", "a\x00b.dcm", "\x1b[2J.dcm", "", ".", "..", "a/b.dcm"]
KINDS = [0, stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK, stat.S_IFCHR, stat.S_IFIFO]
sizes = st.one_of(st.integers(0, 4096), st.integers(0, 2**64 - 1))


@st.composite
def infos(draw: st.DrawFn) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(draw(st.one_of(st.sampled_from(NAMES), st.text(max_size=20))))
    info.file_size = draw(sizes)
    info.compress_size = draw(sizes)
    info.header_offset = draw(st.integers(0, 2**40))
    info.external_attr = (draw(st.sampled_from(KINDS)) | 0o644) << 16
    info.flag_bits = draw(st.sampled_from([0, 1, 8]))
    info.compress_type = draw(st.sampled_from([0, 8, 12, 14, 99]))
    return info


expected = st.builds(ExpectedSeries, series_uid=st.just("1.2.3"), study_uid=st.just("1.2"),
                     image_count=st.one_of(st.none(), st.integers(0, 50)),
                     file_size=st.one_of(st.none(), st.integers(0, 2**40)))


@settings(max_examples=300)
@given(entries=st.lists(infos(), max_size=12), exp=expected,
       archive_bytes=st.one_of(st.none(), st.integers(0, 2**40)))
def test_planning_yields_a_bounded_plan_or_refuses(entries: list[zipfile.ZipInfo],
                                                   exp: ExpectedSeries,
                                                   archive_bytes: int | None) -> None:
    limits = ExtractLimits()
    try:
        plan = plan_entries(entries, exp, limits, archive_bytes)
    except HostileArchive:
        return
    planned = [*plan.dicoms, *(i for i in (plan.license, plan.md5_csv) if i is not None)]
    assert len(entries) <= limits.entries_cap(exp)
    assert sum(i.file_size for i in entries) <= limits.total_cap(exp, archive_bytes)
    for info in planned:
        name = info.filename.replace("\\", "/")
        assert not name.startswith("/") and ".." not in name.split("/")
        assert all(ord(c) >= 32 and ord(c) != 127 for c in name)
        assert info.file_size <= limits.max_entry_bytes
        assert not info.flag_bits & 1
        assert stat.S_IFMT(info.external_attr >> 16) in (0, stat.S_IFREG)


@given(archive_bytes=st.integers(1, 2**30))
def test_without_a_listed_size_a_series_inflates_at_most_its_ratio(archive_bytes: int) -> None:
    limits = ExtractLimits()
    cap = limits.total_cap(ExpectedSeries("1.2.3", "1.2"), archive_bytes)
    assert cap <= max(limits.series_ratio_floor, limits.max_series_ratio * archive_bytes)


md5 = st.text(alphabet="0123456789abcdefABCDEF", min_size=30, max_size=34)
csv_rows = st.lists(st.tuples(st.one_of(st.sampled_from(NAMES), st.text(max_size=12)),
                              st.one_of(md5, st.text(max_size=5))), max_size=6)


@given(text=st.one_of(st.text(max_size=300), csv_rows.map(
    lambda rows: "Filename,MD5Hash\n" + "".join(f"{n},{h}\n" for n, h in rows))))
def test_md5_csv_yields_hashes_or_a_clean_error(text: str) -> None:
    try:
        hashes = parse_md5_csv(text)
    except VerificationError:
        return
    for value in hashes.values():  # kept as the server stores it: 1-32 hex digits, or
        digest = value.strip()     # blank for "unknown" (count, size and DICOM decide)
        assert digest == "" or (len(digest) <= 32
                                and all(c in "0123456789abcdefABCDEF" for c in digest))
