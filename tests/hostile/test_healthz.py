"""/healthz names the cause of failing polls, not only the symptom (issue 10, item 15)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.e2e.test_daemon import http_get, running, wait_for
from tests.hostile.wire_server import free_port, no_traceback, write_config

pytestmark = pytest.mark.slow


def test_healthz_gives_the_last_error_when_the_source_refuses_connections(
        tmp_path: Path) -> None:
    port, nobody = free_port(), free_port()  # nothing listens on *nobody*
    mirror = write_config(tmp_path, base_url=f"http://127.0.0.1:{nobody}/nbia-api/services/v4",
                          api="nbia-v4", collections=["SIM-LUNG"],
                          sync='poll_interval = "2s"',
                          tail=f'[daemon]\nlisten = "127.0.0.1:{port}"\n'
                               'shutdown_timeout = "5s"\n')
    with running(mirror.popen("daemon")) as proc:
        status, body = wait_for("healthz with a cause", lambda: (
            r if "last error" in (r := http_get(f"http://127.0.0.1:{port}/healthz"))[1]
            else None), deadline=30)
        health = json.loads(body)
        assert status == 503 and health["status"] == "unhealthy"
        assert "no successful poll" in health["reason"]
        assert f"cannot connect to 127.0.0.1:{nobody}" in health["reason"]
        assert "refused" in health["collections"]["SIM-LUNG"]["last_error"].lower()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert no_traceback(proc.stderr.read())
