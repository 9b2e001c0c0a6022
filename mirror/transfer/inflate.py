"""Open a ZIP entry for reading with the fastest inflater at hand (ISA-L, else zlib).

python-isal's ``isal_zlib.decompressobj`` is a drop-in for ``zlib.decompressobj`` and
inflates DICOM about twice as fast (B1: stdlib zlib was the largest single CPU cost).
zipfile offers no hook for its decompressor, so the swap sets one attribute of the
entry reader, and only when the reader has exactly the shape this was written against
(else stdlib zlib stays, which is only slower).

CRC-32: an entry whose MD5 will be checked against md5hashes.csv skips the CRC (the
MD5 catches everything the CRC would, and more); without a known MD5 the CRC is kept,
so corruption is always detected by one of the two.
"""

from __future__ import annotations

import zipfile
import zlib
from typing import IO

try:
    from isal import isal_zlib
except ImportError:  # an unusual platform without wheels: stdlib zlib it is
    isal_zlib = None

#: Errors an inflater raises on corrupt deflate data.
INFLATE_ERRORS: tuple[type[Exception], ...] = (zlib.error,) + (
    (isal_zlib.error,) if isal_zlib is not None else ())


def open_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, *, md5_checked: bool) -> IO[bytes]:
    """``zf.open(info)``, inflating with ISA-L; no CRC-32 when *md5_checked*."""
    entry = zf.open(info)
    if isinstance(entry, zipfile.ZipExtFile):
        _tune(entry, info, md5_checked=md5_checked)
    return entry


def _tune(entry: zipfile.ZipExtFile, info: zipfile.ZipInfo, *, md5_checked: bool) -> None:
    fresh = entry._compress_left == info.compress_size  # type: ignore[attr-defined]
    if not fresh:
        return  # something was read already: leave the reader alone
    if (isal_zlib is not None and info.compress_type == zipfile.ZIP_DEFLATED
            and isinstance(getattr(entry, "_decompressor", None), type(zlib.decompressobj()))):
        entry._decompressor = isal_zlib.decompressobj(-15)  # type: ignore[attr-defined]
    if md5_checked and hasattr(entry, "_expected_crc"):
        entry._expected_crc = None  # type: ignore[attr-defined]


def inflater() -> str:
    """Which inflater :func:`open_entry` uses (for the benchmark report)."""
    return "isal" if isal_zlib is not None else "zlib"
