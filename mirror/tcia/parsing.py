"""Whole TCIA response bodies -> records, and the endpoints that answer a single value.

Empty bodies, ``[{}]``, a lone object and CSV are all normal; only a body that is not
data at all (bad JSON, an HTML page) is an error, raised as ProtocolError naming the
endpoint. Records become domain values in :mod:`mirror.tcia.rows`; their fields are read
by :mod:`mirror.tcia.fields` and :mod:`mirror.tcia.dates`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from mirror.domain import SeriesSize, Uid, printable
from mirror.errors import InvalidUid, PermanentApiError, ProtocolError
from mirror.merkle import is_stored_md5
from mirror.tcia.fields import to_int, value_list
from mirror.tcia.jsonstream import JsonArrayError, parse_array


def snippet(body: bytes | str, limit: int = 300) -> str:
    """A short, single-line excerpt of a server body for error messages."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = printable(" ".join(text.split()))  # a body may carry terminal escapes
    return text if len(text) <= limit else text[:limit] + "..."


def looks_like_html(body: bytes) -> bool:
    head = body.lstrip()[:64].lower()
    return head.startswith((b"<!doctype", b"<html", b"<head", b"<body", b"<p", b"<?xml"))


def decode_records(endpoint: str, status: int, content_type: str,
                   body: bytes) -> list[dict[str, Any]]:
    """A whole response body -> list of records; empty body -> []."""
    if not body.strip():
        return []
    where = f"{endpoint}: HTTP {status}"
    if looks_like_html(body):
        raise ProtocolError(f"{where}: expected JSON, got an HTML/XML page: {snippet(body)}",
                            endpoint=endpoint, status=status, body=snippet(body))
    if "csv" in content_type.lower():
        try:
            return _decode_csv(body)
        except csv.Error as exc:
            raise ProtocolError(f"{where}: malformed CSV body ({exc}): {snippet(body)}",
                                endpoint=endpoint, status=status,
                                body=snippet(body)) from exc
    try:
        records = parse_array(body)
    except JsonArrayError:
        records = _decode_other_json(body)
        if records is None:
            raise ProtocolError(f"{where}: malformed JSON body: {snippet(body)}",
                                endpoint=endpoint, status=status,
                                body=snippet(body)) from None
    if not all(isinstance(r, dict) for r in records):
        raise ProtocolError(f"{where}: expected a JSON array of objects: {snippet(body)}",
                            endpoint=endpoint, status=status, body=snippet(body))
    return records


def _decode_other_json(body: bytes) -> list[Any] | None:
    """A lone object is one record; an array of non-objects is rejected by the caller."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(value, dict):
        return [value]
    return value if isinstance(value, list) else None


def _decode_csv(body: bytes) -> list[dict[str, Any]]:
    text = body.decode("utf-8-sig", "replace")
    # newline="": the csv module reads line ends itself (a quoted field may hold them)
    return [dict(row) for row in csv.DictReader(io.StringIO(text, newline=""))]


def to_series_size(records: list[dict[str, Any]]) -> SeriesSize:
    """``[{"TotalSizeInBytes": n, "ObjectCount": m}]``; ``[{}]`` or empty -> unknown."""
    if not records:
        return SeriesSize(None, None)
    record = records[0]
    return SeriesSize(total_bytes=to_int(record.get("TotalSizeInBytes")),
                      object_count=to_int(record.get("ObjectCount")))


def md5_text(body: bytes) -> str | None:
    """A getMD5HashForImage answer as the server stores it, or None when empty or malformed.

    Stored values may lack leading zeros (CTP) and are kept as sent, since the server's
    MD5 hierarchy hashes them as stored; compare them with ``mirror.merkle.md5_equal``.
    """
    text = body.decode("ascii", "replace").strip()
    return text if is_stored_md5(text) else None


def sop_uids(records: Iterable[Mapping[str, Any]]) -> list[Uid]:
    """getSOPInstanceUIDs -> validated UIDs; one malformed UID refuses the whole answer
    (PermanentApiError: the series is then fetched as a ZIP, named by its DICOM headers)."""
    try:
        return [Uid(text) for text in value_list(records, "SOPInstanceUID")]
    except InvalidUid as exc:
        raise PermanentApiError(f"getSOPInstanceUIDs: {exc}",
                                endpoint="getSOPInstanceUIDs") from None


def md5_hierarchy_text(body: bytes) -> str:
    """A getMD5Hierarchy answer: ``""`` (nothing known) or the bare hash.

    The server renders ``%032x`` (32 lowercase hex digits); anything else that is not
    empty is refused, so an HTML error page or a JSON-quoted value never passes as a hash.
    """
    text = body.decode("ascii", "replace")
    if re.fullmatch(r"[0-9a-f]{1,32}", text) or text == "":
        return text
    raise ProtocolError(f"getMD5Hierarchy: not an MD5 hash: {snippet(body, 80)!r}",
                        endpoint="getMD5Hierarchy", body=snippet(body))
