"""``tcia-mirror status``: per-collection counts, failed series and throughput from the catalog.

Below the table, a line per collection whose series wait for disk space (``storage``,
``storage_waiting`` and ``storage_error`` in JSON).

The command reads through :mod:`mirror.catalog.statusdb` (stored SQL on sqlite3 or
asyncpg) rather than a :class:`~mirror.catalog.Catalog` or any SQLAlchemy engine: a
status process then costs little more than Python's own start-up. The daemon's status
page calls :func:`overview` with its open Catalog (the ``read_*`` statements of
:mod:`mirror.catalog.reports`); a test keeps both answers equal.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from mirror.catalog import statusdb

#: Table columns: (heading, key in a status row).
_COLUMNS = (
    ("collection", "collection"), ("series", "series_total"), ("done", "done"),
    ("queued", "queued"), ("fetching", "fetching"), ("failed", "failed"),
    ("retired", "retired"), ("on disk", "bytes_on_disk"), ("instances", "instances"),
    ("last poll", "last_poll"), ("watermark", "watermark"),
    ("last full hash check", "last_hash_check"),
)
_TEXT_KEYS = {"collection", "last_poll", "watermark", "last_hash_check"}


def read_collections(url: str) -> list[dict[str, Any]]:
    """One JSON-ready dict per collection; never migrates (NotInitialised instead).

    ``series_total`` counts the series upstream still publishes (retired ones are
    counted apart); bytes and instances count every file recorded on disk.
    """
    rows: list[dict[str, Any]] = statusdb.read(url, "collections")
    return rows


def read_failed(url: str, limit: int = 1000) -> list[dict[str, Any]]:
    """``status --failed``'s rows: what :func:`overview` lists under ``failed``."""
    rows: list[dict[str, Any]] = statusdb.read(url, "failed", failed_limit=limit)
    return rows


def render(rows: Sequence[dict[str, Any]], *, as_json: bool) -> str:
    """The status rows as indented JSON, or as a plain text table."""
    if as_json:
        return json.dumps(list(rows), indent=2)
    if not rows:
        return "the catalog has no collections yet; run `tcia-mirror sync`"
    cells = [[_cell(key, row) for _, key in _COLUMNS] for row in rows]
    lines = plain_table(cells)
    if lines is None:
        lines = rich_table(cells)
    return "\n".join(lines + _storage_lines(rows))


#: The console width the table is laid out for.
TABLE_WIDTH = 160
_SIMPLE = frozenset(chr(c) for c in range(0x20, 0x7F)) - {"["}


def plain_table(cells: Sequence[Sequence[str]]) -> list[str] | None:
    """The lines :func:`rich_table` prints, laid out without rich (a third of the command's
    start-up), for the usual table: printable ASCII with no markup or emoji code that rich
    would interpret, narrower than the console. None for anything else."""
    texts = [[heading for heading, _ in _COLUMNS], *cells]
    if any(not _SIMPLE.issuperset(text) or text.count(":") > 1
           for line in texts for text in line):
        return None
    widths = [max(len(line[i]) for line in texts) for i in range(len(_COLUMNS))]
    if sum(widths) + 2 * (len(widths) - 1) > TABLE_WIDTH:
        return None
    right = [key not in _TEXT_KEYS for _, key in _COLUMNS]
    lines = ["  ".join(text.rjust(width) if r else text.ljust(width)
                       for text, width, r in zip(line, widths, right, strict=True)).rstrip()
             for line in texts]
    while not lines[-1]:  # as rich_table strips its output's end
        lines.pop()
    return lines


def rich_table(cells: Sequence[Sequence[str]]) -> list[str]:
    """The table as rich lays it out (wrapping long cells to the console width)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for heading, key in _COLUMNS:
        table.add_column(heading, justify="left" if key in _TEXT_KEYS else "right")
    for line in cells:
        table.add_row(*line)
    out = io.StringIO()
    Console(file=out, width=TABLE_WIDTH, color_system=None, force_terminal=False).print(table)
    return [line.rstrip() for line in out.getvalue().rstrip().splitlines()]


def _storage_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """``storage: full`` lines: a full disk is retried, but only an operator can fix it."""
    return [f"storage: full ({row['collection']}: {row['storage_waiting']} series waiting "
            f"for space; last error: {row['storage_error']})"
            for row in rows if row.get("storage") == "full"]


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


# --- one overview for `status --failed` and the daemon's status page (appended) ---

#: hours of throughput the status page charts
THROUGHPUT_HOURS = 24


async def overview(catalog: Any, *, now: datetime | None = None,
                   failed_limit: int = 1000) -> dict[str, Any]:
    """Everything ``status`` knows, JSON-ready: collections, failed series, throughput.

    ``collections`` is exactly what ``status --json`` prints and ``failed`` what
    ``status --failed --json`` prints; the status page renders all three.
    """
    now = now or datetime.now(UTC)
    since = _since(now)
    return _overview(now, since, await collection_rows(catalog),
                     await catalog.failed_series(limit=failed_limit),
                     await catalog.committed_per_hour(since))


def _since(now: datetime) -> datetime:
    """The first hour of the throughput chart."""
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(
        hours=THROUGHPUT_HOURS - 1)


def _overview(now: datetime, since: datetime, collections: list[dict[str, Any]],
              failed: list[dict[str, Any]], buckets: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "generated_at": now.isoformat(),
        "collections": collections,
        "failed": failed,
        "throughput": {"since": since.isoformat(), "hours": THROUGHPUT_HOURS,
                       "buckets": buckets},
    }


def render_failed(rows: Sequence[dict[str, Any]], *, as_json: bool) -> str:
    """``status --failed``: one line per failed series with its last error, or JSON."""
    if as_json:
        return json.dumps(list(rows), indent=2)
    if not rows:
        return "no failed series"
    lines = [f"{len(rows)} failed series:"]
    for row in rows:
        lines.append(f"{row['collection']}  {row['series_uid']}  (patient {row['patient_id']}, "
                     f"{row['attempts']} attempts): {row['last_error'] or 'no error recorded'}")
    return "\n".join(lines)


async def collection_rows(catalog: Any) -> list[dict[str, Any]]:
    """``status --json``'s rows: the catalog's per-collection status plus the last poll's error."""
    return _with_poll_errors(await catalog.collection_status(), await catalog.poll_errors())


def _with_poll_errors(rows: list[dict[str, Any]], errors: dict[str, str],
                      ) -> list[dict[str, Any]]:
    for row in rows:
        row.setdefault("last_poll_error",
                       errors.get(row["collection"]) if row.get("last_poll_ok") is False else None)
    return rows


def hash_check_cell(row: dict[str, Any]) -> str:
    """When the last full MD5-hierarchy pass ended and how many changed series it found."""
    value = row.get("last_hash_check")
    if value is None:
        return "never"
    changed = row.get("last_hash_check_changed") or 0
    return f"{value[:16].replace('T', ' ')} UTC, {changed} changed"
