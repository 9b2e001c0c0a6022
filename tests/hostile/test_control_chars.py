"""Server text never drives the terminal: control characters are escaped wherever shown."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web

from tests.e2e.harness import catalog_series, clean_env
from tests.hostile.hostile_server import FakeSeries, HostileServer, mirror_for

pytestmark = pytest.mark.timeout(120)

#: Terminal attacks: set the window title, clear the screen, an 8-bit CSI, a bidi override.
ATTACKS = ["\x1b]0;PWNED\x07", "\x1b[2J", "\x9b31m", "\u202eDENWP"]
HOSTILE = "desc " + " ".join(ATTACKS) + " end"


def _raw_attacks(text: str) -> list[str]:
    return [a for a in ATTACKS if a in text]


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_query_escapes_control_characters(tmp_path: Path, server: HostileServer,
                                          fmt: str) -> None:
    series = FakeSeries.make(1, row={"SeriesDescription": HOSTILE, "Key\x1b[8m": "v\x07"})
    server.series = [series]
    proc = subprocess.run(
        [sys.executable, "-m", "mirror", "query", "getSeries", "Collection=HOSTILE",
         "--format", fmt, "--base-url", server.base_url, "--api", "nbia-v4"],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _raw_attacks(proc.stdout) == []
    assert "\x07" not in proc.stdout and "\x1b" not in proc.stdout
    if fmt == "json":  # escaped as JSON escapes: the data survive exactly
        assert json.loads(proc.stdout)[0]["SeriesDescription"] == HOSTILE
        assert json.loads(proc.stdout)[0]["Key\x1b[8m"] == "v\x07"
    else:
        assert "\\x1b]0;PWNED\\x07" in proc.stdout  # shown, visibly escaped
        assert "\\u202eDENWP" in proc.stdout


def _run_on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal, as a user at a shell."""
    master, slave = pty.openpty()
    env = {**clean_env(), "TERM": "xterm-256color", "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "mirror", *args], cwd=cwd, env=env,
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


def test_server_text_in_errors_is_escaped_on_the_terminal_and_in_the_catalog(
        tmp_path: Path, server: HostileServer) -> None:
    refused, good = FakeSeries.make(1), FakeSeries.make(2, row={"PatientID": "P\x1b[2J\x00"})
    ok = FakeSeries.make(3)
    server.series = [refused, good, ok]

    def refuse(request: web.Request) -> web.Response | None:
        if request.query.get("SeriesInstanceUID") == refused.series_uid:
            return web.Response(status=400, text=f"not in public domain {HOSTILE}")
        return None

    server.handlers = {"getImage": refuse, "getImageWithMD5Hash": refuse}
    mirror = mirror_for(tmp_path, server)
    code, out = _run_on_a_terminal(["sync", "--config", str(mirror.config)], tmp_path)

    assert code == 1, out[-3000:]
    assert _raw_attacks(out) == []
    assert "PWNED" in out  # the error was shown, escaped
    rows = catalog_series(mirror.catalog_url)
    assert rows[ok.series_uid].state == "done"
    for uid in (refused.series_uid, good.series_uid):
        error = rows[uid].last_error or ""
        assert rows[uid].state == "failed" and error
        assert "\x1b" not in error and "\x00" not in error and "\x9b" not in error
    assert "\\x1b" in (rows[refused.series_uid].last_error or "")
