"""The ``tcia-mirror`` command line: parses flags, sets up logging, runs a mode, prints its result.

Each mode (:mod:`~mirror.run.oneshot`, :mod:`~mirror.run.daemon`, :mod:`~mirror.run.worker`,
:mod:`~mirror.run.verify`) returns a value; printing it is :mod:`mirror.run.output`'s.
Modes are imported inside their command, so ``--help`` loads none of the engine; errors
and exit codes are :mod:`mirror.run.exits`'.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mirror.errors import UsageError
from mirror.run.exits import Group
from mirror.run.exits import run as _run

if TYPE_CHECKING:
    from mirror.config.settings import Settings

CONFIG_OPTION = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False),
    help="TOML config file (default: ./tcia-mirror.toml if present).")


def _configure_logs(*, json: bool | None = None) -> None:
    from mirror import logs  # structlog (and rich through it) only for commands that log

    logs.configure(json=json)


def _settings(config_path: str | None, **overrides: dict[str, object]) -> Settings:
    from mirror.config.settings import load_settings  # not needed for --help

    cleaned = {sec: {k: v for k, v in keys.items() if v is not None}
               for sec, keys in overrides.items()}
    return load_settings(config_path, overrides={k: v for k, v in cleaned.items() if v})


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tcia-mirror")
def cli() -> None:
    """Keep a local copy of The Cancer Imaging Archive incrementally in sync."""


@cli.command()
@CONFIG_OPTION
@click.option("--collection", "collections", multiple=True,
              help="Collection to sync (repeatable; default: [sync] collections).")
@click.option("--manifest", "manifests", multiple=True, metavar="F.tcia",
              help="Mirror exactly the series of this NBIA .tcia manifest (repeatable; "
                   "default: [sync] manifests). Without --collection, only manifests are synced.")
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@click.option("--reconcile", is_flag=True, help="Full listing of every collection now.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
def sync(config_path: str | None, collections: tuple[str, ...], manifests: tuple[str, ...],
         dry_run: bool, reconcile: bool, as_json: bool) -> None:
    """One-shot catch-up: discover, download, verify, commit, then exit."""
    from mirror.run import oneshot, output

    if manifests and not collections:
        collections = ()  # --manifest alone narrows the run like --collection does
    settings = _settings(config_path, sync={
        "collections": collections if collections or manifests else None,
        "manifests": manifests or None})
    _configure_logs(json=None if not as_json else True)
    result = _run(oneshot.run_sync, settings, oneshot.SyncOptions(
        dry_run=dry_run, reconcile=reconcile, as_json=as_json))
    if isinstance(result, oneshot.PlanReport):
        output.show_plan(result, as_json=as_json)
    else:
        output.show_sync(result, as_json=as_json)
    sys.exit(result.exit_code)


@cli.command()
@CONFIG_OPTION
@click.option("--no-workers", is_flag=True, help="Run only the scheduler (workers elsewhere).")
def daemon(config_path: str | None, no_workers: bool) -> None:
    """Long-running: scheduler, worker pool, /healthz and /metrics."""
    from mirror.run import daemon as daemon_mode

    settings = _settings(config_path)
    _configure_logs()
    sys.exit(_run(functools.partial(daemon_mode.run, with_workers=not no_workers), settings))


@cli.command()
@CONFIG_OPTION
def worker(config_path: str | None) -> None:
    """Download-only worker claiming queued series from a shared catalog."""
    from mirror.run import worker as worker_mode

    settings = _settings(config_path)
    _configure_logs()
    sys.exit(_run(worker_mode.run_worker, settings))


@cli.command()
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--failed", "failed", is_flag=True,
              help="List the failed series with their last error instead.")
def status(config_path: str | None, as_json: bool, failed: bool) -> None:
    """Per collection: series total / done / queued / failed, bytes, last poll, watermark."""
    # Stored SQL straight on sqlite3 / asyncpg: no SQLAlchemy, no anyio, and on SQLite
    # no event loop; Group turns our errors and Ctrl-C into one line and an exit code.
    from mirror.catalog import status as catalog_status

    settings = _settings(config_path)
    if failed:
        text = catalog_status.render_failed(
            catalog_status.read_failed(settings.catalog.url), as_json=as_json)
    else:
        text = catalog_status.render(
            catalog_status.read_collections(settings.catalog.url), as_json=as_json)
    click.echo(text)


@cli.command()
@CONFIG_OPTION
@click.option("--repair", is_flag=True, help="Re-queue what is wrong; the next sync fixes it.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable report.")
@click.option("--collection", "collections", multiple=True,
              help="Check only this collection (repeatable; default: all the catalog holds).")
def verify(config_path: str | None, repair: bool, as_json: bool,
           collections: tuple[str, ...]) -> None:
    """Re-check the archive against the catalog (presence, size, MD5, DICOM UIDs)."""
    from mirror.run import output
    from mirror.run import verify as verify_mode

    settings = _settings(config_path)
    report = _run(verify_mode.run_verify, settings, repair, collections)
    output.show_verify(report, as_json=as_json)
    sys.exit(report.exit_code)


@cli.command(context_settings={"ignore_unknown_options": False})
@CONFIG_OPTION
@click.argument("endpoint")
@click.argument("params", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "table"]), default="json",
              show_default=True)
@click.option("--base-url", help="Override [source] base_url.")
@click.option("--api", type=click.Choice(["v3", "nbia-v1", "nbia-v4"]),
              help="Override [source] api.")
def query(config_path: str | None, endpoint: str, params: tuple[str, ...], fmt: str,
          base_url: str | None, api: str | None) -> None:
    """Call any TCIA ENDPOINT with Key=Value parameters and print the result."""
    from mirror.tcia import query as tcia_query

    pairs: dict[str, str] = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"query parameter {item!r} must be Key=Value")
        pairs[key] = value
    settings = _settings(config_path, source={"base_url": base_url, "api": api})
    text = _run(tcia_query.run_query, settings.source, endpoint, pairs, fmt)
    click.echo(text, nl=not text.endswith("\n"))


@cli.group()
def db() -> None:
    """Catalog database administration."""


@db.command("upgrade")
@CONFIG_OPTION
def db_upgrade(config_path: str | None) -> None:
    """Apply Alembic migrations to the configured catalog."""
    from mirror.catalog import migrate

    settings = _settings(config_path)
    _run(migrate.upgrade, settings.catalog.url)
    click.echo("catalog is at the latest schema revision")


@cli.group()
def manifest() -> None:
    """NBIA .tcia manifests."""


@manifest.command("export")
@CONFIG_OPTION
@click.option("--collection", "collections", multiple=True,
              help="Only this collection (repeatable; default: the whole archive).")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write to this file (atomically) instead of stdout.")
def manifest_export(config_path: str | None, collections: tuple[str, ...],
                    output: str | None) -> None:
    """Write what the archive holds as a .tcia manifest (NBIA Data Retriever, tcia-utils)."""
    import anyio.to_thread

    from mirror.sync.manifest import format_manifest
    from mirror.sync.manifest_discovery import exported_uids
    from mirror.transfer.commit import write_atomic

    settings = _settings(config_path)
    uids = _run(exported_uids, settings.catalog.url, list(collections) or None)
    basket = Path(output).name if output else "tcia-mirror-export.tcia"
    text = format_manifest(uids, databasket_id=basket)
    if output:
        _run(anyio.to_thread.run_sync, write_atomic, Path(output), text.encode())
        click.echo(f"wrote {len(uids)} series to {output}", err=True)
    else:
        click.echo(text, nl=False)


def _register_simulate() -> None:
    from mirror.simulator.cli import simulate

    cli.add_command(simulate)


_register_simulate()


def main() -> None:
    cli(prog_name="tcia-mirror")
