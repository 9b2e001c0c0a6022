"""The daemon's status page, loaded in headless Chromium while it mirrors the simulator."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_daemon import daemon_mirror, free_port, http_get, running, wait_for

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HOSTILE = "Series <b>not</b> in public domain & <script>alert(1)</script>"


def chromium(tmp: Path, *args: str) -> str:
    assert CHROMIUM is not None
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp / 'chromium-profile'}", *args],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="chromium is not installed (.ci/setup installs it)")
def test_status_page_shows_collections_failures_and_throughput(
        tmp_path: Path, simulator: Any) -> None:
    truth = simulator.ground_truth()
    victim = sorted(truth)[0]
    simulator.add_fault("getImage", "status", status=400, series=victim,
                        body=HOSTILE)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    mirror = daemon_mirror(tmp_path, simulator, f"sqlite+aiosqlite:///{tmp_path}/c.db",
                           port=port)
    with running(mirror.popen("daemon")) as proc:
        def settled() -> Any:
            status, body = http_get(f"{base}/status.json")
            if status != 200:
                return None
            data = json.loads(body)
            rows = data["collections"]
            done = sum(r["done"] for r in rows)
            return data if rows and done == len(truth) - 1 and data["failed"] else None

        data = wait_for("the mirror to settle", settled)
        dom = chromium(tmp_path, "--dump-dom", f"{base}/")
        screenshot = tmp_path / "status.png"
        chromium(tmp_path, f"--screenshot={screenshot}", "--window-size=1200,900", f"{base}/")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    print(f"status page screenshot: {screenshot}")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    collection = truth[victim].collection
    row = re.search(rf"<tr><td>{collection}</td>(.*?)</tr>", dom, re.S)
    assert row, dom[:3000]
    counts = dict(re.findall(r'data-key="(\w+)">(\d+)<', row.group(1)))
    assert counts == {"series_total": str(len(truth)), "done": str(len(truth) - 1),
                      "queued": "0", "fetching": "0", "failed": "1", "retired": "0"}
    assert data["collections"][0]["done"] == len(truth) - 1  # the page shows status.json

    failed = re.search(r'<table id="failed">(.*?)</table>', dom, re.S)
    assert failed and victim in failed.group(1)
    # the server's text is shown as text, never as markup
    assert "Series &lt;b&gt;not&lt;/b&gt; in public domain &amp; &lt;script&gt;" in failed.group(1)
    assert "<script>" not in dom

    svg = re.search(r'<svg id="throughput".*?</svg>', dom, re.S)
    assert svg
    heights = [int(b) for b in re.findall(r'data-bytes="(\d+)"', svg.group(0))]
    assert len(heights) == 24 and sum(heights) == sum(
        s.file_size for uid, s in truth.items() if uid != victim)
