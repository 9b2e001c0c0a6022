"""Byte-exact output formats of NBIA: Jettison 1.1 JSON, CSV (plain and quoted), XML, HTML.

A result is a :class:`Table`: the endpoint's column list plus rows of values, where
``None`` is SQL NULL (omitted from JSON and XML, empty in CSV, ``&nbsp;`` in HTML).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class Stamp(str):
    """A date/time value: a string on the wire, ``java.sql.Timestamp`` in XML."""

    __slots__ = ()


class Long(int):
    """A 64-bit count (sizes): ``java.lang.Long`` in XML."""

    __slots__ = ()


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


@dataclass(frozen=True)
class Body:
    data: bytes
    content_type: str | None
    headers: tuple[tuple[str, str], ...] = ()


_ESCAPES = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\t": "\\t", "\n": "\\n",
            "\f": "\\f", "\r": "\\r"}


def json_string(s: str) -> str:
    """Jettison's ``quote()``: escapes every ``/``; other controls as ``\\u00XX``."""
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def json_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        text = repr(v)
        return text.rstrip("0").rstrip(".") if "." in text and "e" not in text else text
    return json_string(str(v))


def to_json(table: Table) -> bytes:
    objects = []
    for row in table.rows:
        pairs = [f"{json_string(k)}:{json_value(v)}"
                 for k, v in zip(table.columns, row, strict=True) if v is not None]
        objects.append("{" + ",".join(pairs) + "}")
    return ("[" + ",".join(objects) + "]").encode()


def to_csv(table: Table) -> bytes:
    if len(table.columns) == 1:
        # FormatOutput.toCsv: raw values, no quoting; NULL is an empty line.
        lines = [table.columns[0]] + ["" if r[0] is None else str(r[0]) for r in table.rows]
        return ("\n".join(lines) + "\n").encode()
    lines = [",".join(_quoted(c) for c in table.columns)]
    lines += [",".join(_quoted(_csv_text(v)) for v in row) for row in table.rows]
    return ("\n".join(lines) + "\n").encode()


def _csv_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _quoted(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def esapi_html(s: str) -> str:
    """OWASP ESAPI ``encodeForHTML``: only alphanumerics and ``,.-_ `` pass through."""
    named = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}
    return "".join(ch if (ch.isalnum() and ch.isascii()) or ch in ",.-_ "
                   else named.get(ch, f"&#x{ord(ch):x};") for ch in s)


def java_type(v: Any) -> str:
    if isinstance(v, bool):
        return "java.lang.Boolean"
    if isinstance(v, Long):
        return "java.lang.Long"
    if isinstance(v, int):
        return "java.lang.Integer"
    if isinstance(v, float):
        return "java.lang.Double"
    if isinstance(v, Stamp):
        return "java.sql.Timestamp"
    return "java.lang.String"


def to_xml(table: Table) -> bytes:
    out = ['<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Results>']
    for row in table.rows:
        cols = "".join(f"<{c} type='{java_type(v)}'>{esapi_html(_csv_text(v))}</{c}>"
                       for c, v in zip(table.columns, row, strict=True) if v is not None)
        out.append(f"<Row>{cols}</Row>")
    out.append("</Results>")
    return "".join(out).encode()


def to_html(table: Table) -> bytes:
    head = "".join(f"<TH>{c}</TH>" for c in table.columns)
    rows = "".join(
        "<TR>" + "".join("<TD>&nbsp;</TD>" if v is None else f"<TD>{esapi_html(_csv_text(v))}</TD>"
                         for v in row) + "</TR>"
        for row in table.rows)
    return f"<P ALIGN='center'><TABLE BORDER=1><TR>{head}</TR>{rows}</TABLE></P>".encode()


_CSV_DOWNLOAD = (("Content-Disposition", 'attachment; filename="SeriesMetaData.csv"'),)


def render(table: Table, fmt: str | None) -> Body | None:
    """The body for *fmt* (case-insensitive); ``None`` if the format is unknown."""
    kind = (fmt or "json").lower()
    if kind == "json":
        return Body(to_json(table), "application/json")
    if kind == "csv" or kind == "csvquoted":
        return Body(to_csv(table), "text/csv")
    if kind == "csv-download":
        ctype = "text/csv" if len(table.columns) > 1 else "application/force-download"
        return Body(to_csv(table), ctype, _CSV_DOWNLOAD)
    if kind == "xml":
        return Body(to_xml(table), "application/xml")
    if kind == "html":
        return Body(to_html(table), "text/html")
    return None
