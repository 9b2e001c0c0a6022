"""A full disk is transient, visible, and over once space is freed (issue 10, item 7).

The archive root is a real, tiny tmpfs filled to the last byte with a ballast file, so
every write of the daemon fails with a genuine ENOSPC from the kernel (no fault hook in
the program). /healthz and ``status`` must say ``storage: full`` with the last error;
after the ballast is deleted the daemon must finish the archive by itself.
Mounting needs root (CAP_SYS_ADMIN), which the CI and the container suite run with;
elsewhere the test skips and says why.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mirror.simulator.testing import SimulatorHandle
from tests.e2e.harness import archive_files, expected_files
from tests.e2e.test_daemon import http_get, running, wait_for
from tests.hostile.wire_server import free_port, no_traceback, write_config

pytestmark = pytest.mark.slow


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, unmounted at the end."""
    mount = tmp_path / "archive"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tcia-test", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write a ballast file until the kernel says ENOSPC."""
    ballast = disk / "ballast"
    with ballast.open("wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == 28, exc
    return ballast


def health(port: int) -> tuple[int, dict]:
    status, body = http_get(f"http://127.0.0.1:{port}/healthz")
    return status, json.loads(body) if body else {}


def test_daemon_reports_a_full_disk_and_finishes_once_space_is_freed(
        tmp_path: Path, tiny_disk: Path, simulator: SimulatorHandle) -> None:
    port = free_port()
    (tiny_disk / ".staging").mkdir()
    ballast = fill(tiny_disk)
    mirror = write_config(tmp_path, base_url=simulator.base_url("nbia-v4"), api="nbia-v4",
                          collections=simulator.collections(), root=tiny_disk,
                          sync='poll_interval = "2s"',
                          tail=f'[daemon]\nlisten = "127.0.0.1:{port}"\n'
                               'shutdown_timeout = "5s"\n')
    with running(mirror.popen("daemon")) as proc:
        status, body = wait_for("healthz says storage full", lambda: (
            r if (r := health(port))[1].get("storage") == "full" else None), deadline=30)
        assert status == 503 and "No space left on device" in body["storage_error"]

        shown = mirror.run("status", "--json")
        rows = json.loads(shown.stdout)
        assert any(r["storage"] == "full" and r["storage_waiting"] >= 1 for r in rows), rows
        text = mirror.run("status").stdout
        assert "storage: full" in text and "No space left on device" in text

        ballast.unlink()  # an operator frees space: nothing else is done
        want = expected_files(simulator.ground_truth())
        wait_for("archive complete", lambda: archive_files(tiny_disk) == want, deadline=60)
        status, body = wait_for("healthz ok", lambda: (
            r if (r := health(port))[0] == 200 else None), deadline=30)
        assert body["storage"] == "ok"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert no_traceback(proc.stderr.read())
    rows = json.loads(mirror.run("status", "--json").stdout)
    assert all(r["storage"] == "ok" and r["failed"] == 0 for r in rows), rows
