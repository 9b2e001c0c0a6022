"""What a sync shows while it runs: bars on a terminal, log lines per series otherwise.

Every byte count is written by :func:`mirror.catalog.status.human_bytes` (IEC units), so
the bars, the dry run, ``status`` and the summary all speak the same units. The end
summary is the CLI's (:mod:`mirror.run.output`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from mirror import logs
from mirror.catalog.status import human_bytes
from mirror.config.settings import Settings
from mirror.sync.outcome import Outcome
from mirror.sync.planner import Plan

if TYPE_CHECKING:
    from rich.progress import ProgressColumn, Task, TaskID
    from rich.text import Text


class Download(Protocol):
    """The claimed series a download reports progress for (a catalog queue item)."""

    @property
    def series_uid(self) -> str: ...
    @property
    def collection(self) -> str: ...
    @property
    def file_size(self) -> int | None: ...


class LogReporter:
    """Plain log lines, one per series outcome (stable keys, JSON off a terminal)."""

    def __init__(self) -> None:
        self.log = logs.get()

    def __enter__(self) -> LogReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def callback(self, item: Download) -> Callable[[int], None] | None:
        return None

    def outcome(self, o: Outcome) -> None:
        fields = {"collection": o.collection, "series_uid": o.series_uid, "status": o.status,
                  "mode": o.mode, "bytes": o.bytes, "instances": o.instances,
                  "seconds": round(o.seconds, 3), "attempt": o.attempt}
        if o.error:
            self.log.warning("series", error=o.error, **fields)
        else:
            self.log.info("series", **fields)


class RichReporter(LogReporter):
    """An overall bytes bar, a series count, and one bar per active download.

    A series bar's total is its FileSize from the listing and it advances with the bytes
    received; the overall bar counts committed bytes plus what active downloads have
    received so far (each capped at its series' size: a ZIP's framing may add a little,
    and a failed download's bytes are taken back), against the plan's FileSize total.
    """

    def __init__(self, total_series: int, total_bytes: int) -> None:
        super().__init__()
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        bytes_column, speed_column = _columns()
        self.progress = Progress(
            TextColumn("{task.description:<30}"), BarColumn(), bytes_column(),
            speed_column(), TimeRemainingColumn(), transient=False)
        self.total_bytes, self.total_series = total_bytes, total_series
        self.done_bytes = self.done_series = 0
        self.bytes_task = self.progress.add_task("total", total=total_bytes or None)
        self.series_task = self.progress.add_task("series", total=total_series or None,
                                                  counts_series=True)
        self.active: dict[str, TaskID] = {}
        self.received: dict[str, int] = {}
        self.sizes: dict[str, int | None] = {}
        self._refresh_totals()

    def __enter__(self) -> RichReporter:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def _in_flight_bytes(self) -> int:
        return sum(min(n, self.sizes[uid] or n) for uid, n in self.received.items())

    def _refresh_totals(self) -> None:
        self.progress.update(self.bytes_task,
                             completed=self.done_bytes + self._in_flight_bytes())
        self.progress.update(self.series_task, completed=self.done_series)

    def callback(self, item: Download) -> Callable[[int], None]:
        uid = item.series_uid
        if uid not in self.active:
            mode = "repair " if getattr(item, "repair", False) else ""
            self.active[uid] = self.progress.add_task(
                f"  {mode}{item.collection[:14]} …{uid[-10:]}", total=item.file_size or None)
            self.received[uid], self.sizes[uid] = 0, item.file_size
        task = self.active[uid]

        def advance(nbytes: int) -> None:
            self.received[uid] = self.received.get(uid, 0) + nbytes
            self.progress.update(task, advance=nbytes)
            self._refresh_totals()

        return advance

    def outcome(self, o: Outcome) -> None:
        task = self.active.pop(o.series_uid, None)
        self.received.pop(o.series_uid, None)
        self.sizes.pop(o.series_uid, None)
        if task is not None:
            self.progress.remove_task(task)
        if o.status == "done":
            self.done_series += 1
            self.done_bytes += o.bytes
        elif o.error:
            self.progress.console.print(f"{o.status}: {o.collection} {o.series_uid}: {o.error}",
                                        markup=False, highlight=False)
        self._refresh_totals()


def _columns() -> tuple[type[ProgressColumn], type[ProgressColumn]]:
    """rich is imported only when bars are shown (it costs a no-op sync's start-up)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class BytesColumn(ProgressColumn):
        """``1.2 MiB / 3.4 MiB`` for byte bars, ``3 / 8`` for the series count."""

        def render(self, task: Task) -> Text:
            done, total = int(task.completed), task.total
            if task.fields.get("counts_series"):
                return Text(f"{done} / {int(total) if total else '?'} series")
            return Text(f"{human_bytes(done)} / {human_bytes(int(total)) if total else '?'}")

    class SpeedColumn(ProgressColumn):
        """Bytes per second in the same IEC units (a series count has no speed)."""

        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            if task.fields.get("counts_series") or speed is None:
                return Text("")
            return Text(f"{human_bytes(int(speed))}/s")

    return BytesColumn, SpeedColumn


def make_reporter(settings: Settings, plans: Mapping[str, Plan], *,
                  json_summary: bool) -> LogReporter:
    """Bars on a terminal (unless a JSON summary goes to stdout); log lines otherwise."""
    if sys.stderr.isatty() and sys.stdout.isatty() and not json_summary:
        series = sum(len(p.add) + len(p.refetch) + len(p.repair) for p in plans.values())
        return RichReporter(series, sum(p.bytes_to_fetch for p in plans.values()))
    return LogReporter()
