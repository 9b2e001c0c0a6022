"""What a sync shows: progress bars on a terminal, one log line per series outcome otherwise."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from mirror import logs
from mirror.config import Settings
from mirror.planner import Plan


class LogReporter:
    """Plain log lines, one per series outcome (stable keys, JSON off a terminal)."""

    def __init__(self) -> None:
        self.log = logs.get()

    def __enter__(self) -> LogReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def callback(self, item: Any) -> Callable[[int], None] | None:
        return None

    def outcome(self, o: Any) -> None:
        fields = {"collection": o.collection, "series_uid": o.series_uid, "status": o.status,
                  "mode": o.mode, "bytes": o.bytes, "instances": o.instances,
                  "seconds": round(o.seconds, 3), "attempt": o.attempt}
        if o.error:
            self.log.warning("series", error=o.error, **fields)
        else:
            self.log.info("series", **fields)


class RichReporter(LogReporter):
    """Overall bytes and series bars plus one line per active download."""

    def __init__(self, total_series: int, total_bytes: int) -> None:
        super().__init__()
        from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                                   TimeRemainingColumn, TransferSpeedColumn)

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeRemainingColumn(), transient=False)
        self.bytes_task = self.progress.add_task("bytes", total=total_bytes or None)
        self.series_task = self.progress.add_task("series", total=total_series or None)
        self.active: dict[str, Any] = {}

    def __enter__(self) -> RichReporter:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def callback(self, item: Any) -> Callable[[int], None]:
        uid = item.series_uid
        if uid not in self.active:
            self.active[uid] = self.progress.add_task(
                f"  {item.collection} …{uid[-12:]}", total=item.file_size or None)

        def advance(nbytes: int) -> None:
            self.progress.advance(self.bytes_task, nbytes)
            self.progress.advance(self.active[uid], nbytes)

        return advance

    def outcome(self, o: Any) -> None:
        task = self.active.pop(o.series_uid, None)
        if task is not None:
            self.progress.remove_task(task)
        if o.status == "done":
            self.progress.advance(self.series_task, 1)
        if o.status != "done":
            self.progress.console.print(f"{o.series_uid}: {o.status} {o.error}")


def make_reporter(settings: Settings, plans: Mapping[str, Plan], *,
                  json_summary: bool) -> LogReporter:
    """Bars on a terminal (unless a JSON summary goes to stdout); log lines otherwise."""
    if sys.stderr.isatty() and sys.stdout.isatty() and not json_summary:
        series = sum(len(p.add) + len(p.refetch) + len(p.repair) for p in plans.values())
        return RichReporter(series, sum(p.bytes_to_fetch for p in plans.values()))
    return LogReporter()
