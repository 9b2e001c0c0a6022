"""``tcia-mirror simulate`` as a program, and the dataset's determinism."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from mirror.simulator.blobs import BlobStore
from mirror.simulator.datadir import load_base
from mirror.simulator.testing import DatasetSpec, start_simulator
from tests.simulator.conftest import fetch

REPO = Path(__file__).resolve().parents[2]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_simulate_prints_urls_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mirror", "simulate", "--port", "0", "--seed", "3",
         "--data", str(tmp_path / "data"), "--patients", "1", "--fault",
         "getSeries:status=503:count=1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout is not None
        lines = dict(proc.stdout.readline().split() for _ in range(6))
        assert set(lines) == {"v3", "nbia-v1", "nbia-v4", "nbia-v2", "token", "admin"}
        assert lines["v3"].startswith("http://127.0.0.1:")
        assert lines["v3"].endswith("/services/v3/TCIA/query")
        assert lines["nbia-v4"].endswith("/nbia-api/services/v4")
        # v2 without a token: the real server's NullPointerException on the image handlers
        assert lines["nbia-v2"].endswith("/nbia-api/services/v2")
        assert _get(lines["nbia-v2"] + "/getImage?SeriesInstanceUID=1.2")[0] == 500
        assert _get(lines["nbia-v1"] + "/getSeries")[0] == 503
        rows = json.loads(_get(lines["nbia-v1"] + "/getSeries")[1])
        assert len(rows) == 2 and rows[0]["Collection"] == "SIM-HEAD-NECK"
        stats = json.loads(_get(lines["admin"] + "stats")[1])
        assert stats["requests"]["nbia-v1:getSeries"] == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
    assert code == 0


def test_bad_fault_spec_is_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mirror", "simulate", "--port", "0", "--data", str(tmp_path),
         "--fault", "getImage:explode"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 2
    assert "unknown fault kind 'explode'" in proc.stderr


def test_same_seed_same_uids_and_bytes(tmp_path: Path) -> None:
    spec = DatasetSpec(seed=7, collections=2, patients=1, series=1, instances=2)
    a, _ = load_base(tmp_path / "a", spec, BlobStore(tmp_path / "a"))
    b, _ = load_base(tmp_path / "b", spec, BlobStore(tmp_path / "b"))
    other, _ = load_base(tmp_path / "c", DatasetSpec(seed=8, collections=2, patients=1,
                                                     series=1, instances=2),
                         BlobStore(tmp_path / "c"))
    assert a.series == b.series
    assert list(a.collections) == ["SIM-LIVER", "SIM-BREAST-MR"]
    assert not set(a.series) & set(other.series)
    for s in a.series.values():
        for i in s.instances:
            assert (BlobStore(tmp_path / "a").path(i.blob).read_bytes()
                    == BlobStore(tmp_path / "b").path(i.blob).read_bytes())


def test_restart_reuses_the_data_dir(tmp_path: Path) -> None:
    spec = DatasetSpec(seed=5)
    with start_simulator(tmp_path, spec) as first:
        truth = first.ground_truth()
    blobs = sorted(p.stat().st_mtime_ns for p in (tmp_path / "blobs").rglob("*.dcm"))
    with start_simulator(tmp_path, spec) as second:
        assert second.ground_truth() == truth
    assert sorted(p.stat().st_mtime_ns for p in (tmp_path / "blobs").rglob("*.dcm")) == blobs


async def test_zip_bytes_are_deterministic(tmp_path: Path) -> None:
    bodies = []
    for name in ("x", "y"):
        with start_simulator(tmp_path / name, DatasetSpec(seed=9)) as sim:
            uid = sorted(sim.ground_truth())[0]
            raw = await fetch(sim.base_url("nbia-v1") + "/getImage", SeriesInstanceUID=uid)
            bodies.append(raw.body)
    assert bodies[0] == bodies[1]


def test_simulate_takes_credentials_from_a_mirror_config(tmp_path: Path) -> None:
    config = tmp_path / "tcia-mirror.toml"
    config.write_text('[source]\napi_key = "k3y"\nusername = "alice"\npassword = "pw"\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "mirror", "simulate", "--port", "0", "--data",
         str(tmp_path / "data"), "--patients", "1", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout is not None
        lines = dict(proc.stdout.readline().split() for _ in range(6))
        assert _get(lines["v3"] + "/getCollectionValues?format=json")[0] == 401
        request = urllib.request.Request(lines["v3"] + "/getCollectionValues?format=json",
                                         headers={"api_key": "k3y"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            assert resp.status == 200
        form = b"grant_type=password&username=alice&password=pw&client_id=NBIA"
        with urllib.request.urlopen(lines["token"], data=form, timeout=30) as resp:
            assert "access_token" in json.loads(resp.read())
        series = json.loads(_get(lines["nbia-v4"] + "/getSeries")[1])[0]["SeriesInstanceUID"]
        assert _get(f"{lines['nbia-v4']}/getImage?SeriesInstanceUID={series}")[0] == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
    assert code == 0


def test_simulate_rejects_a_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[source]\napi_kee = 1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "mirror", "simulate", "--port", "0", "--data", str(tmp_path),
         "--config", str(config)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 2 and "source.api_kee" in proc.stderr
