"""A careless user through the real CLI: no traceback, no secret, no image default wins.

Bad files, taken ports and unwritable catalogs end in one line with the documented exit
code; secrets and URL userinfo are never shown or stored.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mirror.simulator.testing import SimulatorHandle
from tests.e2e.careless import error_line, sqlite_mirror
from tests.e2e.harness import REPO, assert_archive_matches, clean_env, write_mirror

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "mirror"]


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
