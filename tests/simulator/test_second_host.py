"""A second NBIA host: its own dataset on its own port (NLST lives on its own host)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from mirror.simulator.testing import SimulatorHandle
from tests.simulator.conftest import fetch

REPO = Path(__file__).resolve().parents[2]


async def test_two_hosts_serve_independent_datasets(simulator: SimulatorHandle,
                                                    second_simulator: SimulatorHandle) -> None:
    assert simulator.port != second_simulator.port
    assert second_simulator.collections() == ["NLST"]
    assert "NLST" not in simulator.collections()
    assert not set(simulator.ground_truth()) & set(second_simulator.ground_truth())
    rows = json.loads((await fetch(second_simulator.base_url("nbia-v4") + "/getSeries",
                                   Collection="NLST")).body)
    assert {r["SeriesInstanceUID"] for r in rows} == set(second_simulator.ground_truth())
    assert {r["PatientID"] for r in rows} == {"NLST-0001", "NLST-0002"}
    # Each host knows only its own collection.
    first = await fetch(simulator.base_url("nbia-v4") + "/getSeries", Collection="NLST")
    assert (first.status, first.body) == (200, b"")
    nlst = await fetch(second_simulator.base_url("nbia-v4") + "/getMD5Hierarchy",
                       method="POST", data={"Collection": "NLST"})
    assert len(nlst.text) == 32
    # Releases and statistics are per host.
    second_simulator.reset_stats()
    await fetch(simulator.base_url("nbia-v4") + "/getCollectionValues")
    assert second_simulator.stats()["requests_total"] == 0


def test_simulate_serves_a_second_host(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mirror", "simulate", "--port", "0", "--data",
         str(tmp_path / "data"), "--patients", "1", "--second-host-port", "0",
         "--second-host-collection", "NLST-SIM"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout is not None
        lines = dict(proc.stdout.readline().split() for _ in range(12))
        assert {"nbia-v4", "second-nbia-v4", "second-token", "second-admin"} <= set(lines)
        assert lines["nbia-v4"] != lines["second-nbia-v4"]
        with urllib.request.urlopen(lines["second-nbia-v4"] + "/getCollectionValues",
                                    timeout=30) as resp:
            assert json.loads(resp.read()) == [{"Collection": "NLST-SIM"}]
        with urllib.request.urlopen(lines["nbia-v4"] + "/getCollectionValues",
                                    timeout=30) as resp:
            assert json.loads(resp.read()) == [{"Collection": "SIM-LUNG"}]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
    assert code == 0
