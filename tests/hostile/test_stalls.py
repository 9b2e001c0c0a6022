"""Stalls and endless listings end cleanly (issue 10, item 4), through the real CLI.

A proxy in front of the simulator trickles a ZIP or a listing a byte at a time (no read
timeout ever fires), or sends a valid listing that never ends. The bounds are configured
small (stall_timeout = 1 s, max_listing_bytes = 200 kB, listing_timeout = 2 s) so each
test takes seconds; nothing in the test sleeps.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from mirror.simulator.state import PREFIXES
from mirror.simulator.testing import DatasetSpec, SimulatorHandle, start_simulator
from tests.e2e.harness import Mirror, assert_archive_matches
from tests.hostile.wire_server import no_traceback, proxy, trickle, write_config

pytestmark = pytest.mark.slow
BOUNDS = 'stall_timeout = "1s"\nstall_min_rate = 1024\n'


@pytest.fixture
def two_collections(sim_data_dir: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(sim_data_dir, DatasetSpec(collections=2)) as sim:
        yield sim


def _mirror(tmp: Path, front_url: str, sim: SimulatorHandle, extra: str = "") -> Mirror:
    return write_config(tmp, base_url=front_url + PREFIXES["nbia-v4"], api="nbia-v4",
                        collections=sim.collections(), source=BOUNDS + extra)


def test_a_trickled_zip_stalls_and_is_retried_to_a_complete_archive(
        tmp_path: Path, simulator: SimulatorHandle) -> None:
    victim = sorted(simulator.ground_truth())[0]
    trickled: list[str] = []

    async def once(request: web.Request) -> web.StreamResponse | None:
        if request.query.get("SeriesInstanceUID") != victim or trickled:
            return None
        trickled.append(victim)
        return await trickle(request, b"PK\x03\x04" + b"\0" * 20_000)

    with proxy(simulator.url, {"getImage": once}) as front:
        mirror = _mirror(tmp_path, front.url, simulator)
        proc = mirror.run("sync", "--json", timeout=60)
        assert proc.returncode == 0 and no_traceback(proc.stderr), proc.stderr[-2000:]
        assert "transfer stalled" in proc.stderr
        victim_requests = [s for s in front.requests("getImage")
                           if s.query.get("SeriesInstanceUID") == victim]
        assert len(victim_requests) == 2  # the stalled one, then the retry in place
    assert_archive_matches(mirror.root, simulator.ground_truth())


def listing_rule(victim: str, answer):
    async def rule(request: web.Request) -> web.StreamResponse | None:
        if request.query.get("Collection") != victim:
            return None
        return await answer(request)
    return rule


async def endless(request: web.Request, *, pause: float = 0.0) -> web.StreamResponse:
    """A valid JSON array that never ends (rows without UIDs: nothing gets queued)."""
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    row = b'{"Filler": "' + b"x" * 1000 + b'"},'
    try:
        await resp.write(b"[")
        for _ in range(200_000):  # 200 MB at most, should a client never stop reading
            await resp.write(row * 10)
            await asyncio.sleep(pause)
    except (ConnectionError, asyncio.CancelledError):
        pass
    return resp


@pytest.mark.parametrize(("answer", "bound", "extra"), [
    (lambda r: trickle(r, b'[{"SeriesInstanceUID": "1.2.3", "Collection": "' + b"x" * 5000),
     "transfer stalled", ""),
    (endless, "source.max_listing_bytes", "max_listing_bytes = 200000"),
    (lambda r: endless(r, pause=0.2), "source.listing_timeout", 'listing_timeout = "2s"'),
], ids=["trickled", "endless", "too-slow-in-total"])
def test_a_bad_listing_fails_its_collection_and_the_others_go_on(
        tmp_path: Path, two_collections: SimulatorHandle, answer, bound: str,
        extra: str) -> None:
    sim = two_collections
    bad, good = sim.collections()
    with proxy(sim.url, {"getSeries": listing_rule(bad, answer)}) as front:
        mirror = _mirror(tmp_path, front.url, sim, extra)
        proc = mirror.run("sync", "--json", timeout=60)
    assert proc.returncode == 1 and no_traceback(proc.stderr), proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert list(summary["failed_collections"]) == [bad]
    assert bound in summary["failed_collections"][bad]
    assert summary["failed"] == 0 and summary["done"] == len(sim.ground_truth(good))
    assert_archive_matches(mirror.root, sim.ground_truth(good))
