"""A careless user through the real CLI: flags, names, paths, ports and files that are wrong.

Each case ends in one line on stderr with the documented exit code, never a traceback,
a hang or a silent success (issue: trust, careless-user items).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mirror.domain import SeriesState
from mirror.simulator.testing import DatasetSpec, SimulatorHandle, start_simulator
from tests.e2e.harness import (
    REPO,
    Mirror,
    assert_archive_matches,
    catalog_series,
    clean_env,
    expected_files,
    write_mirror,
)

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "mirror"]


def error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The one error line of a failed run; nothing else on stderr looks like an error."""
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text and "ExceptionGroup" not in text, text[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("tcia-mirror: error:")]
    assert len(lines) == 1, f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return lines[0]


@pytest.fixture
def two_collections(sim_data_dir: Path) -> Iterator[SimulatorHandle]:
    with start_simulator(sim_data_dir, DatasetSpec(collections=2)) as handle:
        yield handle


def sqlite_mirror(tmp_path: Path, sim: SimulatorHandle, collections: list[str],
                  **kw: Any) -> Mirror:
    return write_mirror(tmp_path, base_url=sim.base_url("nbia-v4"), api="nbia-v4",
                        collections=collections,
                        catalog_url=f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}", **kw)


# --- 8. sync --collection, repeatable ---

def test_sync_collection_flag_is_repeatable_and_overrides_the_file(
        tmp_path: Path, two_collections: SimulatorHandle) -> None:
    sim = two_collections
    first, second = sim.collections()
    mirror = sqlite_mirror(tmp_path, sim, ["NOT-THIS-ONE"])
    summary = mirror.sync("--collection", first, "--collection", second)
    assert summary["outcome"] == "ok" and summary["collections"] == [first, second]
    assert_archive_matches(mirror.root, sim.ground_truth())


# --- 9. an archive root that cannot be written ---

def test_archive_root_below_a_regular_file_is_one_line_naming_archive_root(
        tmp_path: Path, simulator: SimulatorHandle) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory")
    mirror = sqlite_mirror(tmp_path, simulator, simulator.collections())
    text = mirror.config.read_text().replace(f'root = "{mirror.root}"',
                                             f'root = "{blocker / "archive"}"')
    mirror.config.write_text(text)
    proc = mirror.run("sync", timeout=60)
    assert proc.returncode == 2 and "archive.root" in error_line(proc)


@pytest.fixture
def immutable_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory that even root cannot write into (chattr +i), or skip saying why."""
    path = tmp_path / "immutable"
    path.mkdir()
    proc = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True,
                          check=False) if _has("chattr") else None
    if proc is None or proc.returncode != 0:
        pytest.skip(f"chattr +i unavailable here: {proc.stderr.strip() if proc else 'none'}")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def _has(tool: str) -> bool:
    return subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True,
                          check=False).returncode == 0


def test_immutable_archive_root_ends_at_once_naming_archive_root(
        tmp_path: Path, simulator: SimulatorHandle, immutable_dir: Path) -> None:
    mirror = sqlite_mirror(tmp_path, simulator, simulator.collections())
    mirror.config.write_text(mirror.config.read_text().replace(
        f'root = "{mirror.root}"', f'root = "{immutable_dir}"'))
    proc = mirror.run("sync", timeout=60)  # it used to hang here forever, silently
    assert proc.returncode == 2 and "archive.root" in error_line(proc)


# --- 10. two overlapping one-shot syncs ---

@pytest.fixture
def slow_sim(sim_data_dir: Path) -> Iterator[SimulatorHandle]:
    """Twelve series whose ZIPs take a second each: two syncs surely overlap."""
    with start_simulator(sim_data_dir, DatasetSpec(collections=2, series=3)) as handle:
        for endpoint in ("getImage", "getImageWithMD5Hash"):
            handle.add_fault(endpoint, "latency", seconds=1.0)
        yield handle


def test_two_syncs_at_once_cooperate_and_fail_nothing(
        tmp_path: Path, slow_sim: SimulatorHandle, catalog_url: str) -> None:
    mirror = write_mirror(tmp_path, base_url=slow_sim.base_url("nbia-v4"), api="nbia-v4",
                          collections=slow_sim.collections(), catalog_url=catalog_url,
                          workers=2)
    first = mirror.popen("sync", "--json")
    staging = mirror.root / ".staging"
    # start the second while the first has downloads staged (not a sleep: it waits for
    # the first's staging directory to fill, checking the first is still alive)
    while not (staging.is_dir() and any(p.name[0].isdigit() for p in staging.iterdir())):
        try:
            first.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"first sync ended before staging anything: "
                             f"{first.communicate()}")
    second = mirror.popen("sync", "--json")
    results = [p.communicate(timeout=120) for p in (first, second)]
    for proc, (out, err) in zip((first, second), results, strict=True):
        assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err[-3000:]}"
        summary = json.loads(out)
        assert summary["outcome"] == "ok" and summary["failed"] == 0, summary
        assert summary["retried"] == 0, summary  # not even a retry caused by the other
    rows = catalog_series(catalog_url)
    assert {r.state for r in rows.values()} == {SeriesState.DONE}
    assert {r.attempts for r in rows.values()} == {1}, [
        (r.attempts, r.last_error) for r in rows.values()]
    assert_archive_matches(mirror.root, slow_sim.ground_truth())


# --- 11. a collection name the server does not have ---

def test_unknown_collection_is_refused_with_a_did_you_mean(
        tmp_path: Path, simulator: SimulatorHandle) -> None:
    [name] = simulator.collections()
    mirror = sqlite_mirror(tmp_path, simulator, [name + "G"])
    proc = mirror.run("sync", timeout=60)
    line = error_line(proc)
    assert proc.returncode == 2 and f"did you mean {name!r}" in line, line
    status = mirror.run("status", "--json", check=True)
    assert json.loads(status.stdout) == []  # no empty collection left behind


def test_collection_name_takes_the_servers_spelling(
        tmp_path: Path, simulator: SimulatorHandle) -> None:
    [name] = simulator.collections()
    mirror = sqlite_mirror(tmp_path, simulator, [name])
    mirror.sync()
    again = mirror.sync("--collection", name.lower())
    assert again["outcome"] == "ok" and again["collections"] == [name]
    assert again["done"] == 0  # the same collection, not a second one
    rows = json.loads(mirror.run("status", "--json", check=True).stdout)
    assert [r["collection"] for r in rows] == [name]


# --- 12. verify checks what the catalog holds ---

def test_verify_without_configured_collections_checks_the_whole_catalog(
        tmp_path: Path, two_collections: SimulatorHandle) -> None:
    sim = two_collections
    mirror = sqlite_mirror(tmp_path, sim, sim.collections())
    mirror.sync()
    # a config that names no collections (the default, LIDC-IDRI, is not in this catalog)
    text = "\n".join(ln for ln in mirror.config.read_text().splitlines()
                     if not ln.startswith("collections ="))
    mirror.config.write_text(text)
    victim = sorted(expected_files(sim.ground_truth()))[0]
    (mirror.root / victim).write_bytes(b"rot")
    proc = mirror.run("verify", "--json")
    report = json.loads(proc.stdout)
    assert report["checked"] == len(sim.ground_truth()), report
    assert proc.returncode == 1 and len(report["damaged"]) == 1, report
    narrowed = json.loads(mirror.run("verify", "--json", "--collection",
                                     sim.collections()[1]).stdout)
    per_collection = [s for s in sim.ground_truth().values()
                      if s.collection == sim.collections()[1]]
    assert narrowed["checked"] == len(per_collection)


# --- 13. no traceback ever reaches a user ---

def test_daemon_whose_port_is_taken_says_so_in_one_line(
        tmp_path: Path, simulator: SimulatorHandle) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        mirror = sqlite_mirror(tmp_path, simulator, simulator.collections(),
                               extra=f'\n[daemon]\nlisten = "127.0.0.1:{port}"\n')
        proc = mirror.run("daemon", timeout=60)
    line = error_line(proc)
    assert proc.returncode == 2 and "daemon.listen" in line, line


@pytest.mark.parametrize(("content", "code", "needle"), [
    (b'[archive]\nroot = "\xff\xfe"\n', 2, "UTF-8"),
    (None, 2, "/dev/urandom"),
    (b'[catalog]\nurl = "postgresql+asyncpg://bob:pw@127.0.0.1:99999/db"\n', 2, "catalog.url"),
    (b'[sync]\nworkers = 8.7\n', 2, "sync.workers"),
    (b'[sync]\noverlap_days = 1e8\n', 2, "sync.overlap_days"),
    (b'[source]\nread_timeout = "0s"\n', 2, "source.read_timeout"),
    (b'[daemon]\nshutdown_timeout = -5\n', 2, "daemon.shutdown_timeout"),
    (b'[sync]\nmax_attempts = true\n', 2, "sync.max_attempts"),
], ids=["non-utf8", "dev-urandom", "catalog-bad-port", "workers-float", "overlap-huge",
        "zero-duration", "negative-duration", "bool-for-int"])
def test_bad_config_files_end_in_one_line(tmp_path: Path, content: bytes | None, code: int,
                                          needle: str) -> None:
    config = Path("/dev/urandom") if content is None else tmp_path / "bad.toml"
    if content is not None:
        config.write_bytes(content)
    proc = subprocess.run([*CLI, "sync", "--config", str(config)], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path, env=clean_env(),
                          errors="replace")
    line = error_line(proc)
    assert proc.returncode == code and needle in line, line


def test_catalog_made_read_only_mid_run_is_one_line(
        tmp_path: Path, slow_sim: SimulatorHandle, immutable_dir: Path) -> None:
    url = f"sqlite+aiosqlite:///{immutable_dir / 'catalog.db'}"
    subprocess.run(["chattr", "-i", str(immutable_dir)], check=True)
    mirror = write_mirror(tmp_path, base_url=slow_sim.base_url("nbia-v4"), api="nbia-v4",
                          collections=slow_sim.collections(), catalog_url=url, workers=2)
    proc = mirror.popen("sync")
    staging = mirror.root / ".staging"
    while not (staging.is_dir() and any(p.name[0].isdigit() for p in staging.iterdir())):
        try:
            proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"sync ended before downloading: {proc.communicate()}")
    # downloads are under way: from now on the catalog's files cannot be written (its
    # shared-memory index stays writable: SQLite maps it, and a mapping that cannot be
    # written kills a process with SIGBUS, which no program can turn into a message)
    files = [str(p) for p in immutable_dir.iterdir() if not p.name.endswith("-shm")]
    subprocess.run(["chattr", "+i", *files, str(immutable_dir)], check=True)
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        subprocess.run(["chattr", "-i", *files], check=True)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    line = error_line(done)
    assert proc.returncode == 1 and "catalog" in line, line


# --- 14. secrets never echoed, never stored ---

def test_secret_values_are_never_echoed(tmp_path: Path, simulator: SimulatorHandle) -> None:
    mirror = sqlite_mirror(tmp_path, simulator, simulator.collections())
    mirror.config.write_text(mirror.config.read_text().replace(
        "[source]\n", "[source]\npassword = 987654321\n"))
    proc = mirror.run("sync", timeout=60)
    line = error_line(proc)
    assert proc.returncode == 2 and "source.password" in line
    assert "987654321" not in proc.stdout + proc.stderr


def test_url_userinfo_is_never_shown_or_stored(tmp_path: Path,
                                               simulator: SimulatorHandle) -> None:
    mirror = sqlite_mirror(tmp_path, simulator, simulator.collections())
    base = simulator.base_url("nbia-v4")
    mirror.config.write_text(mirror.config.read_text().replace(
        f'base_url = "{base}"', 'base_url = "http://bob:hunter2@127.0.0.1:99999/x"'))
    proc = mirror.run("sync", timeout=60)
    line = error_line(proc)
    assert proc.returncode == 2 and "source.base_url" in line, line
    assert "hunter2" not in proc.stdout + proc.stderr
    catalog = tmp_path / "catalog.db"
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("catalog.db*")) if (
        catalog.exists()) else b""
    assert b"hunter2" not in stored


# --- 16. the image's defaults never beat the user's config file ---

def image_env(dockerfile: Path, data: Path) -> dict[str, str]:
    """The TCIA_MIRROR_* variables the image sets, with /data moved under *data*."""
    text = dockerfile.read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for pair in line[4:].split():
                key, _, value = pair.partition("=")
                if key.startswith("TCIA_MIRROR_"):
                    env[key] = value.replace("/data", str(data))
    assert env, "the Dockerfile sets no TCIA_MIRROR_ variable: update this test"
    return env


def test_config_file_wins_over_the_images_defaults(tmp_path: Path,
                                                   simulator: SimulatorHandle) -> None:
    mirror = sqlite_mirror(tmp_path, simulator, simulator.collections())
    image_data = tmp_path / "image-data"
    env = {**clean_env(), **image_env(REPO / "Dockerfile", image_data)}
    (image_data / "catalog").mkdir(parents=True)
    proc = subprocess.run([*CLI, "sync", "--json", "--config", str(mirror.config)],
                          capture_output=True, text=True, timeout=90, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_archive_matches(mirror.root, simulator.ground_truth())  # the file's root
    assert (tmp_path / "catalog.db").exists()  # the file's catalog
    assert not (image_data / "archive").exists() and not any((image_data / "catalog").iterdir())
    # the documented precedence still holds for what the user sets: environment > file
    env["TCIA_MIRROR_ARCHIVE_ROOT"] = str(tmp_path / "from-env")
    env["TCIA_MIRROR_CATALOG_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'from-env.db'}"
    proc = subprocess.run([*CLI, "sync", "--json", "--config", str(mirror.config)],
                          capture_output=True, text=True, timeout=90, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_archive_matches(tmp_path / "from-env", simulator.ground_truth())
