"""What a series ZIP must look like: expectations, caps, and the checks on its entry headers.

Every check here runs before anything is written; the caps are enforced again while
inflating (see :mod:`mirror.transfer.extract`), because headers can lie.
"""

from __future__ import annotations

import csv
import itertools
import re
import stat
import threading
import zipfile
import zlib
from dataclasses import dataclass, field

from mirror.archive.verify import ExtractedInstance
from mirror.errors import HostileArchive, TruncatedArchive, VerificationError
from mirror.merkle import is_stored_md5

MiB, GiB = 1 << 20, 1 << 30
LICENSE, MD5_CSV = "LICENSE", "md5hashes.csv"
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
#: A stored digest: CTP drops leading zeros, so 1 to 32 digits.


@dataclass(frozen=True, slots=True)
class ExpectedSeries:
    """What the listing says the series is; ``None`` means unknown (not checked)."""

    series_uid: str
    study_uid: str
    image_count: int | None = None
    file_size: int | None = None
    md5_source: bool = False  #: fetched with getImageWithMD5Hash: md5hashes.csv must be there


@dataclass(frozen=True, slots=True)
class ExtractLimits:
    """Caps against hostile archives, checked on the headers and again while inflating."""

    max_entry_bytes: int = 8 * GiB
    #: Honest DEFLATE cannot exceed about 1032:1; real DICOM (sparse SEG objects included)
    #: can come close, so the ratio only catches lying headers and other methods' bombs.
    #: The real bound is the total cap derived from the listed FileSize.
    max_ratio: float = 1100.0
    ratio_min_bytes: int = 64 * 1024  # tiny entries have meaningless ratios
    max_total_bytes: int | None = None  #: default: 2 x FileSize + 64 MiB, else fallback
    fallback_total_bytes: int = 64 * GiB
    #: Without a listed FileSize, a series may inflate to at most this multiple of its ZIP
    #: (above the floor): a 1 MB archive of zeros is refused before a byte is written,
    #: instead of filling staging with a gigabyte. Real series ZIPs inflate 1-10x.
    max_series_ratio: float = 200.0
    series_ratio_floor: int = 64 * MiB
    max_entries: int | None = None  #: default: ImageCount + 16, else fallback
    fallback_entries: int = 100_000
    max_text_bytes: int = 16 * MiB  # LICENSE and md5hashes.csv are read into memory

    def total_cap(self, expected: ExpectedSeries, archive_bytes: int | None = None) -> int:
        """Most bytes the series' entries may inflate to, all together."""
        if self.max_total_bytes is not None:
            return self.max_total_bytes
        listed = expected.file_size
        cap = 2 * listed + 64 * MiB if listed is not None else self.fallback_total_bytes
        if archive_bytes is None:
            return cap
        # No honest archive inflates past max_ratio as a whole, whatever the listing says;
        # without a listed size the stricter series ratio applies.
        ratio = self.max_ratio if listed is not None else self.max_series_ratio
        return min(cap, max(self.series_ratio_floor, int(ratio * archive_bytes)))

    def entries_cap(self, expected: ExpectedSeries) -> int:
        if self.max_entries is not None:
            return self.max_entries
        if expected.image_count is not None:
            return expected.image_count + 16
        return self.fallback_entries


@dataclass(frozen=True, slots=True)
class ExtractResult:
    instances: list[ExtractedInstance]
    license_text: str | None
    total_bytes: int  #: sum of the DICOM files' sizes (what FileSize counts)
    md5_checked: bool  #: every file matched md5hashes.csv (none unknown)
    #: SOP UID -> the per-image MD5 exactly as the server stores it (md5hashes.csv), for
    #: the getMD5Hierarchy computation; an empty field (a NULL in the server's database)
    #: is None, a blank " " (what CTP stores without a digest) stays " ".
    server_md5: dict[str, str | None] = field(default_factory=dict)

    @property
    def md5_unknown(self) -> tuple[str, ...]:
        """SOP UIDs whose md5hashes.csv row had an empty hash: unknown, checked by
        count, size and DICOM header only."""
        return tuple(sop for sop, md5 in self.server_md5.items() if listed_md5(md5) is None)


@dataclass(slots=True)
class Plan:
    dicoms: list[zipfile.ZipInfo]
    license: zipfile.ZipInfo | None = None
    md5_csv: zipfile.ZipInfo | None = None


class Budget:
    """Bytes actually inflated so far, against the total cap (headers are not trusted)."""

    def __init__(self, cap: int) -> None:
        self.cap, self.used = cap, 0
        self._lock = threading.Lock()  # shared by the extraction lanes of one archive

    def take(self, n: int, name: str) -> None:
        with self._lock:
            self.used += n
            used = self.used
        if used > self.cap:
            raise HostileArchive(f"entry {name!r}: archive inflates beyond {self.cap} bytes")


def plan_entries(infos: list[zipfile.ZipInfo], expected: ExpectedSeries,
                 limits: ExtractLimits, archive_bytes: int | None = None) -> Plan:
    """Sort the entries into LICENSE, md5hashes.csv and DICOM; refuse anything hostile.

    Runs on the central directory, before anything is written: the declared sizes are
    binding (zipfile never inflates an entry past its declared size), so the caps on
    them bound what extraction can write. *archive_bytes* is the ZIP's own size.
    """
    if len(infos) > (cap := limits.entries_cap(expected)):
        raise HostileArchive(f"archive has {len(infos)} entries, more than {cap}")
    plan, seen, declared = Plan([]), set(), 0
    for info in infos:
        name = info.filename
        _check_name(name)
        if (key := name.replace("\\", "/")) in seen:
            raise HostileArchive(f"entry {name!r}: duplicate name")
        seen.add(key)
        _check_kind(info)
        _check_declared_size(info, limits)
        declared += info.file_size
        if declared > (total := limits.total_cap(expected, archive_bytes)):
            raise HostileArchive(f"entry {name!r}: archive declares more than {total} bytes")
        if info.is_dir():
            continue  # real archives are flat; an empty directory entry is harmless
        if name in (LICENSE, MD5_CSV):
            if info.file_size > limits.max_text_bytes:
                raise HostileArchive(f"entry {name!r}: {info.file_size} bytes is too large")
            setattr(plan, "license" if name == LICENSE else "md5_csv", info)
        else:
            plan.dicoms.append(info)
    _check_overlaps(infos)
    return plan


def _check_name(name: str) -> None:
    norm = name.replace("\\", "/")
    if not name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise HostileArchive(f"entry {name!r}: empty name or control characters")
    if norm.startswith("/") or re.match(r"[A-Za-z]:", norm):
        raise HostileArchive(f"entry {name!r}: absolute path")
    if ".." in norm.split("/"):
        raise HostileArchive(f"entry {name!r}: parent directory reference")


def _check_kind(info: zipfile.ZipInfo) -> None:
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        raise HostileArchive(f"entry {info.filename!r}: symbolic link")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise HostileArchive(f"entry {info.filename!r}: special file (mode {kind:o})")
    if kind == stat.S_IFDIR and not info.is_dir():
        raise HostileArchive(f"entry {info.filename!r}: directory mode on a file entry")
    if info.flag_bits & 0x1:
        raise HostileArchive(f"entry {info.filename!r}: encrypted")
    if info.compress_type not in _METHODS:
        raise HostileArchive(f"entry {info.filename!r}: compression method "
                             f"{info.compress_type} not supported")
    if info.is_dir() and info.file_size:
        raise HostileArchive(f"entry {info.filename!r}: directory with content")


def _check_declared_size(info: zipfile.ZipInfo, limits: ExtractLimits) -> None:
    if info.file_size > limits.max_entry_bytes:
        raise HostileArchive(f"entry {info.filename!r}: declares {info.file_size} bytes, "
                             f"more than {limits.max_entry_bytes}")
    check_ratio(info, info.file_size, limits)


def check_ratio(info: zipfile.ZipInfo, size: int, limits: ExtractLimits) -> None:
    if size > limits.ratio_min_bytes and size > limits.max_ratio * max(info.compress_size, 1):
        raise HostileArchive(f"entry {info.filename!r}: compression ratio above "
                             f"{limits.max_ratio:g} ({size} from {info.compress_size} bytes)")


def _check_overlaps(infos: list[zipfile.ZipInfo]) -> None:
    """Refuse entries sharing compressed data (the 'overlapping files' zip bomb)."""
    spans = sorted((i.header_offset, i.header_offset + i.compress_size, i.filename)
                   for i in infos)
    for (start, end, _), (next_start, _, name) in itertools.pairwise(spans):
        if next_start == start or next_start < end:
            raise HostileArchive(f"entry {name!r}: overlaps another entry's data")


def read_text(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ExtractLimits) -> str:
    try:
        with zf.open(info) as f:
            data = f.read(limits.max_text_bytes + 1)
    except (zipfile.BadZipFile, zlib.error, ValueError) as exc:
        raise VerificationError(f"entry {info.filename!r}: corrupt ({exc})") from exc
    except EOFError as exc:
        raise TruncatedArchive(f"entry {info.filename!r}: cut short ({exc})") from exc
    if len(data) > limits.max_text_bytes:
        raise HostileArchive(f"entry {info.filename!r}: more than {limits.max_text_bytes} bytes")
    return data.decode("utf-8", "replace")


def parse_md5_csv(text: str) -> dict[str, str]:
    """``Filename,MD5Hash`` rows -> {entry name: the MD5 as the server stores it}.

    Values are kept as sent (no case change, no zero padding: the server's hierarchy
    hashes them that way). An empty or blank value means "unknown", not an error; see
    :func:`listed_md5`.
    """
    rows = [r for r in csv.reader(text.splitlines()) if any(c.strip() for c in r)]
    if rows and [c.strip().lower() for c in rows[0]] == ["filename", "md5hash"]:
        rows = rows[1:]
    hashes: dict[str, str] = {}
    for row in rows:
        if len(row) != 2 or not (is_stored_md5(row[1].strip()) or not row[1].strip()):
            raise VerificationError(f"{MD5_CSV}: malformed row {','.join(row)[:120]!r}")
        name, md5 = row[0].strip(), row[1]
        if hashes.setdefault(name, md5) != md5:
            raise VerificationError(f"{MD5_CSV}: conflicting hashes for {name!r}")
    return hashes


def listed_md5(stored: str | None) -> str | None:
    """A md5hashes.csv value -> the digest to verify against, or None when unknown."""
    if stored is None or not stored.strip():
        return None
    return stored.strip()
