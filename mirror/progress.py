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
    """Overall bytes and series bars plus one line per active download.

    The overall bar counts committed DICOM bytes against the plan's FileSize total (a
    ZIP on the wire is about half that size, so wire bytes would never reach the
    total); each active download's line shows wire bytes and speed as they arrive.
    """

    def __init__(self, total_series: int, total_bytes: int) -> None:
        super().__init__()
        from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn

        self.progress = Progress(
            TextColumn("{task.description:<28}"), BarColumn(),
            TextColumn("{task.fields[detail]:>22}"), _bytes_speed(TransferSpeedColumn()),
            transient=False)
        self.total_bytes, self.total_series = total_bytes, total_series
        self.done_bytes = self.done_series = 0
        self.bytes_task = self.progress.add_task("bytes", total=total_bytes or None,
                                                 detail="")
        self.series_task = self.progress.add_task("series", total=total_series or None,
                                                  detail="", counts_series=True)
        self.active: dict[str, Any] = {}
        self._refresh_totals()

    def __enter__(self) -> RichReporter:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def _refresh_totals(self) -> None:
        self.progress.update(self.bytes_task, completed=self.done_bytes,
                             detail=f"{_mb(self.done_bytes)}/{_mb(self.total_bytes)}")
        self.progress.update(self.series_task, completed=self.done_series,
                             detail=f"{self.done_series}/{self.total_series} series")

    def callback(self, item: Any) -> Callable[[int], None]:
        uid = item.series_uid
        if uid not in self.active:
            self.active[uid] = self.progress.add_task(
                f"  {item.collection} …{uid[-12:]}", total=None, detail="")
        task, seen = self.active[uid], [0]

        def advance(nbytes: int) -> None:
            seen[0] += nbytes
            self.progress.update(task, advance=nbytes, detail=f"{_mb(seen[0])} received")

        return advance

    def outcome(self, o: Any) -> None:
        task = self.active.pop(o.series_uid, None)
        if task is not None:
            self.progress.remove_task(task)
        if o.status == "done":
            self.done_series += 1
            self.done_bytes += o.bytes
            self._refresh_totals()
        else:
            self.progress.console.print(f"{o.series_uid}: {o.status} {o.error}")


def _bytes_speed(inner: Any) -> Any:
    """Transfer speed for byte tasks only (a series count has no MB/s)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class BytesSpeed(ProgressColumn):
        def render(self, task: Any) -> Any:
            return Text("") if task.fields.get("counts_series") else inner.render(task)

    return BytesSpeed()


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def make_reporter(settings: Settings, plans: Mapping[str, Plan], *,
                  json_summary: bool) -> LogReporter:
    """Bars on a terminal (unless a JSON summary goes to stdout); log lines otherwise."""
    if sys.stderr.isatty() and sys.stdout.isatty() and not json_summary:
        series = sum(len(p.add) + len(p.refetch) + len(p.repair) for p in plans.values())
        return RichReporter(series, sum(p.bytes_to_fetch for p in plans.values()))
    return LogReporter()
