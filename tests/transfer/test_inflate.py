"""ZIP entries inflate with ISA-L where installed; a CRC-32 is skipped only when an MD5 decides."""

from __future__ import annotations

import io
import os
import zipfile

import pytest

from mirror.transfer import inflate


def _zip(data: bytes, compress: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compress) as zf:
        zf.writestr("1.dcm", data)
    return buf.getvalue()


def test_isal_inflates_what_zlib_inflates() -> None:
    pytest.importorskip("isal")
    assert inflate.inflater() == "isal"
    data = os.urandom(300_000) + bytes(700_000)  # noise and runs, like CT
    raw = _zip(data, zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        entry = inflate.open_entry(zf, zf.infolist()[0], md5_checked=False)
        assert type(entry._decompressor).__module__.startswith(("isal", "igzip"))
        assert entry.read() == data


@pytest.mark.parametrize("compress", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_a_bad_crc_is_caught_unless_an_md5_is_checked(compress: int) -> None:
    data = bytes(range(256)) * 64
    raw = _zip(data, compress)
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:  # corrupt the recorded CRC instead
        info = zf.infolist()[0]
        info.CRC ^= 0xFFFF
        with pytest.raises(zipfile.BadZipFile, match="CRC"):
            inflate.open_entry(zf, info, md5_checked=False).read()
        assert inflate.open_entry(zf, info, md5_checked=True).read() == data


def test_corrupt_deflate_data_raises_an_inflate_error() -> None:
    data = os.urandom(50_000)
    raw = bytearray(_zip(data * 3, zipfile.ZIP_DEFLATED))
    start = raw.index(b"1.dcm") + 5  # first local header's name, then the data
    raw[start + 10:start + 30] = b"\xff" * 20
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as zf, pytest.raises(
            (zipfile.BadZipFile, *inflate.INFLATE_ERRORS)):
        inflate.open_entry(zf, zf.infolist()[0], md5_checked=False).read()
