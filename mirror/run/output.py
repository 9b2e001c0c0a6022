"""What the CLI prints when a command ends: the sync summary, the dry-run plan, the verify report.

The run modes return values (:class:`~mirror.run.oneshot.SyncResult`,
:class:`~mirror.run.oneshot.PlanReport`, :class:`~mirror.run.verify.VerifyReport`);
turning them into text, JSON and the closing log event happens here, for the CLI only.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from mirror import logs
from mirror.catalog.status import human_bytes
from mirror.domain import JsonObject

if TYPE_CHECKING:
    from mirror.run.oneshot import PlanReport, SyncResult
    from mirror.run.verify import VerifyReport

#: failed series listed by name in the end summary; the rest are counted
SUMMARY_FAILED_SHOWN = 10


def show_sync(result: SyncResult, *, as_json: bool) -> None:
    """Print what ``sync`` did (a dry run's plan: :func:`show_plan`)."""
    summary = result.summary
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    if not sys.stderr.isatty():  # log collectors still get the event, as JSON
        logs.get().info("sync finished", **{k: v for k, v in summary.items()
                                            if k not in ("plan", "errors", "deferred_series")})
    print(summary_text(summary))


def show_plan(report: PlanReport, *, as_json: bool) -> None:
    """``sync --dry-run``: per collection (and manifest), what a sync would do."""
    if as_json:
        print(json.dumps({"dry_run": True, "plan": report.plan,
                               "failed_collections": report.failed}, indent=2))
        return
    for name, plan in report.plan.items():
        print(f"{name}: add {plan['add']}, re-fetch {plan['refetch']}, repair "
                   f"{plan['repair']}, retire {plan['retire']}, unchanged {plan['unchanged']}, "
                   f"{human_bytes(plan['bytes'])} to fetch"
                   + (f", {plan['retire_held_back']} retirements held back (above "
                      f"max_delete_fraction)" if plan["retire_held_back"] else "")
                   + (f", {plan['out_of_scope']} out of scope (not fetched; "
                      f"{plan['out_of_scope_kept']} already on disk kept)"
                      if plan["out_of_scope"] else ""))
    for name, error in report.failed.items():
        print(f"{name}: discovery failed: {error}")


def show_verify(report: VerifyReport, *, as_json: bool) -> None:
    """``verify``: every problem found, then one line of totals."""
    if as_json:
        print(json.dumps({"checked": report.checked, "damaged": report.damaged,
                               "requeued": report.repair}, indent=2))
        return
    for uid, problems in report.damaged.items():
        for p in problems:
            print(f"{uid}: {p['kind']} {p['path']} {p['detail']}")
    verdict = "re-queued for repair" if report.repair and report.damaged else "found"
    print(f"checked {report.checked} series; {len(report.damaged)} damaged {verdict}")


def summary_text(summary: JsonObject) -> str:
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
