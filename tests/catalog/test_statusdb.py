"""``status``'s stored SQL on sqlite3/asyncpg answers what the SQLAlchemy reads answer, and
its URL grammar is SQLAlchemy's; failures are one line and an exit code."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import anyio.to_thread
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from mirror import dburl
from mirror.catalog import Catalog, engine, migrate, status, statusdb
from mirror.domain import InstanceRecord
from mirror.errors import ConfigError
from tests.catalog.factory import remote
from tests.catalog.test_status import _populate

NOW = datetime(2024, 6, 1, 12, 40, tzinfo=UTC)


def test_constants_match_the_engine_and_the_migrations() -> None:
    assert statusdb.HEAD_REVISION == migrate.HEAD_REVISION
    assert statusdb.SQLITE_BUSY_TIMEOUT == engine.SQLITE_BUSY_TIMEOUT
    assert statusdb.PG_SERVER_SETTINGS == engine._PG_SERVER_SETTINGS


async def _populate_more(catalog: Catalog) -> None:
    """_populate, plus disk-full errors, a failed poll, a hash pass and timed commits."""
    await _populate(catalog)
    await catalog.ensure_collections(["COLL-C"])
    await catalog.upsert_series([remote(i, collection="COLL-C") for i in range(10, 15)])
    one, two, three, four = await catalog.claim("w", 4, lease_seconds=60)
    files = [InstanceRecord(f"1.5.{k}", f"g{k}", 2000, "0" * 32) for k in range(2)]
    await catalog.complete(one.series_uid, "w", local_path="c", instances=files,
                           verified_at=NOW - timedelta(hours=3, minutes=1))
    await catalog.complete(two.series_uid, "w", local_path="d", instances=files[:1],
                           verified_at=NOW - timedelta(minutes=2))
    await catalog.fail(three.series_uid, "w", retry_at=NOW,
                       error="StorageFull: storage full: cannot write x: [Errno 28] ...")
    await catalog.fail(four.series_uid, "w", retry_at=None, error="Disk quota exceeded 100%_/")
    await catalog.record_poll("COLL-C", at=NOW, ok=False, error="HTTP 503 from getSeries")
    await catalog.finish_hash_pass("COLL-A", at=NOW - timedelta(days=1), changed=3)
    await catalog.save_hash_progress("COLL-A", started_at=NOW, cursor="P1", changed=1)
    await catalog.set_collection_source("COLL-C", "mirror2")


async def test_stored_sql_answers_what_the_core_reads_answer(
        catalog: Catalog, catalog_url: str) -> None:
    await _populate_more(catalog)
    page = await status.overview(catalog, now=NOW)  # the daemon's status page, on SQLAlchemy
    expected_rows, expected_failed = page["collections"], page["failed"]
    assert {r["storage"] for r in expected_rows} == {"ok", "full"}  # both cases met
    assert len(expected_failed) == 2
    assert {"hour": "2024-06-01T09:00:00+00:00", "series": 1, "bytes": 4000} in (
        page["throughput"]["buckets"])
    assert await anyio.to_thread.run_sync(status.read_collections, catalog_url) == expected_rows
    assert expected_failed == await anyio.to_thread.run_sync(status.read_failed, catalog_url)


URLS = [
    "sqlite+aiosqlite:///./catalog.db", "sqlite+aiosqlite:////var/lib/x y.db",
    "sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:", "sqlite+aiosqlite:///%41.db",
    "postgresql+asyncpg://u:p%40ss@db.example:5432/cat?ssl=require&x=1&x=2",
    "postgresql+asyncpg://u@[::1]:6000/cat", "postgresql+asyncpg://u:@h/d",
    "postgresql+asyncpg:///cat?host=/run/postgresql", "postgresql+asyncpg://h:99999/d",
    "postgresql+asyncpg://h:x/d", "mysql://u:p@h/d", "not a url", "",
    "postgresql+asyncpg://a b:c d@h/d?q=%20", "postgresql+asyncpg://h:/d",
]


def _agree(text: str) -> None:
    try:
        theirs = make_url(text)
    except ArgumentError:
        with pytest.raises(dburl.BadUrl):
            dburl.make(text)
        return
    except ValueError:  # a port that is no number
        with pytest.raises(ValueError, match="invalid literal for int"):
            dburl.make(text)
        return
    ours = dburl.make(text)
    assert (ours.drivername, ours.username, ours.password, ours.host, ours.port,
            ours.database) == (theirs.drivername, theirs.username, theirs.password,
                               theirs.host, theirs.port, theirs.database)
    assert ours.query == dict(theirs.query)
    assert ours.render() == theirs.render_as_string(hide_password=True)
    assert dburl.safe(text) == theirs.render_as_string(hide_password=True)
    if ours.drivername in dburl.DRIVERS:
        wanted = (None if theirs.get_backend_name() != "sqlite"
                  or theirs.database in (None, "", ":memory:") else Path(theirs.database))
        assert dburl.sqlite_file(ours) == wanted
        assert engine.sqlite_file(theirs) == wanted  # the engine's, from a URL object


@pytest.mark.parametrize("text", URLS)
def test_urls_parse_as_sqlalchemy_parses_them(text: str) -> None:
    _agree(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="sqlite+aiosqlpostgrenc:/@[]?&=%#19 .ab", max_size=40))
def test_any_text_parses_as_sqlalchemy_parses_it(text: str) -> None:
    _agree(text)


def test_a_bad_driver_is_one_config_error_naming_the_key() -> None:
    for text in ("mysql://u:p@h/d", "sqlite:///x.db"):
        with pytest.raises(ConfigError, match=r"^catalog\.url: must start with sqlite"):
            engine.parse_url(text)
    with pytest.raises(ConfigError, match=r"^catalog\.url: cannot parse"):
        engine.parse_url("postgresql+asyncpg://u:p@h:port/d")


def _status(tmp_path: Path, url: str, *flags: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "mirror.toml").write_text(f'[catalog]\nurl = "{url}"\n')
    return subprocess.run(
        [sys.executable, "-m", "mirror", "status", *flags, "--config",
         str(tmp_path / "mirror.toml")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)


def _one_line(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    assert proc.returncode == code, proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("tcia-mirror: error: ")
    assert all(needle in line for needle in needles), line
    return line


@pytest.mark.parametrize("flags", [(), ("--failed", "--json")])
def test_a_missing_sqlite_file_is_one_line_and_is_not_created(
        tmp_path: Path, flags: tuple[str, ...]) -> None:
    path = tmp_path / "nope" / "catalog.db"
    _one_line(_status(tmp_path, f"sqlite+aiosqlite:///{path}", *flags), 1,
              "not initialised", "db upgrade")
    assert not path.parent.exists()


def test_a_bad_catalog_url_is_a_config_error(tmp_path: Path) -> None:
    _one_line(_status(tmp_path, "postgresql+asyncpg://u:hunter2@h:99999/d"), 2, "catalog.url")
    _one_line(_status(tmp_path, "mysql://u:hunter2@h/d"), 2, "catalog.url")


def test_an_unreachable_postgres_is_one_line_without_the_password(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    line = _one_line(_status(tmp_path, f"postgresql+asyncpg://u:hunter2@127.0.0.1:{port}/d"),
                     1, f"127.0.0.1:{port}")
    assert "hunter2" not in line


@pytest.mark.postgres
def test_a_postgres_catalog_not_migrated_is_one_line(tmp_path: Path, postgres_url: str) -> None:
    _one_line(_status(tmp_path, postgres_url, "--json"), 1, "not initialised", "db upgrade")


async def test_a_catalog_at_another_revision_is_one_line(
        catalog: Catalog, catalog_url: str, tmp_path: Path) -> None:
    writer = engine.create_engine(catalog_url)
    try:
        async with engine.transaction(engine.writer(writer), catalog_url) as conn:
            await conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0003'")
    finally:
        await writer.dispose()
    _one_line(_status(tmp_path, catalog_url), 1, "schema revision 0003", "needs 0004")


async def test_the_status_table_is_the_same_through_the_cli(
        catalog: Catalog, catalog_url: str, tmp_path: Path) -> None:
    await _populate(catalog)
    await catalog.record_poll("COLL-B", at=NOW, ok=True, watermark=date(2024, 5, 1))
    shown = _status(tmp_path, catalog_url)
    assert shown.returncode == 0, shown.stderr
    rows = await anyio.to_thread.run_sync(status.read_collections, catalog_url)
    assert shown.stdout == status.render(rows, as_json=False) + "\n"


def test_ctrl_c_during_status_is_one_line_and_its_exit_code(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from mirror.run.cli import cli

    def interrupted(url: str) -> list[dict[str, object]]:
        raise KeyboardInterrupt

    monkeypatch.setattr(status, "read_collections", interrupted)
    (tmp_path / "mirror.toml").write_text('[catalog]\nurl = "sqlite+aiosqlite:///x.db"\n')
    result = CliRunner().invoke(cli, ["status", "--config", str(tmp_path / "mirror.toml")])
    assert result.exit_code == 130
    assert result.stderr.splitlines() == ["tcia-mirror: error: Interrupted."]
    assert result.stdout == ""
