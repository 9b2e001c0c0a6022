"""``tcia-mirror status``: per-collection counts from the catalog, as a table or JSON."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from mirror.catalog.catalog import Catalog

#: Table columns: (heading, key in a status row).
_COLUMNS = (
    ("collection", "collection"), ("series", "series_total"), ("done", "done"),
    ("queued", "queued"), ("fetching", "fetching"), ("failed", "failed"),
    ("retired", "retired"), ("on disk", "bytes_on_disk"), ("instances", "instances"),
    ("last poll", "last_poll"), ("watermark", "watermark"),
    ("last full hash check", "last_hash_check"),
)
_TEXT_KEYS = {"collection", "last_poll", "watermark", "last_hash_check"}


async def collect(url: str) -> list[dict[str, Any]]:
    """One JSON-ready dict per collection; never migrates (NotInitialised instead).

    ``series_total`` counts the series upstream still publishes (retired ones are
    counted apart); bytes and instances count every file recorded on disk.
    """
    catalog = await Catalog.open(url, upgrade=False)
    try:
        return await catalog.collection_status()
    finally:
        await catalog.close()


def render(rows: Sequence[dict[str, Any]], *, as_json: bool) -> str:
    """The status rows as indented JSON, or as a plain text table."""
    if as_json:
        return json.dumps(list(rows), indent=2)
    if not rows:
        return "the catalog has no collections yet; run `tcia-mirror sync`"
    table = Table(box=None, header_style="bold", pad_edge=False)
    for heading, key in _COLUMNS:
        table.add_column(heading, justify="left" if key in _TEXT_KEYS else "right")
    for row in rows:
        table.add_row(*(_cell(key, row) for _, key in _COLUMNS))
    out = io.StringIO()
    Console(file=out, width=160, color_system=None, force_terminal=False).print(table)
    return "\n".join(line.rstrip() for line in out.getvalue().rstrip().splitlines())


def _cell(key: str, row: dict[str, Any]) -> str:
    value = row.get(key)
    if key == "bytes_on_disk":
        return human_bytes(int(value or 0))
    if key == "last_poll":
        if value is None:
            return "never"
        return f"{value[:16].replace('T', ' ')} UTC{'' if row['last_poll_ok'] else ' (failed)'}"
    if key == "last_hash_check":
        return hash_check_cell(row)
    return "-" if value is None else str(value)


def human_bytes(n: int) -> str:
    """1536 -> '1.5 KiB'."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    size, index = float(n), 0
    while size >= 1024 and index < len(units) - 1:
        size /= 1024
        index += 1
    return f"{n} B" if index == 0 else f"{size:.1f} {units[index]}"


def hash_check_cell(row: dict[str, Any]) -> str:
    """When the last full MD5-hierarchy pass ended and how many changed series it found."""
    value = row.get("last_hash_check")
    if value is None:
        return "never"
    changed = row.get("last_hash_check_changed") or 0
    return f"{value[:16].replace('T', ' ')} UTC, {changed} changed"
