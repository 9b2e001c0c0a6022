"""Postgres fixtures: a real server the suite starts itself, and a fresh database per test.

The server runs from the system's binaries (initdb + pg_ctl) in a temporary directory,
listens on 127.0.0.1 at a free port, trusts local connections and is stopped at the end
of the session. ``catalog_url`` runs a test once on SQLite and once on Postgres.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

#: Where Debian's postgresql packages put their binaries, any major version.
BIN_GLOB = "/usr/lib/postgresql/*/bin"
#: Durability is pointless for a throwaway test server and costs seconds.
SERVER_OPTIONS = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
    "-c max_connections=300 -c listen_addresses=127.0.0.1"
)


@dataclass(frozen=True)
class PostgresServer:
    """A running throwaway server; ``create_database`` gives each test its own."""

    bindir: Path
    port: int
    host: str = "127.0.0.1"
    user: str = "postgres"

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.user}@{self.host}:{self.port}/{database}"

    def psql(self, sql: str) -> str:
        """Run one SQL command as the superuser; return its unaligned output."""
        result = subprocess.run(
            [str(self.bindir / "psql"), "-h", self.host, "-p", str(self.port), "-U", self.user,
             "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
            capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {result.stderr.strip()}")
        return result.stdout

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        self.psql(f"CREATE DATABASE {name} TEMPLATE template0")
        return name

    def drop_database(self, name: str) -> None:
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def find_bindir() -> Path | None:
    """The newest installed Postgres bin directory that has initdb and pg_ctl."""
    candidates = [Path(p) for p in glob.glob(BIN_GLOB)]
    candidates = [p for p in candidates if (p / "initdb").is_file() and (p / "pg_ctl").is_file()]
    if not candidates:
        return None
    return max(candidates, key=lambda p: _version_key(p.parent.name))


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres_user(workdir: Path) -> list[str]:
    """initdb refuses to run as root: hand the directory to `postgres` and run as it."""
    if os.geteuid() != 0:
        return []
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("running as root but there is no `postgres` user to run initdb as")
    os.chown(workdir, account.pw_uid, account.pw_gid)
    return ["runuser", "-u", "postgres", "--"]


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed ({result.returncode}): {result.stderr.strip()}")


def _start(bindir: Path, workdir: Path, prefix: list[str]) -> PostgresServer:
    data = workdir / "data"
    _run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
          "-E", "UTF8", "--no-locale", "--no-sync"], "initdb")
    last_error: Exception | None = None
    for _ in range(3):  # another process may grab the free port before we bind it
        port = _free_port()
        try:
            _run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l",
                  str(workdir / "server.log"), "-w", "-t", "60", "-o",
                  f"-p {port} -k {workdir} {SERVER_OPTIONS}", "start"], "pg_ctl start")
            return PostgresServer(bindir=bindir, port=port)
        except RuntimeError as exc:
            last_error = exc
    log = (workdir / "server.log").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"{last_error}\n--- server.log ---\n{log}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A Postgres server for the whole session (skips only where no binaries exist)."""
    bindir = find_bindir()
    if bindir is None:
        reason = f"no Postgres binaries under {BIN_GLOB}; run `bash .ci/setup`"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    workdir = Path(tempfile.mkdtemp(prefix="tcia-mirror-pg-"))
    prefix = _as_postgres_user(workdir)
    server = None
    try:
        server = _start(bindir, workdir, prefix)
        yield server
    finally:
        if server is not None:
            subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(workdir / "data"),
                            "-m", "fast", "-w", "stop"], capture_output=True, timeout=60,
                           check=False)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database on the session's server, as a SQLAlchemy asyncpg URL."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty catalog URL: a SQLite file in tmp_path, then a fresh Postgres database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}"
    return request.getfixturevalue("postgres_url")
