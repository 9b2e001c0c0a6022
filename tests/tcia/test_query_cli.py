"""``tcia-mirror query`` as a user runs it: a subprocess against the simulator, each dialect."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mirror.simulator.testing import SimulatorHandle

APIS = ["v3", "nbia-v1", "nbia-v4"]


def run_cli(cwd: Path, *args: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TCIA_MIRROR_")}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "mirror", "query", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("api", APIS)
def test_query_get_series_table(simulator: SimulatorHandle, tmp_path: Path, api: str) -> None:
    coll = simulator.collections()[0]
    done = run_cli(tmp_path, "getSeries", f"Collection={coll}", "--format", "table",
                   "--base-url", simulator.base_url(api), "--api", api)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "SeriesInstanceUID" in lines[0] and "Collection" in lines[0]
    for uid in simulator.ground_truth(coll):
        assert len([ln for ln in lines if uid in ln]) == 1  # one row per series, unwrapped


def test_query_json_and_csv(simulator: SimulatorHandle, tmp_path: Path) -> None:
    coll = simulator.collections()[0]
    base = ("--base-url", simulator.base_url("nbia-v4"), "--api", "nbia-v4")
    as_json = run_cli(tmp_path, "getPatient", f"Collection={coll}", "--format", "json", *base)
    patients = {t.patient_id for t in simulator.ground_truth(coll).values()}
    assert {r["PatientId"] for r in json.loads(as_json.stdout)} == patients
    as_csv = run_cli(tmp_path, "getPatient", f"Collection={coll}", "--format", "csv", *base)
    assert {r["PatientId"] for r in csv.DictReader(io.StringIO(as_csv.stdout))} == patients
    empty = run_cli(tmp_path, "getSeries", "Collection=NOPE", "--format", "table", *base)
    assert (empty.returncode, empty.stdout.strip()) == (0, "(no results)")


def test_query_errors_exit_codes(simulator: SimulatorHandle, tmp_path: Path,
                                 unused_tcp_port: int) -> None:
    bad = run_cli(tmp_path, "getSeriesSize", "--base-url", simulator.base_url("nbia-v1"),
                  "--api", "nbia-v1")
    assert bad.returncode == 1
    assert "SeriesInstanceUID is required" in bad.stderr
    gone = run_cli(tmp_path, "getSeries", "--base-url",
                   f"http://127.0.0.1:{unused_tcp_port}/nbia-api/services/v1",
                   "--api", "nbia-v1", TCIA_MIRROR_SOURCE_RETRIES="1")
    assert gone.returncode == 3, gone.stderr
    assert "cannot connect" in gone.stderr
