"""What a ``tcia-mirror`` process loads: ``status`` reads without SQLAlchemy at all (and on
SQLite without an event loop), ``--help`` without the engine, and logging off a terminal
without rich.

Structural checks (``sys.modules`` of a real process), not timings: start-up time is
measured by ``benchmarks/startup.py`` and B6.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mirror.catalog import Catalog
from tests.catalog.test_status import _populate

#: Loaded by a sync or the daemon, never by ``status``: SQLAlchemy (status runs stored
#: SQL on sqlite3 or asyncpg), the HTTP client, logging, migrations, DICOM, the Catalog
#: and its drivers' glue, anyio; rich only lays out tables that need it (markup, wide
#: text), not the usual one.
NOT_FOR_STATUS = ("sqlalchemy", "sqlalchemy.orm", "sqlalchemy.ext.asyncio", "aiohttp",
                  "structlog", "alembic", "aiosqlite", "pydicom", "anyio",
                  "mirror.catalog.catalog", "mirror.catalog.queue", "mirror.catalog.engine",
                  "mirror.catalog.migrate", "mirror.catalog.reports", "mirror.tcia",
                  "mirror.logs", "rich")
#: Only Postgres needs an event loop (asyncpg); SQLite reads on sqlite3 alone.
NOT_FOR_SQLITE_STATUS = ("asyncio", "asyncpg")

#: Runs the command line in this process, then prints what was imported, as JSON.
PROBE = """
import json, sys
sys.argv = ["tcia-mirror", *sys.argv[1:]]
from mirror.run.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"exit": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _loaded(tmp_path: Path, *args: str) -> tuple[str, set[str]]:
    """(stdout, module names) of the command line run with *args*."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path, env=env, check=False)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["exit"] in (0, None), proc.stderr
    return proc.stdout, set(report["modules"])


@pytest.mark.parametrize("flags", [(), ("--json",), ("--failed",), ("--failed", "--json")])
async def test_status_loads_neither_the_orm_nor_the_async_engine(
        catalog: Catalog, catalog_url: str, tmp_path: Path, flags: tuple[str, ...]) -> None:
    await _populate(catalog)
    (tmp_path / "mirror.toml").write_text(f'[catalog]\nurl = "{catalog_url}"\n')
    out, modules = _loaded(tmp_path, "status", *flags, "--config", str(tmp_path / "mirror.toml"))
    assert "COLL-A" in out  # it did read the catalog
    assert "mirror.catalog.status" in modules and "mirror.catalog.statusdb" in modules
    assert [name for name in NOT_FOR_STATUS if name in modules] == []
    if catalog_url.startswith("sqlite"):
        assert [name for name in NOT_FOR_SQLITE_STATUS if name in modules] == []
    else:
        assert "asyncpg" in modules


def test_help_loads_no_engine_and_no_event_loop(tmp_path: Path) -> None:
    out, modules = _loaded(tmp_path, "--help")
    assert "status" in out
    assert [name for name in ("sqlalchemy", "asyncio", "anyio", "aiohttp", "structlog", "rich")
            if name in modules] == []


def test_logging_off_a_terminal_loads_no_rich() -> None:
    """structlog is imported with rich hidden (its console renderer is for terminals);
    rich itself stays importable for the commands that print tables."""
    probe = ("import sys; from mirror import logs; logs.configure(); logs.get().info('x')\n"
             "hidden = [m for m in ('rich', 'pygments', 'colorama') if m in sys.modules]\n"
             "import rich.table; print(hidden)")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, env=env, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert json.loads(proc.stderr.strip())["event"] == "x"  # JSON lines, as off a terminal
