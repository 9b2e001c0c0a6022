"""What a sync shows: bars on a terminal, log lines per series otherwise, and the end summary.

Every byte count is written by :func:`mirror.catalog.status.human_bytes` (IEC units), so
the bars, the dry run, ``status`` and the summary all speak the same units.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from mirror import logs
from mirror.catalog.status import human_bytes
from mirror.config.settings import Settings
from mirror.sync.planner import Plan

#: failed series listed by name in the end summary; the rest are counted
SUMMARY_FAILED_SHOWN = 10


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
    """An overall bytes bar, a series count, and one bar per active download.

    A series bar's total is its FileSize from the listing and it advances with the bytes
    received; the overall bar counts committed bytes plus what active downloads have
    received so far (each capped at its series' size: a ZIP's framing may add a little,
    and a failed download's bytes are taken back), against the plan's FileSize total.
    """

    def __init__(self, total_series: int, total_bytes: int) -> None:
        super().__init__()
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("{task.description:<30}"), BarColumn(), _BytesColumn(),
            _SpeedColumn(), TimeRemainingColumn(), transient=False)
        self.total_bytes, self.total_series = total_bytes, total_series
        self.done_bytes = self.done_series = 0
        self.bytes_task = self.progress.add_task("total", total=total_bytes or None)
        self.series_task = self.progress.add_task("series", total=total_series or None,
                                                  counts_series=True)
        self.active: dict[str, Any] = {}
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

    def callback(self, item: Any) -> Callable[[int], None]:
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

    def outcome(self, o: Any) -> None:
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


def _columns() -> tuple[type, type]:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class BytesColumn(ProgressColumn):
        """``1.2 MiB / 3.4 MiB`` for byte bars, ``3 / 8`` for the series count."""

        def render(self, task: Any) -> Text:
            done, total = int(task.completed), task.total
            if task.fields.get("counts_series"):
                return Text(f"{done} / {int(total) if total else '?'} series")
            return Text(f"{human_bytes(done)} / {human_bytes(int(total)) if total else '?'}")

    class SpeedColumn(ProgressColumn):
        """Bytes per second in the same IEC units (a series count has no speed)."""

        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            if task.fields.get("counts_series") or speed is None:
                return Text("")
            return Text(f"{human_bytes(int(speed))}/s")

    return BytesColumn, SpeedColumn


_BytesColumn, _SpeedColumn = _columns()


def make_reporter(settings: Settings, plans: Mapping[str, Plan], *,
                  json_summary: bool) -> LogReporter:
    """Bars on a terminal (unless a JSON summary goes to stdout); log lines otherwise."""
    if sys.stderr.isatty() and sys.stdout.isatty() and not json_summary:
        series = sum(len(p.add) + len(p.refetch) + len(p.repair) for p in plans.values())
        return RichReporter(series, sum(p.bytes_to_fetch for p in plans.values()))
    return LogReporter()


def summary_text(summary: Mapping[str, Any]) -> str:
    """The end of a sync for people: counts, bytes, time, rate, and why series failed."""
    seconds = float(summary.get("seconds") or 0.0)
    nbytes = int(summary.get("bytes") or 0)
    rate = f"{human_bytes(int(nbytes / seconds))}/s" if seconds > 0 else "-"
    verdict = {"ok": "complete", "deferred": "complete for now"}.get(
        str(summary.get("outcome")), "finished with failures")
    lines = [
        f"sync {verdict} in {_duration(seconds)}: {summary.get('done', 0)} series done, "
        f"{summary.get('failed', 0)} failed, {summary.get('deferred', 0)} deferred "
        f"({summary.get('retried', 0)} retries); {human_bytes(nbytes)} at {rate}",
    ]
    for item in (summary.get("deferred_series") or [])[:SUMMARY_FAILED_SHOWN]:
        lines.append(f"  deferred {item.get('series_uid')} until {item.get('next_attempt')}: "
                     f"{item.get('error') or 'retry later'}")
    for name, error in (summary.get("failed_collections") or {}).items():
        lines.append(f"  collection {name}: discovery failed: {error}")
    errors = summary.get("errors") or {}
    for uid, error in list(errors.items())[:SUMMARY_FAILED_SHOWN]:
        lines.append(f"  failed {uid}: {error or 'no error recorded'}")
    hidden = int(summary.get("failed", 0)) - min(len(errors), SUMMARY_FAILED_SHOWN)
    if hidden > 0:
        lines.append(f"  ... and {hidden} more: tcia-mirror status --failed")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"
