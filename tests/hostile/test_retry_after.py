"""Retry-After is bounded and a one-shot sync never waits past its horizon (issue 10, item 3).

Through the real CLI: a proxy answers one series' ZIP with 429 and a hostile Retry-After;
the sync must end promptly, report that series as deferred (exit 0, not failed), keep its
next attempt time in the catalog, and a second sync must not hang either. Plus a
property test: any header value gives a bounded, non-negative delay or None.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from mirror.retry import retry_after_seconds
from mirror.simulator.state import PREFIXES
from mirror.simulator.testing import SimulatorHandle
from tests.e2e.harness import catalog_series
from tests.hostile.wire_server import no_traceback, proxy, write_config

CAP = 900.0


def throttle_one_series(victim: str, retry_after: str):
    async def rule(request: web.Request) -> web.StreamResponse | None:
        if request.query.get("SeriesInstanceUID") != victim:
            return None
        return web.Response(status=429, text="slow down",
                            headers={"Retry-After": retry_after})
    return rule


@pytest.mark.slow
@pytest.mark.parametrize("retry_after", ["999999", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_a_huge_retry_after_defers_the_series_and_the_sync_ends(
        tmp_path: Path, simulator: SimulatorHandle, retry_after: str) -> None:
    victim = sorted(simulator.ground_truth())[0]
    rules = {"getImage": throttle_one_series(victim, retry_after)}
    with proxy(simulator.url, rules) as front:
        mirror = write_config(tmp_path, base_url=front.url + PREFIXES["nbia-v4"],
                              api="nbia-v4", collections=simulator.collections())
        # defaults: source.max_retry_after = 15m, sync.max_wait = 5m
        started = datetime.now(UTC)
        proc = mirror.run("sync", "--json", timeout=60)
        assert no_traceback(proc.stderr), proc.stderr[-2000:]
        assert proc.returncode == 0, proc.stderr[-2000:]
        summary = _json(proc.stdout)
        assert summary["outcome"] == "deferred" and summary["failed"] == 0
        assert summary["deferred"] == 1
        assert [d["series_uid"] for d in summary["deferred_series"]] == [victim]
        assert summary["done"] == len(simulator.ground_truth()) - 1

        row = catalog_series(mirror.catalog_url)[victim]
        assert row.state.value == "queued"
        # clamped to source.max_retry_after (15 min), not 11 days or the year 9999
        assert started + timedelta(minutes=5) < row.next_attempt_at
        assert row.next_attempt_at <= datetime.now(UTC) + timedelta(seconds=CAP)

        again = mirror.run("sync", "--json", timeout=60)  # a new one-shot run: no hang
        assert again.returncode == 0 and _json(again.stdout)["deferred"] == 1
        assert catalog_series(mirror.catalog_url)[victim].next_attempt_at == row.next_attempt_at


@pytest.mark.slow
def test_an_unparseable_retry_after_is_ignored_not_a_crash(
        tmp_path: Path, simulator: SimulatorHandle) -> None:
    """1e14 once crashed timedelta (OverflowError); now the normal backoff applies."""
    victim = sorted(simulator.ground_truth())[0]
    rules = {"getImage": throttle_one_series(victim, "1e14")}
    with proxy(simulator.url, rules) as front:
        mirror = write_config(tmp_path, base_url=front.url + PREFIXES["nbia-v4"],
                              api="nbia-v4", collections=simulator.collections())
        proc = mirror.run("sync", "--json", timeout=60)
        assert no_traceback(proc.stderr), proc.stderr[-2000:]
        summary = _json(proc.stdout)
        # retried with the configured backoff until max_attempts, then failed for good
        assert proc.returncode == 1 and summary["failed_series"] == [victim]
        assert "HTTP 429" in summary["errors"][victim]
        assert len(front.requests("getImage")) >= 3


def _json(text: str) -> dict:
    import json

    return json.loads(text)


NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
http_dates = st.builds(
    lambda d, zone: d.strftime("%a, %d %b %Y %H:%M:%S ") + zone,
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
    st.sampled_from(["GMT", "UTC", "+0000", "-1200", "+1400", "EST", ""]))
numbers = st.one_of(st.integers(min_value=-10**30, max_value=10**30).map(str),
                    st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.floats().map(lambda f: f"{f:e}"))


@settings(max_examples=500, deadline=None)
@given(value=st.one_of(st.text(max_size=80), http_dates, numbers),
       now=st.datetimes(timezones=st.sampled_from([UTC, None])),
       cap=st.floats(min_value=0, max_value=1e6))
def test_any_retry_after_is_bounded_or_none(value: str, now: datetime, cap: float) -> None:
    delay = retry_after_seconds(value, now, cap=cap)
    assert delay is None or 0.0 <= delay <= cap


@given(seconds=st.integers(min_value=0, max_value=10**6))
def test_delta_seconds_are_taken_up_to_the_cap(seconds: int) -> None:
    assert retry_after_seconds(str(seconds), NOW, cap=CAP) == min(seconds, CAP)


@given(ahead=st.integers(min_value=0, max_value=10**9))
def test_http_dates_count_from_now_up_to_the_cap(ahead: int) -> None:
    when = NOW + timedelta(seconds=ahead)
    header = when.strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert retry_after_seconds(header, NOW, cap=CAP) == min(ahead, CAP)
