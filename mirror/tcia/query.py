"""``tcia-mirror query ENDPOINT Key=Value... --format json|csv|table``: fetch and render records."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from mirror.config import SourceSettings
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
        return json.dumps(records, indent=2, ensure_ascii=False)
    if fmt == "csv":
        return render_csv(records)
    return render_table(records)


def columns(records: Iterable[dict[str, Any]]) -> list[str]:
    """Every key, in order of first appearance (TCIA omits null keys row by row)."""
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
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def render_csv(records: list[dict[str, Any]]) -> str:
    if not records:
        return ""
    out = io.StringIO()
    names = columns(records)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for record in records:
        writer.writerow([_cell(record.get(n)) for n in names])
    return out.getvalue()


def render_table(records: list[dict[str, Any]]) -> str:
    """A rich table rendered to plain text, wide enough that no cell wraps."""
    names = columns(records)
    if not records or not names:
        return "(no results)"
    rows = [[_cell(r.get(n)) for n in names] for r in records]
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
