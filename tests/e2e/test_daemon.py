"""The daemon and download-only workers, as processes, against the simulator."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import anyio
import pytest

from mirror.catalog import Catalog
from mirror.domain import SeriesState
from mirror.simulator.testing import DatasetSpec, start_simulator
from tests.e2e.harness import (
    Mirror,
    archive_files,
    assert_archive_matches,
    expected_files,
    write_mirror,
)

pytestmark = pytest.mark.slow
DEADLINE = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check: Callable[[], Any], deadline: float = DEADLINE) -> Any:
    """Poll *check* until it returns something truthy; fail after *deadline* seconds."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def daemon_mirror(tmp: Path, sim: Any, catalog_url: str, *, port: int, extra: str = "",
                  workers: int = 4, lease: str = "30s") -> Mirror:
    return write_mirror(tmp, base_url=sim.base_url("nbia-v4"), api="nbia-v4",
                        collections=sim.collections(), catalog_url=catalog_url,
                        workers=workers, lease=lease, extra=f'poll_interval = "2s"\n{extra}\n'
                        f'[daemon]\nlisten = "127.0.0.1:{port}"\nshutdown_timeout = "5s"\n')


@contextmanager
def running(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def archive_converged(root: Path, truth: dict[str, Any]) -> bool:
    want = expected_files(truth)
    got = archive_files(root) if root.exists() else {}
    return all(got.get(p) == v for p, v in want.items())


def test_daemon_serves_health_and_metrics_and_follows_releases(
        tmp_path: Path, simulator: Any, catalog_url: str) -> None:
    port = free_port()
    mirror = daemon_mirror(tmp_path, simulator, catalog_url, port=port,
                           extra='reconcile_interval = "3s"\non_remote_delete = "delete"\n'
                                 'max_delete_fraction = 0.5')
    with running(mirror.popen("daemon")) as proc:
        _, body = wait_for("healthz 200", lambda: (
            r if (r := http_get(f"http://127.0.0.1:{port}/healthz"))[0] == 200 else None))
        assert json.loads(body)["status"] == "ok"
        wait_for("first mirror", lambda: archive_converged(mirror.root, simulator.ground_truth()))

        releases = [dict(new_patients=1, new_series=1, revised=1),
                    dict(new_studies=1, revised=1), dict(withdrawn=1, new_series=1)]
        for number, release in enumerate(releases):
            simulator.publish_release(date.today(), **release)
            wait_for(f"release {number} mirrored", lambda: archive_files(mirror.root)
                     == expected_files(simulator.ground_truth()))

        _, metrics = http_get(f"http://127.0.0.1:{port}/metrics")
        assert 'tcia_mirror_series{collection="' in metrics
        assert "tcia_mirror_bytes_committed_total" in metrics
        assert "tcia_mirror_last_successful_poll_timestamp_seconds" in metrics
        assert 'tcia_mirror_requests_total{endpoint="getImage",status="200"}' in metrics
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert_archive_matches(mirror.root, simulator.ground_truth())


def test_healthz_is_503_with_a_reason_when_polls_fail(tmp_path: Path, simulator: Any) -> None:
    port = free_port()
    simulator.add_fault("NewPatientsInCollection", "status", status=500)
    simulator.add_fault("getSeries", "status", status=500)
    mirror = daemon_mirror(tmp_path, simulator, f"sqlite+aiosqlite:///{tmp_path}/c.db",
                           port=port)
    with running(mirror.popen("daemon")) as proc:
        status, body = wait_for("healthz answers", lambda: (
            r if (r := http_get(f"http://127.0.0.1:{port}/healthz"))[0] else None))
        assert status == 503 and "no successful poll" in json.loads(body)["reason"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0


def test_sigterm_during_downloads_exits_zero_and_next_start_completes(
        tmp_path: Path, simulator: Any, catalog_url: str) -> None:
    port = free_port()
    simulator.add_fault("getImage", "slow", bytes_per_second=20_000)
    mirror = daemon_mirror(tmp_path, simulator, catalog_url, port=port)
    with running(mirror.popen("daemon")) as proc:
        wait_for("downloads in flight", lambda: simulator.stats()["requests"].get(
            "nbia-v4:getImage", 0) >= 2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    truth = simulator.ground_truth()
    want = expected_files(truth)
    for path, value in archive_files(mirror.root).items():
        assert want.get(path) == value, f"partial or wrong file at final path {path}"
    simulator.clear_faults()
    summary = mirror.sync()
    assert summary["outcome"] == "ok"
    assert_archive_matches(mirror.root, truth)


@pytest.mark.postgres
def test_daemon_and_three_workers_share_a_postgres_catalog(
        tmp_path: Path, postgres_url: str) -> None:
    spec = DatasetSpec(seed=5, patients=3, studies=1, series=4, instances=4,
                       instance_size=32768)
    with start_simulator(tmp_path / "sim", spec) as simulator:
        _three_workers(tmp_path, simulator, postgres_url)


def _three_workers(tmp_path: Path, simulator: Any, postgres_url: str) -> None:
    port = free_port()
    simulator.add_fault("getImage", "slow", bytes_per_second=100_000)
    mirror = daemon_mirror(tmp_path, simulator, postgres_url, port=port, workers=2,
                           lease="2s")
    procs: list[subprocess.Popen[str]] = []
    try:
        procs.append(mirror.popen("daemon", "--no-workers"))
        wait_for("schema and first poll", lambda: http_get(
            f"http://127.0.0.1:{port}/healthz")[0] == 200)
        procs += [mirror.popen("worker") for _ in range(3)]
        victim = procs[1]
        held = wait_for("victim holds a series", lambda: _held_by(postgres_url, victim.pid))
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        wait_for("all series done", lambda: _all_done(postgres_url), deadline=90)
        assert_archive_matches(mirror.root, simulator.ground_truth())
        for p in procs[2:] + procs[:1]:
            p.send_signal(signal.SIGTERM)
        assert [p.wait(timeout=30) for p in procs[2:] + procs[:1]] == [0, 0, 0]
        logs = "".join(p.communicate(timeout=30)[1] for p in procs)
    except AssertionError as exc:
        for p in procs:
            if p.poll() is None:
                p.kill()
        logs = "\n".join(p.communicate(timeout=30)[1][-3000:] for p in procs)
        raise AssertionError(f"{exc}\nprocess logs:\n{logs}") from exc
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate(timeout=30)
    done = Counter(e["series_uid"] for e in _events(logs) if e.get("status") == "done")
    assert done and max(done.values()) == 1, "a series was committed twice"
    assert held in done, "the killed worker's series was not finished elsewhere"


def _catalog_query(url: str, func: Callable[[Catalog], Any]) -> Any:
    async def go() -> Any:
        catalog = await Catalog.open(url, upgrade=False)
        try:
            return await func(catalog)
        finally:
            await catalog.close()
    return anyio.run(go)


def _held_by(url: str, pid: int) -> str | None:
    async def find(catalog: Catalog) -> str | None:
        async for row in catalog.iter_series(states=[SeriesState.FETCHING]):
            if row.lease_owner and f":{pid}:" in row.lease_owner:
                return row.series_uid
        return None
    return _catalog_query(url, find)


def _all_done(url: str) -> bool:
    async def check(catalog: Catalog) -> bool:
        counts = await catalog.counts_by_state()
        return bool(counts) and all(s is SeriesState.DONE for (_, s), n in counts.items() if n)
    return _catalog_query(url, check)


def _events(text: str) -> Iterator[dict[str, Any]]:
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except ValueError:
                continue

