"""What a person sees: the end summary, `status --failed`, and the progress bars on a terminal."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest

from mirror.catalog.status import human_bytes
from tests.e2e.harness import Mirror, clean_env, write_mirror

pytestmark = pytest.mark.slow
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def mirror_for(tmp: Path, sim: Any, *, workers: int = 4) -> Mirror:
    return write_mirror(tmp, base_url=sim.base_url("nbia-v4"), api="nbia-v4",
                        collections=sim.collections(), workers=workers,
                        catalog_url=f"sqlite+aiosqlite:///{tmp / 'catalog.db'}")


def test_summary_and_status_failed_name_the_failed_series_and_why(
        tmp_path: Path, simulator: Any) -> None:
    truth = simulator.ground_truth()
    victim = sorted(truth)[0]
    simulator.add_fault("getImage", "status", status=400, series=victim,
                        body="Series not in public domain")
    mirror = mirror_for(tmp_path, simulator)
    proc = mirror.run("sync")
    assert proc.returncode == 1, proc.stderr
    done_bytes = sum(s.file_size for uid, s in truth.items() if uid != victim)
    first, *rest = proc.stdout.strip().splitlines()
    assert re.fullmatch(
        rf"sync finished with failures in \d+\.\d s: {len(truth) - 1} series done, 1 failed, "
        rf"0 deferred \(\d+ retries\); {re.escape(human_bytes(done_bytes))} at \S+ \S+/s", first)
    assert len(rest) == 1 and rest[0].startswith(f"  failed {victim}: ")
    assert "not in public domain" in rest[0]

    text = mirror.run("status", "--failed", check=True).stdout
    assert text.splitlines()[0] == "1 failed series:"
    line = text.splitlines()[1]
    assert line.startswith(f"{truth[victim].collection}  {victim}  (patient "
                           f"{truth[victim].patient_id}, ") and "not in public domain" in line
    rows = json.loads(mirror.run("status", "--failed", "--json", check=True).stdout)
    assert [(r["series_uid"], r["collection"]) for r in rows] == [
        (victim, truth[victim].collection)]
    assert "not in public domain" in rows[0]["last_error"]

    simulator.clear_faults()
    proc = mirror.run("sync")
    assert proc.returncode == 0
    assert re.match(r"sync complete in \d+\.\d s: 1 series done, 0 failed", proc.stdout)
    assert mirror.run("status", "--failed", check=True).stdout.strip() == "no failed series"


def run_in_pty(mirror: Mirror, *args: str, timeout: float = 90) -> tuple[int, str]:
    """Run the CLI with a terminal on stdout and stderr (120 columns); all it drew, unescaped."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 120, 0, 0))
    env = {**clean_env(), "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "50"}
    proc = subprocess.Popen([sys.executable, "-m", "mirror", *args, "--config",
                             str(mirror.config)], stdin=subprocess.DEVNULL, stdout=follower,
                            stderr=follower, cwd=mirror.config.parent, env=env)
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    code = proc.wait(timeout=30)
    os.close(leader)
    return code, ANSI.sub("", b"".join(chunks).decode(errors="replace"))


def test_terminal_bars_know_each_series_size_and_move_with_received_bytes(
        tmp_path: Path, simulator: Any) -> None:
    truth = simulator.ground_truth()
    total = sum(s.file_size for s in truth.values())
    # slow enough that several frames are drawn while the first series is on the wire
    simulator.add_fault("getImage", "slow", bytes_per_second=6000)
    mirror = mirror_for(tmp_path, simulator, workers=1)
    code, screen = run_in_pty(mirror, "sync")
    assert code == 0, screen[-2000:]
    lines = [line.strip() for line in re.split(r"[\r\n]+", screen) if line.strip()]
    value = r"(\d+(?:\.\d)? (?:B|KiB|MiB))"

    # one bar per series being fetched, whose total is that series' FileSize
    sizes = {uid[-10:]: human_bytes(s.file_size) for uid, s in truth.items()}
    bars = [m.groups() for line in lines
            if (m := re.match(rf"SIM-LUNG …([\d.]{{10}}) +\S+ +{value} / {value}", line))]
    assert bars, lines[:20]
    assert {tail for tail, _, _ in bars} == set(sizes)
    assert all(size == sizes[tail] for tail, _, size in bars)
    assert any(got not in ("0 B", size) for _, got, size in bars)  # drawn mid-download

    # the overall bar counts bytes as they arrive: it moves before the first commit
    totals = [m.groups() for line in lines if (m := re.match(rf"total +\S+ +{value} / {value}",
                                                             line))]
    assert totals and {want for _, want in totals} == {human_bytes(total)}
    before_commit = [m.group(1) for i, line in enumerate(lines)
                     if i and line.startswith("series") and f" 0 / {len(truth)} series" in line
                     and (m := re.match(rf"total +\S+ +{value}", lines[i - 1]))]
    assert any(got != "0 B" for got in before_commit), before_commit
    assert totals[-1] == (human_bytes(total), human_bytes(total))

    assert " MB" not in screen and " kB" not in screen  # one unit system: IEC
    assert lines[-1].startswith("sync complete in ") and f"{len(truth)} series done" in lines[-1]
