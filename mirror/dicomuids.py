"""Read the UIDs of a DICOM Part 10 header (study, series, SOP instance and class), fast.

The extractor needs three UIDs per file; pydicom's header parse costs ~0.4 ms a file
where walking the elements up to (0020,000E) costs ~0.01 ms. :func:`read_uids` handles
the common case (Part 10 file, little-endian explicit or implicit VR) and returns None
for anything else (no preamble, big endian, deflated, a value beyond *data*, odd
nesting, non-ASCII UIDs...): the caller then asks pydicom, which gives the error
message. Written by hand because no small library reads just these tags; every read
is bounds-checked and nothing here raises on hostile bytes.
"""

from __future__ import annotations

from struct import unpack_from

_PREAMBLE = 128
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN",
                       b"UR", b"UT", b"UV"})
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_SOP_CLASS, _SOP, _STUDY, _SERIES = 0x00080016, 0x00080018, 0x0020000D, 0x0020000E
_TSUID = 0x00020010
_IMPLICIT_LE = "1.2.840.10008.1.2"
_UNSUPPORTED = frozenset({"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"})  # BE, deflated
_MAX_DEPTH = 8
_UID_CHARS = frozenset(b"0123456789.")


class _Unusual(Exception):
    """Internal: leave this file to pydicom."""


def read_uids(data: bytes) -> tuple[str, str, str] | None:
    """(SOP, Series, Study) Instance UIDs from the start of a DICOM file, or None.

    None means "not decided here" (unusual or incomplete header), never "invalid".
    """
    try:
        return _read(memoryview(data))
    except (_Unusual, IndexError, ValueError, UnicodeDecodeError, OverflowError):
        return None
    except Exception:
        return None


def read_sop_class(data: bytes) -> str | None:
    """The SOP Class UID (0008,0016) from the start of a DICOM file, or None.

    metadata.csv names each series' SOP class; reading it this way costs one small
    read per series instead of a pydicom parse. None again means "not decided here".
    """
    try:
        found = _find(memoryview(data), (_SOP_CLASS,))
    except (_Unusual, IndexError, ValueError, UnicodeDecodeError, OverflowError):
        return None
    except Exception:
        return None
    return None if found is None else found[_SOP_CLASS]


def _read(buf: memoryview) -> tuple[str, str, str] | None:
    found = _find(buf, (_SOP, _STUDY, _SERIES))
    return None if found is None else (found[_SOP], found[_SERIES], found[_STUDY])


def _find(buf: memoryview, wanted: tuple[int, ...]) -> dict[int, str] | None:
    """The UID values of the *wanted* tags (ascending order), or None if one is absent."""
    if len(buf) < _PREAMBLE + 4 or buf[_PREAMBLE:_PREAMBLE + 4] != b"DICM":
        return None
    pos, syntax = _PREAMBLE + 4, None
    while pos + 8 <= len(buf) and unpack_from("<H", buf, pos)[0] == 0x0002:
        tag, value, pos = _element(buf, pos, explicit=True)
        if tag == _TSUID:
            syntax = _text(value)
    if syntax is None or syntax in _UNSUPPORTED:
        return None
    explicit = syntax != _IMPLICIT_LE
    found: dict[int, str] = {}
    last = wanted[-1]
    while len(found) < len(wanted):
        if pos + 8 > len(buf):
            return None  # the header goes on beyond the bytes we have
        tag, value, pos = _element(buf, pos, explicit=explicit)
        if tag in wanted:
            found[tag] = _uid(value)
        elif tag > last:
            return None  # a UID is absent: pydicom reports which
    return found


def _element(buf: memoryview, pos: int, *, explicit: bool,
             depth: int = 0) -> tuple[int, memoryview, int]:
    """(tag, value, next position) of the element at *pos*; nested sequences skipped."""
    group, elem = unpack_from("<HH", buf, pos)
    tag = group << 16 | elem
    vr = bytes(buf[pos + 4:pos + 6]) if explicit and group != 0xFFFE else b""
    if vr and vr in _LONG_VRS:
        (length,), start = unpack_from("<I", buf, pos + 8), pos + 12
    elif vr:
        if not vr.isalpha() or not vr.isupper():
            raise _Unusual
        (length,), start = unpack_from("<H", buf, pos + 6), pos + 8
    else:
        (length,), start = unpack_from("<I", buf, pos + 4), pos + 8
    if length == _UNDEFINED:
        if vr not in (b"SQ", b""):  # UN of undefined length nests implicit VR: rare
            raise _Unusual
        return tag, buf[start:start], _skip_sequence(buf, start, explicit, depth + 1)
    end = start + length
    if end > len(buf):
        raise _Unusual
    return tag, buf[start:end], end


def _skip_sequence(buf: memoryview, pos: int, explicit: bool, depth: int) -> int:
    """Position after an undefined-length sequence starting at *pos* (its first item)."""
    if depth > _MAX_DEPTH:
        raise _Unusual
    while True:
        if pos + 8 > len(buf):
            raise _Unusual
        tag, length = unpack_from("<I", buf, pos)[0], unpack_from("<I", buf, pos + 4)[0]
        tag = (tag & 0xFFFF) << 16 | tag >> 16  # (group, element) as two LE halves
        pos += 8
        if tag == _SEQ_END:
            return pos
        if tag != _ITEM:
            raise _Unusual
        if length != _UNDEFINED:
            pos += length
            continue
        while True:  # an item of undefined length: elements up to the item delimiter
            if pos + 8 > len(buf):
                raise _Unusual
            if unpack_from("<HH", buf, pos) == (0xFFFE, 0xE00D):
                pos += 8
                break
            _, _, pos = _element(buf, pos, explicit=explicit, depth=depth)


def _text(value: memoryview) -> str:
    return bytes(value).decode("ascii").strip("\x00 ")


def _uid(value: memoryview) -> str:
    raw = bytes(value).rstrip(b"\x00 ")
    if not raw or not set(raw) <= _UID_CHARS:
        raise _Unusual  # empty or odd: pydicom's path words the complaint
    return raw.decode("ascii")
