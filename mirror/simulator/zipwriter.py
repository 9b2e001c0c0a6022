"""A minimal streaming ZIP writer shaped like Java's ZipOutputStream output.

Entries are DEFLATEd with data descriptors (flag bit 3), flat names, no ZIP64. Written by
hand instead of with ``zipfile`` because hostile variants need duplicate and absolute names
(``zipfile`` warns on those), and because DICOM entries use DEFLATE's Huffman-only
strategy: the pixel noise has no repeats for LZ77 to find, so level 1-6 match searching
only costs time (about 3x) for the same ~2:1 ratio.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from datetime import datetime
from typing import BinaryIO

from mirror.errors import StorageError

_LIMIT = 0xFFFFFFFF


def dos_stamp(when: datetime) -> tuple[int, int]:
    t = (when.hour << 11) | (when.minute << 5) | (when.second // 2)
    d = ((max(when.year, 1980) - 1980) << 9) | (when.month << 5) | when.day
    return t, d


def compressor(fast: bool) -> zlib._Compress:
    if fast:
        return zlib.compressobj(1, zlib.DEFLATED, -15, 8, zlib.Z_HUFFMAN_ONLY)
    return zlib.compressobj(6, zlib.DEFLATED, -15)


def deflate(data: bytes, fast: bool = True) -> bytes:
    c = compressor(fast)
    return c.compress(data) + c.flush()


class ZipWriter:
    """Append entries to *out*; :meth:`close` writes the central directory."""

    def __init__(self, out: BinaryIO, when: datetime) -> None:
        self.out = out
        self.offset = 0
        self.central: list[bytes] = []
        self.time, self.date = dos_stamp(when)

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self.offset += len(data)
        if self.offset > _LIMIT:
            raise StorageError("simulated series ZIP exceeds 4 GiB (ZIP64 not simulated)")

    def add_compressed(self, name: str, compressed: bytes, crc: int, size: int) -> None:
        """Add an entry whose DEFLATE stream was produced elsewhere (e.g. in a thread)."""
        raw = name.encode("utf-8")
        flag = 0x08 | (0 if raw.isascii() else 0x800)
        start = self.offset
        self._write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flag, 8, self.time,
                                self.date, 0, 0, 0, len(raw), 0) + raw)
        self._write(compressed)
        self._write(struct.pack("<IIII", 0x08074B50, crc, len(compressed), size))
        self.central.append(struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, flag, 8, self.time, self.date, crc,
            len(compressed), size, len(raw), 0, 0, 0, 0, 0, start) + raw)

    def add_bytes(self, name: str, data: bytes, fast: bool = False) -> None:
        self.add_compressed(name, deflate(data, fast), zlib.crc32(data), len(data))

    def add_stream(self, name: str, chunks: Iterable[bytes]) -> None:
        """Add a large entry without holding it in memory (used for the zip bomb)."""
        c, crc, size, parts = compressor(False), 0, 0, []
        for chunk in chunks:
            crc, size = zlib.crc32(chunk, crc), size + len(chunk)
            parts.append(c.compress(chunk))
        parts.append(c.flush())
        self.add_compressed(name, b"".join(parts), crc, size)

    def close(self) -> None:
        start = self.offset
        for record in self.central:
            self._write(record)
        n = len(self.central)
        self._write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, self.offset - start,
                                start, 0))
