"""The server's MD5 hierarchy (NBIA getMD5Hierarchy), computed locally: pure, no I/O.

Definitions follow tcia-api-v4.md section 1: a series hashes its images' stored MD5
strings sorted bytewise and concatenated (a NULL contributes ``"null"``, first); study,
patient and collection hash their children's hashes the same way; nothing hashes to "".
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

__all__ = ["combine", "hexmd5", "md5_equal", "series_hash"]

_HEX = re.compile(r"[0-9a-fA-F]{1,32}")


def hexmd5(s: str) -> str:
    """32 lowercase hex digits of the MD5 of *s*'s ASCII bytes (``%032x`` on the server)."""
    return hashlib.md5(s.encode("ascii")).hexdigest()


def series_hash(image_md5s: Iterable[str | None]) -> str:
    """A series' hash from its images' MD5 strings exactly as the server stores them.

    The server runs ``ORDER BY md5_digest`` (NULLs first; Java appends ``"null"`` for each)
    and concatenates without a separator. No images at all: ``""``.
    """
    nulls = 0
    values: list[str] = []
    for md5 in image_md5s:
        if md5 is None:
            nulls += 1
        else:
            values.append(md5)
    # Python str order is code-point order, which equals byte order for the ASCII
    # the server stores (MySQL's latin1_general_ci collation agrees for lowercase hex).
    cat = "null" * nulls + "".join(sorted(values))
    return hexmd5(cat) if cat else ""


def combine(children: Iterable[str]) -> str:
    """A study, patient or collection hash from its children's hashes.

    Children are sorted and concatenated; empty children add nothing; a parent of one
    child is ``hexmd5(child)``, never the child itself; nothing at all is ``""``.
    """
    cat = "".join(sorted(children))
    return hexmd5(cat) if cat else ""


def md5_equal(a: str | None, b: str | None) -> bool:
    """Whether two MD5 strings name the same digest, compared as numbers.

    The server may store a digest without its leading zeros (CTP's
    ``BigInteger.toString(16)``) or in upper case; both still match the 32-digit form.
    Empty, blank or non-hex values never equal anything (an unknown hash proves nothing).
    """
    na, nb = _as_number(a), _as_number(b)
    return na is not None and na == nb


def is_stored_md5(text: str) -> bool:
    """Whether *text* is an MD5 as the server may store it: 1 to 32 hex digits, any case.

    A strict pattern: ``int(x, 16)`` alone would also take ``0x1f``, ``1_f`` and signs.
    """
    return _HEX.fullmatch(text) is not None


def _as_number(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    return int(text, 16) if is_stored_md5(text) else None
