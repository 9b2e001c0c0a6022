"""``tcia-mirror query ENDPOINT Key=Value... --format json|csv|table``: fetch and render records.

Every value is server text: control characters (ESC sequences, C1 controls, bidi
overrides) are escaped in all three formats, so nothing a server sends drives the terminal.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from mirror.config.settings import SourceSettings
from mirror.domain import printable
from mirror.errors import UsageError
from mirror.tcia.client import TciaClient

FORMATS = ("json", "csv", "table")


async def run_query(source: SourceSettings, endpoint: str, params: dict[str, str],
                    fmt: str) -> str:
    """Call *endpoint* through the configured source; return the text to print."""
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    async with TciaClient(source) as client:
        records = await client.query(endpoint, params)
    return render(records, fmt)


def render(records: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        # json escapes C0 controls itself, not DEL, C1 or bidi overrides; printable's
        # \xNN would not be JSON, so those few are written as \uNNNN escapes instead.
        return _json_escape(json.dumps(records, indent=2, ensure_ascii=False))
    if fmt == "csv":
        return render_csv(records)
    return render_table(records)


def _json_escape(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c in "\n " or c.isprintable() else
                   "".join(f"\\u{u:04x}" for u in _utf16(c)) for c in text)


def _utf16(c: str) -> list[int]:
    data = c.encode("utf-16-be", "surrogatepass")
    return [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]


def columns(records: Iterable[dict[str, Any]]) -> list[str]:
    """Every key, in order of first appearance (TCIA omits null keys row by row)."""
    return [printable(name) for name in _keys(records)]


def _keys(records: Iterable[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for record in records:
        seen.update(dict.fromkeys(record))
    return list(seen)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return printable(json.dumps(value, ensure_ascii=False))
    return printable(str(value))


def render_csv(records: list[dict[str, Any]]) -> str:
    if not records:
        return ""
    out = io.StringIO()
    keys = _keys(records)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([printable(k) for k in keys])
    for record in records:
        writer.writerow([_cell(record.get(k)) for k in keys])
    return out.getvalue()


def render_table(records: list[dict[str, Any]]) -> str:
    """A rich table rendered to plain text, wide enough that no cell wraps."""
    keys = _keys(records)
    names = [printable(k) for k in keys]
    if not records or not names:
        return "(no results)"
    rows = [[_cell(r.get(k)) for k in keys] for r in records]
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name in names:
        table.add_column(name, no_wrap=True, overflow="ignore")
    for row in rows:
        table.add_row(*row)
    widths = [max(len(n), *(len(r[i]) for r in rows)) for i, n in enumerate(names)]
    console = Console(file=io.StringIO(), width=sum(widths) + 3 * len(names) + 4,
                      color_system=None, force_terminal=False, legacy_windows=False)
    console.print(table)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines()) + "\n"
